// Package svcdev is the node's service device: the way processes of the
// node's own namespace (kubelet probes, node agents, any host-network
// process) reach services.
//
// Design notes. When the file has services, the node namespace gets:
//   - a veth pair with both ends in the node namespace, "nrsvc0" and its
//     peer "nrsvc1": NOARP (nothing behind it answers ARP; the kernel
//     addresses frames to the device's own MAC), up, the pods' MTU, no
//     addresses, marked as the node's;
//   - a route for cluster.serviceCIDR, and a /32 for every externalIP,
//     via nrsvc0 with src <node address> and netreconcile's protocol;
//   - the datapath's nr_from_host program at tcx egress of nrsvc0
//     (added with the datapath's other attachments, see package desired).
//
// A node's connection to a clusterIP is then routed into nrsvc0, where
// the program does what a pod's program does (pick a backend, affinity,
// conntrack, refusal) and sends the translated packet on (to a local pod,
// or out of the uplink to another node); a refusal goes back into the
// node through nrsvc0's ingress. The source is the node address, so that
// replies from pods on other nodes come back over the underlay.
//
// Why a device and not a socket hook (cgroup connect4/sendmsg4): such a
// hook serves only the processes of the cgroup it is attached to. A real
// node's processes live in many cgroups, and a lab's node processes live
// in the machine's root cgroup, which netreconcile must not touch. A
// route serves every process of the namespace, whatever its cgroup.
//
// Two ends: a veth needs a peer; the peer stays in the node namespace so
// that nothing needs a namespace of its own. Cost: two links, one route
// per external IP, one program.
package svcdev

import (
	"net/netip"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/state"
)

// Device names: the end the routes point at, and its peer.
const (
	Name     = "nrsvc0"
	PeerName = "nrsvc1"
)

// Owner owns the device and its routes: node-wide, like the node's
// sysctls.
const Owner = state.NodeOwner

// Wanted reports whether the node gets a service device: when the file
// has services.
func Wanted(n *drivers.Node) bool { return len(n.Cluster.Services) > 0 }

// Node adds the service device and its routes to s, when Wanted.
func Node(n *drivers.Node, s *state.State) error {
	if !Wanted(n) {
		return nil
	}
	src := n.Spec.Address.Addr()
	objs := []state.Object{
		&state.Link{NS: state.NodeNS, Name: Name, Type: state.LinkVeth, Alias: state.Alias(n.Name, Owner), MTU: n.MTU,
			Up: true, PeerNS: state.NodeNS, PeerName: PeerName, NoARP: true},
	}
	if n.Cluster.ServiceCIDR.IsValid() {
		objs = append(objs, route(n.Cluster.ServiceCIDR, src, Owner))
	}
	for i := range n.Cluster.Services {
		svc := &n.Cluster.Services[i]
		if !n.Cluster.ServiceCIDR.IsValid() {
			objs = append(objs, route(netip.PrefixFrom(svc.ClusterIP, 32), src, Owner))
		}
		for _, ip := range svc.ExternalIPs {
			objs = append(objs, route(netip.PrefixFrom(ip, 32), src, "service/"+svc.Key))
		}
	}
	for _, o := range objs {
		if err := s.Add(o); err != nil {
			return err
		}
	}
	return nil
}

func route(dst netip.Prefix, src netip.Addr, owner string) *state.Route {
	return &state.Route{NS: state.NodeNS, Dst: dst, Dev: Name, Src: src, Scope: "link", OwnerK: owner}
}
