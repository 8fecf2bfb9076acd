package routing

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// Names and numbers of the VXLAN datapath.
const (
	// Device is the VXLAN device of every node.
	Device = "nrvxlan0"
	// Owner owns the device and its address.
	Owner = "vxlan"
	// Overhead is what VXLAN encapsulation adds to an inner IPv4 packet.
	Overhead = 50
)

// ErrMTU is wrapped when cluster.mtu leaves no room for the VXLAN header.
var ErrMTU = errors.New("mtu too large for VXLAN")

// PeerOwner is the owner of the objects that reach peer node name.
func PeerOwner(name string) string { return "peer/" + name }

// Peer is one other node and how this node reaches it.
type Peer struct {
	Node  *spec.ResolvedNode
	VXLAN bool // false: a direct route on the uplink
}

// SameSubnet reports whether two underlay addresses share an L2 subnet:
// each lies in the other's prefix, so both nodes come to the same answer.
func SameSubnet(a, b netip.Prefix) bool {
	return a.Contains(b.Addr()) && b.Contains(a.Addr())
}

func mode(r *spec.Resolved) string {
	if r.Routing == "" {
		return spec.RoutingAuto
	}
	return r.Routing
}

// Peers lists the other nodes of the file, in name order, with the way
// node reaches each.
func Peers(r *spec.Resolved, node string) []Peer {
	self := r.Node(node)
	if self == nil {
		return nil
	}
	var out []Peer
	for i := range r.Nodes {
		n := &r.Nodes[i]
		if n.Name == node {
			continue
		}
		var vx bool
		switch mode(r) {
		case spec.RoutingVXLAN:
			vx = true
		case spec.RoutingDirect:
			vx = false
		default:
			vx = !SameSubnet(self.Address, n.Address)
		}
		out = append(out, Peer{Node: n, VXLAN: vx})
	}
	return out
}

// ClusterUsesVXLAN reports whether the MTU rule (see the package
// documentation) reserves room for the VXLAN header on every node.
func ClusterUsesVXLAN(r *spec.Resolved) bool {
	switch mode(r) {
	case spec.RoutingVXLAN:
		return true
	case spec.RoutingDirect:
		return false
	}
	// Addresses of one prefix length are in the same subnet when their
	// networks are equal: one look at each node, where pairs of a
	// thousand nodes were half a million (a plan asks on every pass).
	if len(r.Nodes) > 0 {
		first := r.Nodes[0].Address
		uniform := first.IsValid()
		for i := 1; uniform && i < len(r.Nodes); i++ {
			a := r.Nodes[i].Address
			if uniform = a.IsValid() && a.Bits() == first.Bits(); uniform && a.Masked() != first.Masked() {
				return true
			}
		}
		if uniform {
			return false
		}
	}
	for i := range r.Nodes {
		for j := range i {
			if !SameSubnet(r.Nodes[i].Address, r.Nodes[j].Address) {
				return true
			}
		}
	}
	return false
}

// PodMTU is the MTU of pod interfaces given the uplink's.
func PodMTU(r *spec.Resolved, uplinkMTU int) int {
	switch {
	case r.MTU != 0:
		return r.MTU
	case ClusterUsesVXLAN(r):
		return uplinkMTU - Overhead
	}
	return uplinkMTU
}

// VTEP is node n's VTEP address: the network address of its pod CIDR.
func VTEP(n *spec.ResolvedNode) netip.Addr { return n.PodCIDR.Addr() }

// VTEPMAC is node n's VTEP MAC, derived from its VTEP address.
func VTEPMAC(n *spec.ResolvedNode) string {
	b := VTEP(n).As4()
	return fmt.Sprintf("0e:58:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}

func hasVXLANPeer(peers []Peer) bool {
	for _, p := range peers {
		if p.VXLAN {
			return true
		}
	}
	return false
}

// Check reports, before any change, what the node's uplink cannot carry:
// a cluster.mtu too large to leave room for the VXLAN header.
func Check(r *spec.Resolved, node string, uplinkMTU int) error {
	if !hasVXLANPeer(Peers(r, node)) || r.MTU == 0 {
		return nil
	}
	if limit := uplinkMTU - Overhead; r.MTU > limit {
		return fmt.Errorf("%w: cluster.mtu %d leaves no room for the VXLAN header on node %q (uplink mtu %d): use at most %d",
			ErrMTU, r.MTU, node, uplinkMTU, limit)
	}
	return nil
}

// Desired adds the objects node needs to reach every peer: direct routes
// on the uplink, or the VXLAN device and per-peer entries.
func Desired(r *spec.Resolved, node string, uplinkMTU int, s *state.State) error {
	self := r.Node(node)
	if self == nil {
		return fmt.Errorf("node %q is not in the file", node)
	}
	peers := Peers(r, node)
	if hasVXLANPeer(peers) {
		vni, port := r.VNI, r.VXLANPort
		if vni == 0 {
			vni = spec.DefaultVNI
		}
		if port == 0 {
			port = spec.DefaultVXLANPort
		}
		dev := &state.Link{NS: state.NodeNS, Name: Device, Type: state.LinkVXLAN, Alias: state.Alias(node, Owner),
			MTU: uplinkMTU - Overhead, Up: true, HWAddr: VTEPMAC(self), Parent: self.Uplink,
			VNI: vni, Port: port, Local: self.Address.Addr(), Learning: false}
		if err := s.Add(dev); err != nil {
			return err
		}
		if err := s.Add(&state.Addr{NS: state.NodeNS, Link: Device, Prefix: netip.PrefixFrom(VTEP(self), 32), OwnerK: Owner}); err != nil {
			return err
		}
	}
	for _, p := range peers {
		owner := PeerOwner(p.Node.Name)
		var objs []state.Object
		if p.VXLAN {
			objs = []state.Object{
				&state.Neigh{NS: state.NodeNS, Link: Device, IP: VTEP(p.Node), MAC: VTEPMAC(p.Node), OwnerK: owner},
				&state.Neigh{NS: state.NodeNS, Link: Device, IP: p.Node.Address.Addr(), MAC: VTEPMAC(p.Node), Bridge: true, OwnerK: owner},
				&state.Route{NS: state.NodeNS, Dst: p.Node.PodCIDR, Gw: VTEP(p.Node), Dev: Device, OnLink: true,
					Scope: "global", OwnerK: owner},
			}
		} else {
			objs = []state.Object{
				&state.Route{NS: state.NodeNS, Dst: p.Node.PodCIDR, Gw: p.Node.Address.Addr(), Dev: self.Uplink,
					Scope: "global", OwnerK: owner},
			}
		}
		for _, o := range objs {
			if err := s.Add(o); err != nil {
				return err
			}
		}
	}
	return nil
}
