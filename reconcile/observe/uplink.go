package observe

import (
	"fmt"
	"net/netip"
	"slices"

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

// UplinkWith is Uplink, reusing what cache holds when nothing raised an
// event in the node namespace since it was read for the same uplink and
// peers: one route lookup per peer node was most of a pass's reading of a
// 1000-node cluster. The uplink's link and addresses raise events; routes
// that others change do not (only netreconcile's are followed), so which
// peers have a route is read again after any change in the node
// namespace, on a full pass, or after a failed one (see Cache).
func UplinkWith(cache *Cache, nodeNetns, name string, peers []netip.Addr) (state.Uplink, error) {
	if up, ok := cache.uplink(name, peers); ok {
		return up, nil
	}
	st := cache.nodeStamp()
	up, err := Uplink(nodeNetns, name, peers)
	if err == nil {
		cache.putUplink(name, peers, up, st)
	}
	return up, err
}

// uplinkObs is the uplink facts read for peers.
type uplinkObs struct {
	peers []netip.Addr
	up    state.Uplink
	st    stamp
}

// uplink returns the facts kept for the uplink called name and peers, if
// the node namespace is as it was when they were read.
func (c *Cache) uplink(name string, peers []netip.Addr) (state.Uplink, bool) {
	if c == nil {
		return state.Uplink{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.up
	if u == nil || u.up.Name != name || u.st != (stamp{c.gen[state.NodeNS], c.epoch}) || !slices.Equal(u.peers, peers) {
		return state.Uplink{}, false
	}
	up := u.up
	up.Addrs, up.Unreachable = slices.Clone(up.Addrs), slices.Clone(up.Unreachable)
	return up, true
}

// nodeStamp is the stamp a read of the node namespace starting now is
// kept with.
func (c *Cache) nodeStamp() stamp {
	if c == nil {
		return stamp{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return stamp{c.gen[state.NodeNS], c.epoch}
}

// putUplink keeps the facts read for peers, unless the node namespace
// changed since st.
func (c *Cache) putUplink(name string, peers []netip.Addr, up state.Uplink, st stamp) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st == (stamp{c.gen[state.NodeNS], c.epoch}) {
		up.Addrs, up.Unreachable = slices.Clone(up.Addrs), slices.Clone(up.Unreachable)
		c.up = &uplinkObs{peers: slices.Clone(peers), up: up, st: st}
	}
}
