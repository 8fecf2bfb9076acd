package veth

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/state"
)

// Link is the veth link kind: a pair whose pod end is created in the
// peer's namespace with the same MTU.
var Link = drivers.LinkKind{Type: state.LinkVeth, New: newLink}

func newLink(l *state.Link, la netlink.LinkAttrs, refs drivers.LinkRefs) (netlink.Link, error) {
	v := &netlink.Veth{LinkAttrs: la, PeerName: l.PeerName, PeerNamespace: refs.PeerNS, PeerMTU: uint32(l.MTU)}
	if l.PeerMAC != "" {
		mac, err := net.ParseMAC(l.PeerMAC)
		if err != nil {
			return nil, fmt.Errorf("peer MAC: %w", err)
		}
		v.PeerHardwareAddr = mac
	}
	return v, nil
}
