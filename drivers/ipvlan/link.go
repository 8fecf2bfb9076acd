package ipvlan

import (
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/state"
)

// modes are the ipvlan modes by name (Link.Mode).
var modes = map[string]netlink.IPVlanMode{"l2": netlink.IPVLAN_MODE_L2, "l3": netlink.IPVLAN_MODE_L3, "l3s": netlink.IPVLAN_MODE_L3S}

// Link is the ipvlan link kind: a child of a node device, in its mode.
var Link = drivers.LinkKind{Type: state.LinkIPvlan, Parent: true, Child: true,
	New: func(l *state.Link, la netlink.LinkAttrs, refs drivers.LinkRefs) (netlink.Link, error) {
		mode, ok := modes[l.Mode]
		if !ok {
			return nil, fmt.Errorf("ipvlan mode %q is not supported", l.Mode)
		}
		la.ParentIndex = refs.Parent
		return &netlink.IPVlan{LinkAttrs: la, Mode: mode}, nil
	},
	Parse: func(link netlink.Link, l *state.Link, _ map[int]string) {
		if v, ok := link.(*netlink.IPVlan); ok {
			l.Mode = drivers.NameOf(modes, v.Mode)
		}
	}}
