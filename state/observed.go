package state

import "net/netip"

// Observed is what one observation pass saw on the node: the objects
// netreconcile owns, the foreign objects a desired one could clash with,
// and facts about the uplink. Its JSON form is `show -o json` and the
// input of `plan --observed`.
type Observed struct {
	// FormatVersion is ObservedFormat in what show -o json writes
	// (absent before 2.0, whose keys were partly camelCase).
	FormatVersion string  `json:"format_version,omitempty"`
	Node          string  `json:"node"`
	Uplink        Uplink  `json:"uplink"`
	Owned         *State  `json:"owned"`
	Foreign       Foreign `json:"foreign"`
	// Defences is what the datapath does against hostile pods (show
	// only; plan --observed does not need it).
	Defences *Defences `json:"defences,omitempty"`
	// Facts is what a plan needs from the node besides the objects
	// (plan --observed reads nothing else). Absent in files written
	// before it existed.
	Facts *NodeFacts `json:"node_facts,omitempty"`
	// Phases times the parts of the pass, for the verbose log.
	Phases []any `json:"-"`
	// Warnings name state records that were ignored.
	Warnings []string `json:"-"`
}

// Uplink describes the node's uplink as found in the node namespace.
type Uplink struct {
	Name  string         `json:"name"`
	Found bool           `json:"found"`
	Index int            `json:"index,omitempty"`
	MTU   int            `json:"mtu,omitempty"`
	Addrs []netip.Prefix `json:"addresses,omitempty"`
	// Unreachable lists peer node addresses the node namespace has no
	// route to (filled by the engine, with one route lookup per peer).
	Unreachable []netip.Addr `json:"unreachable,omitempty"`
}

// NodeFacts is what a plan needs from the node namespace whatever the
// file says: any link of it may be named the uplink, any peer address
// checked for a route.
type NodeFacts struct {
	// Links are the node namespace's links netreconcile does not own, by
	// name.
	Links map[string]NodeLink `json:"links"`
	// Routes are the destinations of the node namespace's IPv4 routes in
	// the main table (0.0.0.0/0 for a default route).
	Routes []netip.Prefix `json:"routes"`
	// LinkTypes says, per link type some kernels lack ("macvlan",
	// "ipvlan"), whether the node's kernel can create it.
	LinkTypes map[string]bool `json:"link_types"`
	// PinDir is the node's datapath pin directory (--bpffs), which the
	// desired datapath names: an offline plan uses it unless given one.
	PinDir string `json:"pin_dir,omitempty"`
	// NodeNetns is the node namespace as show was given it (--node-netns):
	// the datapath's attachment keys name it, so an offline plan uses it.
	NodeNetns string `json:"node_netns,omitempty"`
}

// NodeLink is one link of NodeFacts.
type NodeLink struct {
	Index int            `json:"index"`
	MTU   int            `json:"mtu"`
	Addrs []netip.Prefix `json:"addresses,omitempty"`
}

// UplinkFrom returns the facts about the uplink called name, with the
// peers that no route covers as Unreachable. It answers as a lookup of
// each peer in the main table would, ignoring policy routing.
func (f *NodeFacts) UplinkFrom(name string, peers []netip.Addr) Uplink {
	up := Uplink{Name: name}
	l, ok := f.Links[name]
	if !ok {
		return up
	}
	up.Found, up.Index, up.MTU, up.Addrs = true, l.Index, l.MTU, l.Addrs
	for _, a := range peers {
		routed := false
		for _, r := range f.Routes {
			routed = routed || r.Contains(a)
		}
		if !routed {
			up.Unreachable = append(up.Unreachable, a)
		}
	}
	return up
}

// Foreign lists objects that are not netreconcile's, by the keys desired
// objects would have.
type Foreign struct {
	Links  map[string]string `json:"links,omitempty"`     // link key -> type
	Addrs  map[string]string `json:"addresses,omitempty"` // AddrKey -> link key
	Routes map[string]int    `json:"routes,omitempty"`    // route key -> protocol
	Netns  map[string]bool   `json:"netns,omitempty"`     // existing namespaces the file names, not created by us
	// VXLAN lists foreign VXLAN devices as "VNI/port": the kernel allows
	// one device per VNI and UDP port in a namespace.
	VXLAN map[string]string `json:"vxlan,omitempty"` // link key -> "vni/port"
}

// NewObserved returns an empty observation of node.
func NewObserved(node string) *Observed {
	return &Observed{Node: node, Owned: New(), Foreign: Foreign{
		Links: map[string]string{}, Addrs: map[string]string{}, Routes: map[string]int{}, Netns: map[string]bool{},
		VXLAN: map[string]string{},
	}}
}

// AddrKey keys a foreign address: its namespace and IP.
func AddrKey(ns string, ip netip.Addr) string { return NSLabel(ns) + "/" + ip.String() }

// Defences is what the node's datapath does against hostile pods, as
// show reports it: per pod (or source address) the source its interface
// is bound to, the packets dropped and why, and the conntrack entries it
// holds; and what the in-kernel conntrack collector did. Everything is
// read from the pinned maps; nothing is run or changed.
type Defences struct {
	// Pods are sorted by address: every bound pod, and every other
	// address with drops or conntrack entries charged to it (a remote
	// pod that opened connections to a local one).
	Pods []PodDefence `json:"pods"`
	// Unbound counts, by reason, the drops on interfaces that had no
	// source binding (no pod to charge them to).
	Unbound map[string]uint64 `json:"unbound_drops,omitempty"`
	// Collector is the conntrack collector's progress.
	Collector Collector `json:"conntrack_gc"`
}

// PodDefence is one source address's part of Defences.
type PodDefence struct {
	Pod     string `json:"pod,omitempty"` // namespace/name, when the file names the address
	Address string `json:"address"`
	// MAC is the bound source MAC ("" when no interface here is bound
	// to the address).
	MAC string `json:"mac,omitempty"`
	// Drops counts dropped packets by reason (only reasons that
	// happened): on the pod's own hooks, and the policy-ingress drops of
	// packets to it.
	Drops     map[string]uint64 `json:"drops,omitempty"`
	Conntrack ConntrackShare    `json:"conntrack"`
}

// ConntrackShare is how many entries a source holds in each conntrack
// table (each is bounded per source).
type ConntrackShare struct {
	Service uint32 `json:"service"`
	Policy  uint32 `json:"policy"`
}

// Collector is what the conntrack collector did: walks so far, and the
// entries its last walk looked at and deleted (expired).
type Collector struct {
	Runs        uint64 `json:"runs"`
	LastScanned uint64 `json:"last_scanned"`
	LastDeleted uint64 `json:"last_deleted"`
}

// ObservedFormat is the format of show -o json: 2.0 made every key
// snake_case, as the plan's are.
const ObservedFormat = "2.0"

// LegacyKeys are the keys show -o json wrote before 2.0 and their
// names since, for reading older files.
var LegacyKeys = map[string]string{
	"podCIDR":            "pod_cidr",
	"pinDir":             "pin_dir",
	"policyIdentities":   "policy_identities",
	"podPolicies":        "pod_policies",
	"policyRevisions":    "policy_revisions",
	"fastPath":           "fast_path",
	"mapSizes":           "map_sizes",
	"conntrackPerSource": "conntrack_per_source",
	"nodeAddr":           "node_addr",
	"affinityTimeout":    "affinity_timeout",
	"peerNs":             "peer_ns",
	"peerName":           "peer_name",
	"peerMac":            "peer_mac",
	"proxyArp":           "proxy_arp",
}
