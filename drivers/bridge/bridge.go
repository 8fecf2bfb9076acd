// Package bridge is the bridge mode: pods are veth ports of one Linux
// bridge that carries their gateway address, as with the cni0 bridge.
//
// Design notes. Per node, once: bridge "nrbr0" (up, MTU of the pods,
// proxy_arp=1) with the node's gateway address (first host of its pod
// CIDR, with the CIDR's prefix), which also gives the node its connected
// route to the bridge pods. proxy_arp on the bridge lets bridge pods
// reach veth-mode pods of the same CIDR: those sit behind /32 routes, not
// on the bridge, so the node answers ARP for them. Per pod: the pod netns,
// a veth pair whose host end is a port of nrbr0, the pod address and a
// default route via the gateway. No per-pod route is needed in the node.
package bridge

import (
	"net/netip"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// Name is the bridge device.
const Name = "nrbr0"

// Owner is the owner of the node-wide bridge objects.
const Owner = "bridge"

// Driver implements drivers.Driver for mode bridge.
type Driver struct{}

// Mode implements drivers.Driver.
func (Driver) Mode() string { return spec.ModeBridge }

// Check implements drivers.Driver; bridges are always available here.
func (Driver) Check(*drivers.Kernel) error { return nil }

// Node implements drivers.Driver.
func (Driver) Node(n *drivers.Node, s *state.State) error {
	if err := drivers.Forwarding(n, s); err != nil {
		return err
	}
	if err := s.Add(&state.Link{NS: state.NodeNS, Name: Name, Type: state.LinkBridge, Alias: state.Alias(n.Name, Owner),
		MTU: n.MTU, Up: true, ProxyARP: true}); err != nil {
		return err
	}
	return s.Add(&state.Addr{NS: state.NodeNS, Link: Name, OwnerK: Owner,
		Prefix: netip.PrefixFrom(n.Spec.Gateway, n.Spec.PodCIDR.Bits())})
}

// Pod implements drivers.Driver.
func (Driver) Pod(n *drivers.Node, p *spec.ResolvedPod, s *state.State) error {
	owner := drivers.PodOwner(p)
	objs := []state.Object{
		&state.Link{NS: state.NodeNS, Name: drivers.HostIfName(n.Name, p.Key), Type: state.LinkVeth,
			Alias: state.Alias(n.Name, owner), MTU: n.MTU, Up: true, Master: Name,
			PeerNS: p.Netns, PeerName: drivers.PodIfName, PeerMAC: drivers.PodMAC(p.IP)},
		&state.Addr{NS: p.Netns, Link: drivers.PodIfName, Prefix: drivers.PodAddr(n, p), OwnerK: owner},
		&state.Route{NS: p.Netns, Dst: drivers.DefaultRoute, Gw: n.Spec.Gateway, Dev: drivers.PodIfName,
			OnLink: true, Scope: "global", OwnerK: owner},
	}
	if err := drivers.PodNetns(p, s); err != nil {
		return err
	}
	for _, o := range objs {
		if err := s.Add(o); err != nil {
			return err
		}
	}
	return nil
}
