// Package veth is the routed veth mode: the node is every pod's router.
//
// Design notes. Per pod, in this order:
//   - the pod netns (created when named and missing, lo up);
//   - a veth pair: host end "nr<hash>" in the node namespace with MAC
//     ee:ee:ee:ee:ee:ee and proxy_arp=1, pod end eth0 in the pod;
//   - the pod address as a /32 on eth0, and a permanent neighbour
//     169.254.1.1 -> ee:ee:ee:ee:ee:ee;
//   - in the pod, default via 169.254.1.1 dev eth0 onlink; in the node, a
//     /32 route to the pod via the host end, scope link.
//
// The gateway 169.254.1.1 exists nowhere: proxy ARP on the host end would
// answer for it, but only when the node has some route to it, so the pod
// gets a static neighbour entry instead and never needs ARP for its
// gateway (Calico's approach). The article gives the pod its /24; a /32
// sends even same-node traffic through the gateway, so a pod never ARPs
// at all and never waits for the node's proxy ARP delay. Forwarding is on
// in the node namespace.
// Every object is per pod, so adding or removing a pod touches nothing
// else; the cost is one link, one host route and three pod objects.
package veth

import (
	"net/netip"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// Gateway is the link-local address every veth pod routes through.
var Gateway = netip.MustParseAddr("169.254.1.1")

// HostMAC is the MAC of every host-side veth end in this mode.
const HostMAC = "ee:ee:ee:ee:ee:ee"

// Driver implements drivers.Driver for mode veth.
type Driver struct{}

// Mode implements drivers.Driver.
func (Driver) Mode() string { return spec.ModeVeth }

// Check implements drivers.Driver; veth is always available.
func (Driver) Check(*drivers.Kernel) error { return nil }

// Node implements drivers.Driver.
func (Driver) Node(n *drivers.Node, s *state.State) error { return drivers.Forwarding(n, s) }

// Pod implements drivers.Driver.
func (Driver) Pod(n *drivers.Node, p *spec.ResolvedPod, s *state.State) error {
	host := drivers.HostIfName(n.Name, p.Key)
	owner := drivers.PodOwner(p)
	objs := []state.Object{
		&state.Link{NS: state.NodeNS, Name: host, Type: state.LinkVeth, Alias: state.Alias(n.Name, owner), MTU: n.MTU,
			Up: true, HWAddr: HostMAC, PeerNS: p.Netns, PeerName: drivers.PodIfName, PeerMAC: drivers.PodMAC(p.IP), ProxyARP: true},
		&state.Addr{NS: p.Netns, Link: drivers.PodIfName, Prefix: netip.PrefixFrom(p.IP, 32), OwnerK: owner},
		&state.Neigh{NS: p.Netns, Link: drivers.PodIfName, IP: Gateway, MAC: HostMAC, OwnerK: owner},
		&state.Route{NS: p.Netns, Dst: drivers.DefaultRoute, Gw: Gateway, Dev: drivers.PodIfName, OnLink: true,
			Scope: "global", OwnerK: owner},
		&state.Route{NS: state.NodeNS, Dst: netip.PrefixFrom(p.IP, 32), Dev: host, Scope: "link", OwnerK: owner},
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
