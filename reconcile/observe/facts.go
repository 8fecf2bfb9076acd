package observe

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/reconcile/internal/handles"
	"github.com/netreconcile/netreconcile/state"
)

// Facts reads what a plan needs from the node namespace beyond the
// objects (state.NodeFacts): the links netreconcile does not own (in
// owned), their IPv4 addresses, and the main table's route destinations.
// Link types are the caller's (they need a namespace of their own).
func Facts(nodeNetns string, owned *state.State) (*state.NodeFacts, error) {
	h := handles.New(nodeNetns)
	defer h.Close()
	nh, err := h.Get(state.NodeNS)
	if err != nil {
		return nil, err
	}
	links, err := nsutil.RetryDump(nh.LinkList)
	if err != nil {
		return nil, fmt.Errorf("node facts: list links: %w", err)
	}
	addrs, err := nsutil.RetryDump(func() ([]netlink.Addr, error) { return nh.AddrList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return nil, fmt.Errorf("node facts: list addresses: %w", err)
	}
	routes, err := nsutil.RetryDump(func() ([]netlink.Route, error) {
		return nh.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, fmt.Errorf("node facts: list routes: %w", err)
	}
	f := &state.NodeFacts{Links: map[string]state.NodeLink{}, Routes: []netip.Prefix{}}
	names := map[int]string{}
	for _, l := range links {
		a := l.Attrs()
		if owned.Get(state.KindLink, state.LinkKey(state.NodeNS, a.Name)) != nil {
			continue
		}
		names[a.Index] = a.Name
		f.Links[a.Name] = state.NodeLink{Index: a.Index, MTU: a.MTU}
	}
	for _, a := range addrs {
		name, ok := names[a.LinkIndex]
		if !ok {
			continue
		}
		ip, _ := netip.AddrFromSlice(a.IP)
		bits, _ := a.Mask.Size()
		l := f.Links[name]
		l.Addrs = append(l.Addrs, netip.PrefixFrom(ip.Unmap(), bits))
		f.Links[name] = l
	}
	seen := map[netip.Prefix]bool{}
	for _, r := range routes {
		if r.Type != unix.RTN_UNICAST {
			continue // blackhole, unreachable, prohibit: no way out
		}
		dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if r.Dst != nil {
			ip, _ := netip.AddrFromSlice(r.Dst.IP)
			bits, _ := r.Dst.Mask.Size()
			dst = netip.PrefixFrom(ip.Unmap(), bits)
		}
		if !seen[dst] {
			seen[dst] = true
			f.Routes = append(f.Routes, dst)
		}
	}
	return f, nil
}
