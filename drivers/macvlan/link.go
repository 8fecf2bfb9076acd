package macvlan

import (
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/state"
)

// modes are the macvlan modes by name (Link.Mode).
var modes = map[string]netlink.MacvlanMode{"bridge": netlink.MACVLAN_MODE_BRIDGE, "private": netlink.MACVLAN_MODE_PRIVATE,
	"vepa": netlink.MACVLAN_MODE_VEPA, "passthru": netlink.MACVLAN_MODE_PASSTHRU}

// Link is the macvlan link kind: a child of a node device, in its mode.
var Link = drivers.LinkKind{Type: state.LinkMacvlan, Parent: true, Child: true,
	New: func(l *state.Link, la netlink.LinkAttrs, refs drivers.LinkRefs) (netlink.Link, error) {
		mode, ok := modes[l.Mode]
		if !ok {
			return nil, fmt.Errorf("macvlan mode %q is not supported", l.Mode)
		}
		la.ParentIndex = refs.Parent
		return &netlink.Macvlan{LinkAttrs: la, Mode: mode}, nil
	},
	Parse: func(link netlink.Link, l *state.Link, _ map[int]string) {
		if m, ok := link.(*netlink.Macvlan); ok {
			l.Mode = drivers.NameOf(modes, m.Mode)
		}
	}}
