package observe

import (
	"fmt"
	"net/netip"

	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/reconcile/internal/handles"
	"github.com/netreconcile/netreconcile/state"
)

// Uplink reads the facts about the uplink called name that the desired
// state depends on (its MTU and index) and that preflight checks (its
// addresses, and which of the peer node addresses peers the node
// namespace has no route to), with single requests rather than dumps.
func Uplink(nodeNetns, name string, peers []netip.Addr) (state.Uplink, error) {
	up := state.Uplink{Name: name}
	h := handles.New(nodeNetns)
	defer h.Close()
	nh, err := h.Get(state.NodeNS)
	if err != nil {
		return up, err
	}
	l, err := nh.LinkByName(name)
	if nsutil.IsLinkNotFound(err) {
		return up, nil
	}
	if err != nil {
		return up, fmt.Errorf("uplink %q: %w", name, err)
	}
	up.Found, up.Index, up.MTU = true, l.Attrs().Index, l.Attrs().MTU
	addrs, err := nh.AddrList(l, 2 /* AF_INET */)
	if err != nil {
		return up, fmt.Errorf("uplink %q addresses: %w", name, err)
	}
	for _, a := range addrs {
		ip, _ := netip.AddrFromSlice(a.IP)
		bits, _ := a.Mask.Size()
		up.Addrs = append(up.Addrs, netip.PrefixFrom(ip.Unmap(), bits))
	}
	for _, a := range peers {
		if _, err := nh.RouteGet(a.AsSlice()); err != nil {
			up.Unreachable = append(up.Unreachable, a)
		}
	}
	return up, nil
}
