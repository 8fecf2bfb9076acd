package bridge

import (
	"github.com/vishvananda/netlink"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/state"
)

// Link is the bridge link kind: nothing of its own beyond the shared
// attributes.
var Link = drivers.LinkKind{Type: state.LinkBridge,
	New: func(_ *state.Link, la netlink.LinkAttrs, _ drivers.LinkRefs) (netlink.Link, error) {
		return &netlink.Bridge{LinkAttrs: la}, nil
	}}
