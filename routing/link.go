package routing

import (
	"errors"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/state"
)

// Link is the VXLAN link kind: a device of the node namespace on its
// parent (the uplink), with its VNI, UDP port, local address and
// learning.
var Link = drivers.LinkKind{Type: state.LinkVXLAN, Parent: true,
	New: func(l *state.Link, la netlink.LinkAttrs, refs drivers.LinkRefs) (netlink.Link, error) {
		if l.NS != state.NodeNS {
			return nil, errors.New("vxlan devices live in the node namespace")
		}
		return &netlink.Vxlan{LinkAttrs: la, VxlanId: l.VNI, VtepDevIndex: refs.Parent, SrcAddr: l.Local.AsSlice(),
			Port: l.Port, Learning: l.Learning}, nil
	},
	Parse: func(link netlink.Link, l *state.Link, byIndex map[int]string) {
		v, ok := link.(*netlink.Vxlan)
		if !ok {
			return
		}
		l.VNI, l.Port, l.Learning = v.VxlanId, v.Port, v.Learning
		if ip, ok := netip.AddrFromSlice(v.SrcAddr); ok {
			l.Local = ip.Unmap()
		}
		if v.VtepDevIndex != 0 {
			l.Parent = byIndex[v.VtepDevIndex]
		}
	}}
