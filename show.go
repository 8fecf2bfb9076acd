package main

import (
	"fmt"
	"io"

	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/state"
)

// writeShow prints the owned objects, one per line, grouped by kind.
func writeShow(w io.Writer, obs *reconcile.Observed) {
	fmt.Fprintf(w, "node %s (uplink %s found=%v mtu=%d)\n", obs.Node, obs.Uplink.Name, obs.Uplink.Found, obs.Uplink.MTU)
	for _, k := range state.Kinds() {
		for _, o := range obs.Owned.Of(k) {
			fmt.Fprintf(w, "  %-9s %s", k, o.Key())
			for _, a := range o.Attrs() {
				if a.Value != "" && a.Value != "false" {
					fmt.Fprintf(w, " %s=%s", a.Name, a.Value)
				}
			}
			if o.Owner() != "" {
				fmt.Fprintf(w, "  # %s", o.Owner())
			}
			fmt.Fprintln(w)
		}
	}
}
