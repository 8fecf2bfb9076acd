// Package shim holds what the macvlan and ipvlan modes share: pods whose
// eth0 is a child of the node's uplink, and a host-side child of the same
// uplink (the shim) that carries the pods' gateway so that their traffic to
// the node, to services and to other nodes still passes the node's stack.
// The design is explained in package macvlan's documentation.
package shim

import (
	"net/netip"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// Kind describes one uplink-child mode.
type Kind struct {
	Mode     string // pod mode in the file: macvlan | ipvlan
	LinkType string // link type: macvlan | ipvlan
	LinkMode string // bridge (macvlan) | l2 (ipvlan)
	Name     string // the shim device in the node namespace
	Owner    string // owner of the node-wide objects
	// OwnMACs: children get their own MAC (macvlan); ipvlan children
	// share the uplink's and cannot set one.
	OwnMACs bool
}

// Sysctls of the shim. It shares the uplink's wire, so it must neither
// answer ARP for the node's other addresses (arp_ignore=1) nor announce
// them as sender of its own requests (arp_announce=2): either would teach
// the underlay the shim's MAC for the node's underlay address. It answers
// its proxy entries at once (proxy_delay=0) rather than after up to 0.8 s.
var Sysctls = map[string]string{"conf/arp_ignore": "1", "conf/arp_announce": "2", "neigh/proxy_delay": "0"}

// Node adds the shim: forwarding, the device with the gateway as a /32,
// and a proxy ARP entry for every other pod of the node that is not a
// sibling on the uplink (veth and bridge pods), so that the children,
// on-link for the whole pod CIDR, reach them through the node.
func Node(n *drivers.Node, s *state.State, k Kind) error {
	if err := drivers.Forwarding(n, s); err != nil {
		return err
	}
	dev := &state.Link{NS: state.NodeNS, Name: k.Name, Type: k.LinkType, Alias: state.Alias(n.Name, k.Owner),
		MTU: n.MTU, Up: true, Parent: n.Spec.Uplink, Mode: k.LinkMode, Sysctls: Sysctls}
	if k.OwnMACs {
		dev.HWAddr = drivers.PodMAC(n.Spec.Gateway)
	}
	objs := []state.Object{dev,
		&state.Addr{NS: state.NodeNS, Link: k.Name, Prefix: netip.PrefixFrom(n.Spec.Gateway, 32), OwnerK: k.Owner},
	}
	for _, p := range n.Cluster.PodsOn(n.Name) {
		if p.Mode != k.Mode {
			objs = append(objs, &state.Neigh{NS: state.NodeNS, Link: k.Name, IP: p.IP, Proxy: true, OwnerK: k.Owner})
		}
	}
	return add(s, objs)
}

// Pod adds pod p: its netns, eth0 as a child of the uplink created in the
// pod's namespace, the pod address with the node's pod CIDR prefix
// (on-link for siblings), the default route via the gateway on the shim,
// and the node's /32 route back to the pod through the shim.
func Pod(n *drivers.Node, p *spec.ResolvedPod, s *state.State, k Kind) error {
	owner := drivers.PodOwner(p)
	eth0 := &state.Link{NS: p.Netns, Name: drivers.PodIfName, Type: k.LinkType, Alias: state.Alias(n.Name, owner),
		MTU: n.MTU, Up: true, Parent: n.Spec.Uplink, Mode: k.LinkMode}
	if k.OwnMACs {
		eth0.HWAddr = drivers.PodMAC(p.IP)
	}
	if err := drivers.PodNetns(p, s); err != nil {
		return err
	}
	return add(s, []state.Object{eth0,
		&state.Addr{NS: p.Netns, Link: drivers.PodIfName, Prefix: drivers.PodAddr(n, p), OwnerK: owner},
		&state.Route{NS: p.Netns, Dst: drivers.DefaultRoute, Gw: n.Spec.Gateway, Dev: drivers.PodIfName,
			OnLink: true, Scope: "global", OwnerK: owner},
		&state.Route{NS: state.NodeNS, Dst: netip.PrefixFrom(p.IP, 32), Dev: k.Name, Scope: "link", OwnerK: owner},
	})
}

func add(s *state.State, objs []state.Object) error {
	for _, o := range objs {
		if err := s.Add(o); err != nil {
			return err
		}
	}
	return nil
}
