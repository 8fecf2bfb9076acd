// Package kinds lists the link kinds netreconcile makes, each defined
// beside the driver (or routing) that makes links of its type.
package kinds

import (
	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/drivers/bridge"
	"github.com/netreconcile/netreconcile/drivers/ipvlan"
	"github.com/netreconcile/netreconcile/drivers/macvlan"
	"github.com/netreconcile/netreconcile/drivers/veth"
	"github.com/netreconcile/netreconcile/routing"
)

var all = map[string]*drivers.LinkKind{}

func init() {
	for _, k := range []*drivers.LinkKind{&veth.Link, &bridge.Link, &macvlan.Link, &ipvlan.Link, &routing.Link} {
		all[k.Type] = k
	}
}

// Of returns the kind of links of type typ (nil: not one netreconcile
// makes).
func Of(typ string) *drivers.LinkKind { return all[typ] }
