// Package macvlan is the macvlan mode: each pod's eth0 is a bridge-mode
// macvlan child of the node's uplink, and a host-side child of the same
// uplink, the shim, carries the pods' gateway (the same-host-pod-modes
// article's design, without its masquerade).
//
// Design notes. Per node, once any pod uses the mode (package shim):
//   - forwarding on in the node namespace;
//   - the shim "nrmv0": a bridge-mode macvlan of the uplink, MAC derived
//     from the gateway (0a:58 + its address, stable across re-creation),
//     the gateway (first host of the pod CIDR) as a /32, arp_ignore=1,
//     arp_announce=2 and proxy_delay=0;
//   - one proxy ARP entry on the shim per veth or bridge pod of the node.
//
// Per pod, in this order: the pod netns; eth0, a macvlan of the uplink
// created directly in the pod's namespace (MAC 0a:58 + pod address, as
// veth pod ends); the pod address with the pod CIDR's prefix; the default
// route via the gateway, onlink; in the node, a /32 route to the pod via
// the shim, scope link.
//
// Why a shim: a macvlan parent never sees its children's frames, and they
// never see its, so the node's own stack is unreachable through the
// uplink. Bridge mode does let siblings talk, so a sibling in the node
// namespace that owns the gateway address is the pods' way in: pod ->
// node, pod -> other nodes (the node routes it, directly or over VXLAN)
// and pod -> anything the node's datapath must see go to the shim's MAC.
//
// Return path, and why no masquerade. The article gives the shim the
// pod /24, so the node reaches pods through its connected route, and then
// masquerades pod-to-pod service traffic: the backend would otherwise
// answer its client directly over the macvlan bridge, bypassing the node
// that did the DNAT. Here:
//   - the node reaches each pod through its own /32 route via the shim, not
//     a connected /24: the shim's gateway is a /32, so a bridge-mode bridge
//     on the same node keeps its connected route and the two modes mix;
//   - pods keep the /24 on-link, so same-node macvlan pods talk to each
//     other straight over the uplink's macvlan bridge, both ways, without
//     the node (the mode's speed, see e2e/bench);
//   - services are translated by the eBPF datapath on the pod's own eth0
//     (DNAT leaving the client, reverse NAT entering it), so a backend's
//     direct reply is translated where it arrives and nothing needs the
//     node in the reply path: no masquerade, and pods see real client
//     addresses (network policy needs them).
//
// Every path through the node is symmetric: a pod sends off-subnet
// traffic to the shim and the node answers through the /32 via the shim.
// Pods reach same-node veth and bridge pods (on-link for them, but not on
// the macvlan wire) through the shim's proxy entries; the bridge's
// proxy_arp answers bridge pods asking for macvlan pods, since those are
// routed via the shim. Proxy entries, not proxy_arp on the shim: the shim
// receives the underlay's broadcasts, and proxy_arp would answer for every
// address the node routes elsewhere (other nodes' underlay addresses
// included), poisoning the underlay's ARP caches. Pod CIDRs are per node,
// so entries for this node's pods never answer another node's question.
//
// Cost: per pod one link, one address and two routes; adding a veth or
// bridge pod on a node that has macvlan pods adds one proxy entry to the
// shim. The uplink itself is never changed.
package macvlan

import (
	"errors"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/drivers/shim"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// Shim is the host-side macvlan carrying the gateway.
const Shim = "nrmv0"

// Owner owns the node-wide objects of the mode.
const Owner = "macvlan"

// ErrUnavailable is returned by Check on a kernel without macvlan.
var ErrUnavailable = errors.New("macvlan is not available in this kernel")

var kind = shim.Kind{Mode: spec.ModeMacvlan, LinkType: state.LinkMacvlan, LinkMode: "bridge", Name: Shim, Owner: Owner, OwnMACs: true}

// Driver implements drivers.Driver for mode macvlan.
type Driver struct{}

// Mode implements drivers.Driver.
func (Driver) Mode() string { return spec.ModeMacvlan }

// Check implements drivers.Driver: it fails when a probe found no macvlan.
func (Driver) Check(k *drivers.Kernel) error {
	if ok, probed := k.LinkTypes[state.LinkMacvlan]; probed && !ok {
		return ErrUnavailable
	}
	return nil
}

// Node implements drivers.Driver.
func (Driver) Node(n *drivers.Node, s *state.State) error { return shim.Node(n, s, kind) }

// Pod implements drivers.Driver.
func (Driver) Pod(n *drivers.Node, p *spec.ResolvedPod, s *state.State) error {
	return shim.Pod(n, p, s, kind)
}
