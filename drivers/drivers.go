// Package drivers defines the small interface every pod attachment mode
// implements, and the registry the reconcile engine picks modes from.
//
// A driver does no I/O at plan time: it turns a resolved pod into the
// kernel objects the pod needs (state.Object values). The engine observes,
// diffs and applies those objects generically, so a mode is mostly a
// description of its kernel state, as flannel's host-gw backend is.
package drivers

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"
	"strings"

	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// Driver is one pod attachment mode.
type Driver interface {
	// Mode is the name used in the topology file.
	Mode() string
	// Check reports, before any change, whether this kernel can run the
	// mode (for example ipvlan is absent on some kernels).
	Check(k *Kernel) error
	// Node adds the objects shared by all pods of this mode on the node
	// (a bridge, a gateway shim). Called once when any pod uses the mode.
	Node(n *Node, s *state.State) error
	// Pod adds the objects pod p needs.
	Pod(n *Node, p *spec.ResolvedPod, s *state.State) error
}

// Node is what drivers know about the node they build for.
type Node struct {
	Name    string
	Spec    *spec.ResolvedNode
	Cluster *spec.Resolved
	// MTU of pod interfaces: cluster.mtu, or the uplink's minus the VXLAN
	// overhead when the cluster uses VXLAN anywhere (routing.PodMTU).
	MTU int
	// UplinkIndex is the uplink's ifindex in the node namespace.
	UplinkIndex int
}

// Kernel describes what the running kernel supports, probed once.
type Kernel struct {
	// LinkTypes maps a link type ("ipvlan") to whether it can be created.
	LinkTypes map[string]bool
}

// Registry maps mode names to drivers.
type Registry struct{ m map[string]Driver }

// NewRegistry returns a registry holding ds.
func NewRegistry(ds ...Driver) *Registry {
	r := &Registry{m: map[string]Driver{}}
	for _, d := range ds {
		r.m[d.Mode()] = d
	}
	return r
}

// Get returns the driver for mode, or an error listing the valid modes.
func (r *Registry) Get(mode string) (Driver, error) {
	if d, ok := r.m[mode]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("unknown pod mode %q (valid: %s)", mode, strings.Join(r.Modes(), ", "))
}

// Modes lists the registered modes, sorted.
func (r *Registry) Modes() []string {
	out := make([]string, 0, len(r.m))
	for m := range r.m {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// PodIfName is the pod-side interface name in every mode.
const PodIfName = "eth0"

// HostIfName returns the host-side interface name of pod key on node:
// "nr" and a hash, so names are short (<= 15 bytes), stable, and
// recognisably ours.
func HostIfName(node, key string) string {
	h := fnv.New32a()
	h.Write([]byte(node + "/" + key))
	return fmt.Sprintf("nr%08x", h.Sum32())
}

// PodOwner is the owner string of pod p's objects.
func PodOwner(p *spec.ResolvedPod) string { return "pod/" + p.Key }

// PodNetns adds the pod's namespace object: owned when it is a name
// (created when missing), used only when it is a path. Adopt carries the
// pod's opt-in to use one that netreconcile did not create.
func PodNetns(p *spec.ResolvedPod, s *state.State) error {
	return s.Add(&state.Netns{Ref: p.Netns, OwnerK: PodOwner(p), Owned: !strings.HasPrefix(p.Netns, "/"), Adopt: p.AdoptNetns})
}

// PodAddr is the pod's address with its node's pod CIDR prefix length.
func PodAddr(n *Node, p *spec.ResolvedPod) netip.Prefix {
	return netip.PrefixFrom(p.IP, n.Spec.PodCIDR.Bits())
}

// DefaultRoute is the IPv4 default destination.
var DefaultRoute = netip.MustParsePrefix("0.0.0.0/0")

// Forwarding adds net.ipv4.ip_forward=1 in the node namespace: every mode
// routes pod traffic through the node.
func Forwarding(n *Node, s *state.State) error {
	return s.Add(&state.Sysctl{NS: state.NodeNS, Name: "net/ipv4/ip_forward", Value: "1", OwnerK: state.NodeOwner})
}

// PodMAC derives the pod interface's MAC from its IPv4 address (0a:58
// and the four address bytes, as kubenet and OVN-Kubernetes do). A pod
// recreated with the same address keeps its MAC, so neighbour caches on
// the node and on bridge peers stay right and traffic resumes at once.
func PodMAC(ip netip.Addr) string {
	b := ip.As4()
	return fmt.Sprintf("0a:58:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}
