package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// showCmd prints what netreconcile owns on the node, as text or JSON.
func showCmd(g *globals) *cobra.Command {
	var files []string
	var node, output string
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show the live state netreconcile owns on the node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r *spec.Resolved
			if len(files) > 0 {
				var err error
				if r, _, err = g.load(files, false); err != nil {
					return err
				}
			}
			obs, err := g.engine(node).Show(r)
			if err != nil {
				return err
			}
			if output == "json" {
				obs.FormatVersion = state.ObservedFormat
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(obs)
			}
			writeShow(cmd.OutOrStdout(), obs)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "topology file, directory or -, repeatable: also look into the pod namespaces it names")
	nodeFlag(cmd, &node)
	outputFlag(cmd, &output)
	return cmd
}

// writeShow prints the owned objects, one per line, grouped by kind, then
// the datapath's defences when the node has a datapath.
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
	writeFrontends(w, obs)
	if obs.Defences != nil {
		writeDefences(w, obs.Defences)
	}
}

// writeFrontends prints every way into each service programmed (its
// clusterIP, the node's nodePorts, its external IPs) with the backends,
// then the programs on the node's own devices (uplink, service device).
func writeFrontends(w io.Writer, obs *reconcile.Observed) {
	groups := reconcile.ServiceFrontends(obs.Owned)
	if len(groups) == 0 {
		return
	}
	fmt.Fprintln(w, "service frontends")
	for _, owner := range slices.Sorted(maps.Keys(groups)) {
		fmt.Fprintf(w, "  %s\n", owner)
		for _, s := range groups[owner] {
			fmt.Fprintf(w, "    %s\n", reconcile.FrontendLine(s))
		}
	}
	for _, o := range obs.Owned.Of(state.KindAttach) {
		if a := o.(*state.Attach); a.NS == state.NodeNS && (a.IfName == obs.Uplink.Name || a.Owner() == state.NodeOwner) {
			fmt.Fprintf(w, "  node program %s on %s live=%v\n", a.Direction, a.IfName, a.Live)
		}
	}
}

// writeDefences prints one line per defended address (its pod, bound
// MAC, drops by reason, conntrack entries), the drops no pod is charged
// for, and the conntrack collector.
func writeDefences(w io.Writer, d *reconcile.Defences) {
	fmt.Fprintln(w, "datapath defences")
	for _, p := range d.Pods {
		who := "source " + p.Address
		if p.Pod != "" {
			who = "pod " + p.Pod + " " + p.Address
		}
		fmt.Fprintf(w, "  %s", who)
		if p.MAC != "" {
			fmt.Fprintf(w, " mac=%s", p.MAC)
		}
		if len(p.Drops) > 0 {
			fmt.Fprintf(w, " drops: %s", counts(p.Drops))
		}
		fmt.Fprintf(w, " conntrack: service=%d policy=%d\n", p.Conntrack.Service, p.Conntrack.Policy)
	}
	if len(d.Unbound) > 0 {
		fmt.Fprintf(w, "  interfaces without a binding drops: %s\n", counts(d.Unbound))
	}
	c := d.Collector
	fmt.Fprintf(w, "  conntrack collector: runs=%d last_scanned=%d last_deleted=%d\n", c.Runs, c.LastScanned, c.LastDeleted)
}

// counts prints reason=N pairs in reason order.
func counts(m map[string]uint64) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}
