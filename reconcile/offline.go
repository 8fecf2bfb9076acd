package reconcile

import (
	"fmt"
	"maps"
	"net/netip"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/reconcile/observe"
	"github.com/netreconcile/netreconcile/routing"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// NodeFacts is what a plan needs from the node besides the objects.
type NodeFacts = state.NodeFacts

// Assumptions of EmptyObserved, documented in the README (plan section).
const (
	// EmptyUplinkIndex is the uplink's ifindex on a node planned from
	// scratch: the first link after lo. No plan shows it.
	EmptyUplinkIndex = 2
	// EmptyUplinkMTU is the uplink's MTU on a node planned from scratch.
	EmptyUplinkMTU = 1500
)

// EmptyObserved is a node planned from scratch (plan --observed empty):
// nothing netreconcile owns and nothing foreign in the way; an uplink
// named as the file says, carrying the file's node address, MTU 1500; a
// default route (every peer reachable); every link type available.
func EmptyObserved(r *spec.Resolved, node string) (*Observed, error) {
	n := r.Node(node)
	if n == nil {
		return nil, fmt.Errorf("node %q is not in the file (nodes: %s)", node, r.NodeNames())
	}
	obs := state.NewObserved(node)
	obs.Facts = &NodeFacts{
		Links: map[string]state.NodeLink{
			n.Uplink: {Index: EmptyUplinkIndex, MTU: EmptyUplinkMTU, Addrs: []netip.Prefix{n.Address}},
		},
		Routes:    []netip.Prefix{netip.PrefixFrom(netip.IPv4Unspecified(), 0)},
		LinkTypes: map[string]bool{},
	}
	obs.Uplink = obs.Facts.UplinkFrom(n.Uplink, nil)
	return obs, nil
}

// peerAddrs are the addresses of node's peers, whose routes preflight
// checks.
func peerAddrs(r *spec.Resolved, node string) []netip.Addr {
	var peers []netip.Addr
	for _, p := range routing.Peers(r, node) {
		peers = append(peers, p.Node.Address.Addr())
	}
	return peers
}

// offlineFacts takes the uplink and kernel facts a plan needs from a
// saved observation (plan --observed), reading no kernel. A file written
// before node_facts existed still serves when its uplink record is of
// the uplink the file names (its link types are then not checked).
func (e *Engine) offlineFacts(r *spec.Resolved, obs *Observed) (Uplink, *drivers.Kernel, error) {
	name := e.Cfg.Uplink
	if obs.Facts != nil {
		k := &drivers.Kernel{LinkTypes: maps.Clone(obs.Facts.LinkTypes)}
		if k.LinkTypes == nil {
			k.LinkTypes = map[string]bool{}
		}
		return obs.Facts.UplinkFrom(name, peerAddrs(r, e.Cfg.Node)), k, nil
	}
	if obs.Uplink.Name != name {
		return Uplink{}, nil, fmt.Errorf("node %q: the observed state has no node_facts (the node's links with their "+
			"addresses and MTU, its routes, its kernel's link types) and records uplink %q, not %q: "+
			"write it again with show -o json of this version", e.Cfg.Node, obs.Uplink.Name, name)
	}
	return obs.Uplink, &drivers.Kernel{LinkTypes: map[string]bool{}}, nil
}

// nodeFacts reads the node facts show records: the node namespace's
// links, addresses and routes, and which link types the kernel has.
func (e *Engine) nodeFacts(owned *state.State) (*NodeFacts, error) {
	f, err := observe.Facts(e.Cfg.NodeNetns, owned)
	if err != nil {
		return nil, err
	}
	f.LinkTypes, f.PinDir, f.NodeNetns = map[string]bool{}, e.Cfg.BPFFS, e.Cfg.NodeNetns
	for _, typ := range featureModes {
		if f.LinkTypes[typ], err = linkTypeAvailable(typ); err != nil {
			return nil, err
		}
	}
	return f, nil
}
