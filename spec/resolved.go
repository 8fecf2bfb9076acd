package spec

import (
	"maps"
	"net/netip"
	"reflect"
	"strings"
)

// Resolved is the desired model: the file after validation, with defaults
// applied, addresses parsed and allocated, and everything sorted by key.
// Later stages (reconcile, drivers, datapath, policy) read only this.
type Resolved struct {
	PodCIDR     netip.Prefix
	ServiceCIDR netip.Prefix // invalid (zero) when the file has none
	Mode        string       // default pod mode
	Routing     string       // auto | direct | vxlan
	VNI         int
	VXLANPort   int
	MTU         int // 0: derive from the uplink
	// Maps are the sizes of the datapath's maps, defaults applied.
	Maps MapSizes
	// ConntrackPerSource is cluster.datapath.conntrackPerSource (0: the
	// datapath's default).
	ConntrackPerSource int
	// Masquerade is cluster.egress.masquerade (default true);
	// NonMasqueradeCIDRs its exceptions, parsed.
	Masquerade         bool
	NonMasqueradeCIDRs []netip.Prefix
	// NodePortMin and NodePortMax bound cluster.nodePortRange (inclusive;
	// default 30000-32767).
	NodePortMin, NodePortMax int

	// Namespaces maps every namespace that the file names (in namespaces:
	// or used by a pod, service or policy) to its labels, including
	// kubernetes.io/metadata.name.
	Namespaces map[string]map[string]string

	Nodes    []ResolvedNode    // sorted by Name
	Pods     []ResolvedPod     // sorted by Key
	Services []ResolvedService // sorted by Key
	Policies []ResolvedPolicy  // sorted by Key
}

// ResolvedNode is a node with parsed addresses.
type ResolvedNode struct {
	Name    string
	Index   int          // its place in the file's nodes list, for messages
	Address netip.Prefix // underlay address and its subnet
	Uplink  string       // default "eth0"
	PodCIDR netip.Prefix
	Gateway netip.Addr // first host address of PodCIDR: the bridge/shim gateway, never a pod's
}

// ResolvedPod is a pod with its address, mode and netns decided.
type ResolvedPod struct {
	Key       string // namespace/name
	Name      string
	Namespace string
	Node      string
	IP        netip.Addr
	Allocated bool   // IP came from the allocator, not the file
	Mode      string // veth | bridge | macvlan | ipvlan
	Netns     string // a name under /var/run/netns, or an absolute path
	// AdoptNetns: the pod may use Netns when it exists and netreconcile
	// did not create it (pods[].adoptNetns).
	AdoptNetns bool
	Labels     map[string]string
	Ports      []ContainerPort // protocol defaulted to TCP
}

// ResolvedService is a service with parsed clusterIP and defaulted ports.
type ResolvedService struct {
	Key             string
	Name            string
	Namespace       string
	ClusterIP       netip.Addr
	Selector        map[string]string
	Ports           []ServicePort // protocol defaulted to TCP, targetPort to port
	SessionAffinity string        // None | ClientIP
	// AffinityTimeout is sessionAffinityConfig.clientIP.timeoutSeconds
	// (default 10800; meaningful with ClientIP affinity).
	AffinityTimeout int
	Type            string // ClusterIP | NodePort
	// ExternalIPs are served like the clusterIP, on the service's ports.
	ExternalIPs           []netip.Addr
	ExternalTrafficPolicy string // Cluster | Local (NodePort and externalIPs from outside)
	InternalTrafficPolicy string // Cluster | Local (clusterIP from this node's pods and the node)
}

// ResolvedPolicy is a policy with its namespace and policyTypes defaulted
// the Kubernetes way (Ingress always; Egress when egress rules exist).
type ResolvedPolicy struct {
	Key       string
	Name      string
	Namespace string
	Spec      PolicySpec
}

// Node returns the node called name, or nil.
func (r *Resolved) Node(name string) *ResolvedNode {
	for i := range r.Nodes {
		if r.Nodes[i].Name == name {
			return &r.Nodes[i]
		}
	}
	return nil
}

// PodsOn returns the pods placed on node, in key order.
func (r *Resolved) PodsOn(node string) []ResolvedPod {
	var out []ResolvedPod
	for _, p := range r.Pods {
		if p.Node == node {
			out = append(out, p)
		}
	}
	return out
}

// MapSizes are the numbers of entries of the datapath's maps. The plan
// refuses a file whose entries for a node do not fit (see
// reconcile.CheckCapacity).
type MapSizes struct {
	Services         int // nr_services and nr_svc_ids: one entry per service port
	Backends         int // nr_backends: one per backend of each service port
	Endpoints        int // nr_endpoints: one per veth or bridge pod of the node
	Affinity         int // nr_affinity: ClientIP affinity (LRU, filled by traffic)
	Conntrack        int // nr_ct: translated connections, two entries each (filled by traffic)
	PolicyIdentities int // nr_pol_ids: one per identity prefix
	PolicyPods       int // nr_pol_pods: one per isolated side of a local pod
	PolicyRules      int // nr_pol_rules: one per rule of each isolated side
}

// DefaultMapSizes are the sizes bpf/datapath.c and bpf/policy.h declare
// (NR_MAX_*); a test in reconcile holds them equal to the object's.
var DefaultMapSizes = MapSizes{
	Services: 65536, Backends: 65536, Endpoints: 16384, Affinity: 16384, Conntrack: 131072,
	PolicyIdentities: 65536, PolicyPods: 32768, PolicyRules: 262144,
}

// NodeNames lists the file's nodes for messages: "a, b, c".
func (r *Resolved) NodeNames() string {
	names := make([]string, 0, len(r.Nodes))
	for _, n := range r.Nodes {
		names = append(names, n.Name)
	}
	return strings.Join(names, ", ")
}

// SameLabels is maps.Equal for labels or a selector, at once for the one
// map: a model resolved by a Parser shares the maps of the items that did
// not change with the last one (read-only), so comparing two files' pods
// mostly compares pointers.
func SameLabels(a, b map[string]string) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer() || maps.Equal(a, b)
}
