package state

import (
	"fmt"
	"iter"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// RouteProtocol marks every route netreconcile installs (rtm_protocol).
// Routes with any other protocol are foreign and never changed.
const RouteProtocol = 154

// AliasPrefix starts the IFLA_IFALIAS of every link netreconcile owns.
// The full alias is "netreconcile/<node>/<owner>".
const AliasPrefix = "netreconcile/"

// NodeNS is the namespace reference of the node's host namespace in
// object keys; pod namespaces are referenced by name or absolute path.
const NodeNS = ""

// Alias returns the ownership mark for an object of node owned by owner
// (for example "pod/x/a" or "bridge").
func Alias(node, owner string) string { return AliasPrefix + node + "/" + owner }

// OwnerOf returns the owner part of alias when it marks an object of
// node, and false for foreign objects.
func OwnerOf(node, alias string) (string, bool) {
	p := AliasPrefix + node + "/"
	if !strings.HasPrefix(alias, p) {
		return "", false
	}
	return alias[len(p):], true
}

// Kind orders object kinds: creation runs in this order, deletion in
// reverse, so dependencies (a link before its address) hold.
//
// A pod's datapath comes before its addresses and routes: its programs are
// attached to its links, and its policy entries written, before anything
// can reach it, so a pod that policies isolate is isolated from its first
// packet (the fast-path endpoint entry is reachability too: a local pod's
// program delivers to it directly). Deleted in reverse, a pod stops being
// reachable before its isolation and programs go.
type Kind int

// Object kinds, in creation order.
const (
	KindNetns Kind = iota
	KindLink
	KindSysctl
	KindDatapath
	KindService
	KindAttach
	KindPolicyIdentity
	KindPodPolicy
	KindPolicyRevision
	KindEndpoint
	KindAddr
	KindNeigh
	KindRoute
	KindMasquerade
)

var kindNames = [...]string{"netns", "link", "sysctl", "datapath", "service", "program",
	"policy-identity", "pod-policy", "policy-revision", "endpoint", "address", "neighbour", "route", "masquerade"}

func (k Kind) String() string { return kindNames[k] }

// Object is one kernel object.
type Object interface {
	Kind() Kind
	// Key identifies the object among objects of its kind.
	Key() string
	// Owner names what the object exists for ("pod/x/a", "node"); it
	// groups the plan for humans.
	Owner() string
	// Attrs lists the attributes netreconcile sets, as name=value pairs in
	// a fixed order; two objects with equal Key and Attrs are the same.
	Attrs() []Attr
	// Immutable reports whether a change of attribute name needs the
	// object deleted and created again.
	Immutable(name string) bool
}

// Attr is one attribute of an object, as shown in a plan.
type Attr struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// NodeOwner owns node-wide objects that no pod or driver does (the node's
// sysctls).
const NodeOwner = "node"

// NSLabel names namespace ns in messages and keys: "node" for the node's.
func NSLabel(ns string) string {
	if ns == NodeNS {
		return "node"
	}
	return ns
}

// Link types, as the kernel names them, of the links netreconcile makes
// (Link.Type).
const (
	LinkVeth    = "veth"
	LinkBridge  = "bridge"
	LinkMacvlan = "macvlan"
	LinkIPvlan  = "ipvlan"
	LinkVXLAN   = "vxlan"
)

// Netns is a pod network namespace. Owned namespaces were created by
// netreconcile and are deleted by it; others (a path given in the file, or
// a named namespace that existed before) are only used. Ownership is not
// an attribute: a foreign namespace that the file names is used as it is,
// never replaced.
type Netns struct {
	Ref    string `json:"ref,omitempty"` // name under /var/run/netns or absolute path
	OwnerK string `json:"owner,omitempty"`
	Owned  bool   `json:"owned,omitempty"`
	// Adopt (desired only) allows using the namespace when it exists
	// and netreconcile did not create it; plan refuses one otherwise.
	// Not an attribute: it decides nothing about an existing object.
	Adopt bool `json:"adopt,omitempty"`
}

func (n *Netns) Kind() Kind            { return KindNetns }
func (n *Netns) Key() string           { return n.Ref }
func (n *Netns) Owner() string         { return n.OwnerK }
func (n *Netns) Immutable(string) bool { return true }
func (n *Netns) Attrs() []Attr         { return []Attr{{"owned", strconv.FormatBool(n.Owned)}} }
func (n *Netns) String() string        { return "netns " + n.Ref }
func (n *Netns) clone() *Netns         { c := *n; return &c }

var _ Object = (*Netns)(nil)

// Link is a network device. A veth pair is one Link: the host end (NS,
// Name) and its peer (PeerNS, PeerName); MTU and Up cover both ends.
type Link struct {
	NS     string `json:"ns,omitempty"`
	Name   string `json:"name,omitempty"`
	Type   string `json:"type,omitempty"`  // veth | bridge | macvlan | ipvlan | vxlan
	Alias  string `json:"alias,omitempty"` // ownership mark
	MTU    int    `json:"mtu,omitempty"`
	Up     bool   `json:"up,omitempty"`
	HWAddr string `json:"mac,omitempty"`    // wanted MAC of the (host) end; "" leaves the kernel's
	Master string `json:"master,omitempty"` // bridge port of, in NS

	PeerNS   string `json:"peer_ns,omitempty"` // veth: namespace of the peer end
	PeerName string `json:"peer_name,omitempty"`
	PeerMAC  string `json:"peer_mac,omitempty"` // veth: MAC of the peer end

	Parent string `json:"parent,omitempty"` // macvlan/ipvlan: parent device in the node namespace; vxlan: underlay device
	Mode   string `json:"mode,omitempty"`   // macvlan: bridge; ipvlan: l2

	VNI      int        `json:"vni,omitempty"` // vxlan
	Port     int        `json:"port,omitempty"`
	Local    netip.Addr `json:"local,omitempty"`
	Learning bool       `json:"learning,omitempty"`

	// ProxyARP is net.ipv4.conf.<Name>.proxy_arp=1 together with
	// net.ipv4.neigh.<Name>.proxy_delay=0 in NS: the kernel otherwise
	// delays proxy replies by up to 0.8 s.
	ProxyARP bool `json:"proxy_arp,omitempty"`
	// NoARP is IFF_NOARP on the link (and a veth's peer): a device that
	// no neighbour is resolved on, such as the node's service device.
	NoARP bool `json:"noarp,omitempty"`

	// Sysctls are per-interface settings under /proc/sys/net/ipv4 in NS,
	// keyed by directory and name ("conf/arp_ignore", "neigh/proxy_delay",
	// see SysctlPath). Like ProxyARP they vanish with the link, so they are
	// its attributes; only the keys a driver sets are compared.
	Sysctls map[string]string `json:"sysctls,omitempty"`

	// Observed only, not compared.
	Index int `json:"index,omitempty"`
}

// SysctlPath is the /proc/sys path of per-interface setting key (see
// Link.Sysctls) of device dev.
func SysctlPath(dev, key string) string {
	dir, name, _ := strings.Cut(key, "/")
	return "/proc/sys/net/ipv4/" + dir + "/" + dev + "/" + name
}

func (l *Link) Kind() Kind    { return KindLink }
func (l *Link) Key() string   { return LinkKey(l.NS, l.Name) }
func (l *Link) Owner() string { owner, _ := ownerFromAlias(l.Alias); return owner }
func (l *Link) String() string {
	return "link " + l.Name + " in " + NSLabel(l.NS)
}

// LinkKey is the key of link name in namespace ns.
func LinkKey(ns, name string) string { return NSLabel(ns) + "/" + name }

func ownerFromAlias(alias string) (string, bool) {
	rest, ok := strings.CutPrefix(alias, AliasPrefix)
	if !ok {
		return "", false
	}
	_, owner, ok := strings.Cut(rest, "/")
	return owner, ok
}

// Attrs implements Object.
func (l *Link) Attrs() []Attr {
	a := make([]Attr, 0, 9+len(l.Sysctls))
	a = append(a, Attr{"type", l.Type}, Attr{"alias", l.Alias}, Attr{"mtu", strconv.Itoa(l.MTU)}, Attr{"up", strconv.FormatBool(l.Up)})
	if l.HWAddr != "" {
		a = append(a, Attr{"mac", l.HWAddr})
	}
	if l.Master != "" || l.Type == LinkVeth {
		a = append(a, Attr{"master", l.Master})
	}
	if l.Type == LinkVeth {
		a = append(a, Attr{"peer", LinkKey(l.PeerNS, l.PeerName)})
		if l.PeerMAC != "" {
			a = append(a, Attr{"peer_mac", l.PeerMAC})
		}
	}
	if l.Parent != "" {
		a = append(a, Attr{"parent", l.Parent})
	}
	if l.Mode != "" {
		a = append(a, Attr{"mode", l.Mode})
	}
	if l.Type == LinkVXLAN {
		a = append(a, Attr{"vni", strconv.Itoa(l.VNI)}, Attr{"port", strconv.Itoa(l.Port)},
			Attr{"local", l.Local.String()}, Attr{"learning", strconv.FormatBool(l.Learning)})
	}
	if l.Type == LinkVeth || l.Type == LinkBridge {
		a = append(a, Attr{"proxy_arp", strconv.FormatBool(l.ProxyARP)})
	}
	if l.NoARP {
		a = append(a, Attr{"noarp", "true"})
	}
	keys := make([]string, 0, len(l.Sysctls))
	for k := range l.Sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		a = append(a, Attr{k, l.Sysctls[k]})
	}
	return a
}

// Immutable implements Object: what netlink cannot change in place.
func (l *Link) Immutable(name string) bool {
	switch name {
	case "type", "peer", "parent", "mode", "vni", "port", "local", "learning":
		return true
	}
	return false
}

// Addr is an address on a link.
type Addr struct {
	NS     string       `json:"ns,omitempty"`
	Link   string       `json:"link,omitempty"`
	Prefix netip.Prefix `json:"prefix,omitempty"`
	OwnerK string       `json:"owner,omitempty"`
}

func (a *Addr) Kind() Kind            { return KindAddr }
func (a *Addr) Key() string           { return LinkKey(a.NS, a.Link) + "/" + a.Prefix.String() }
func (a *Addr) Owner() string         { return a.OwnerK }
func (a *Addr) Attrs() []Attr         { return nil }
func (a *Addr) Immutable(string) bool { return true }
func (a *Addr) String() string {
	return "address " + a.Prefix.String() + " on " + LinkKey(a.NS, a.Link)
}

// Neigh is a permanent neighbour (ARP) entry, or with Bridge set an FDB
// entry of a VXLAN device, or with Proxy set a proxy ARP entry (the node
// answers ARP for IP on Link with Link's own MAC; no MAC of its own).
type Neigh struct {
	NS     string     `json:"ns,omitempty"`
	Link   string     `json:"link,omitempty"`
	IP     netip.Addr `json:"ip,omitempty"` // neighbour IP; FDB: the remote VTEP
	MAC    string     `json:"mac,omitempty"`
	Bridge bool       `json:"bridge,omitempty"` // an FDB entry (AF_BRIDGE) rather than ARP
	Proxy  bool       `json:"proxy,omitempty"`  // a proxy entry (NTF_PROXY): answered, not resolved
	OwnerK string     `json:"owner,omitempty"`
}

func (n *Neigh) Kind() Kind { return KindNeigh }
func (n *Neigh) Key() string {
	switch {
	case n.Bridge:
		return LinkKey(n.NS, n.Link) + "/fdb/" + n.MAC + "/" + n.IP.String()
	case n.Proxy:
		return LinkKey(n.NS, n.Link) + "/proxy/" + n.IP.String()
	}
	return LinkKey(n.NS, n.Link) + "/" + n.IP.String()
}
func (n *Neigh) Owner() string { return n.OwnerK }
func (n *Neigh) Attrs() []Attr {
	if n.Bridge || n.Proxy {
		return nil
	}
	return []Attr{{"lladdr", n.MAC}}
}
func (n *Neigh) Immutable(string) bool { return false }
func (n *Neigh) String() string {
	switch {
	case n.Bridge:
		return "fdb " + n.MAC + " dst " + n.IP.String() + " on " + LinkKey(n.NS, n.Link)
	case n.Proxy:
		return "proxy neighbour " + n.IP.String() + " on " + LinkKey(n.NS, n.Link)
	}
	return "neighbour " + n.IP.String() + " on " + LinkKey(n.NS, n.Link)
}

// Route is a route in the main table with netreconcile's protocol.
type Route struct {
	NS     string       `json:"ns,omitempty"`
	Dst    netip.Prefix `json:"dst,omitempty"`
	Gw     netip.Addr   `json:"via,omitempty"` // invalid: a device route
	Dev    string       `json:"dev,omitempty"`
	Src    netip.Addr   `json:"src,omitempty"`
	OnLink bool         `json:"onlink,omitempty"`
	Scope  string       `json:"scope,omitempty"` // link | global
	MTU    int          `json:"mtu,omitempty"`
	OwnerK string       `json:"owner,omitempty"`
}

func (r *Route) Kind() Kind    { return KindRoute }
func (r *Route) Key() string   { return NSLabel(r.NS) + "/" + r.Dst.String() }
func (r *Route) Owner() string { return r.OwnerK }
func (r *Route) Attrs() []Attr {
	a := make([]Attr, 0, 6)
	a = append(a, Attr{"dev", r.Dev})
	if r.Gw.IsValid() {
		a = append(a, Attr{"via", r.Gw.String()})
	}
	if r.Src.IsValid() {
		a = append(a, Attr{"src", r.Src.String()})
	}
	if r.OnLink {
		a = append(a, Attr{"onlink", "true"})
	}
	a = append(a, Attr{"scope", r.Scope})
	if r.MTU != 0 {
		a = append(a, Attr{"mtu", strconv.Itoa(r.MTU)})
	}
	return a
}
func (r *Route) Immutable(string) bool { return false }
func (r *Route) String() string        { return "route " + r.Dst.String() + " in " + NSLabel(r.NS) }

// Sysctl is a /proc/sys value netreconcile needs (net.ipv4.ip_forward in
// the node namespace). Interface sysctls are Link attributes instead, so
// they vanish with the link.
type Sysctl struct {
	NS     string `json:"ns,omitempty"`
	Name   string `json:"name,omitempty"` // with '/' separators, relative to /proc/sys
	Value  string `json:"value,omitempty"`
	OwnerK string `json:"owner,omitempty"`
}

func (s *Sysctl) Kind() Kind            { return KindSysctl }
func (s *Sysctl) Key() string           { return NSLabel(s.NS) + "/" + s.Name }
func (s *Sysctl) Owner() string         { return s.OwnerK }
func (s *Sysctl) Attrs() []Attr         { return []Attr{{"value", s.Value}} }
func (s *Sysctl) Immutable(string) bool { return false }
func (s *Sysctl) String() string {
	return "sysctl " + strings.ReplaceAll(s.Name, "/", ".") + " in " + NSLabel(s.NS)
}

// State is a set of objects keyed by kind and key.
type State struct {
	objs map[Kind]map[string]Object
}

// New returns an empty state.
func New() *State { return &State{objs: map[Kind]map[string]Object{}} }

// Add puts o into s, failing if another object has its key: two pods
// asking for the same link name is a bug in the desired model, not
// something to paper over.
func (s *State) Add(o Object) error { return s.AddKeyed(o, o.Key()) }

// AddKeyed is Add of o under key, which is o.Key() made before (a watch
// pass adds the thousands of service entries it kept from the last).
func (s *State) AddKeyed(o Object, key string) error {
	m := s.kind(o.Kind())
	if prev, ok := m[key]; ok && !sameAttrs(prev, o) {
		return fmt.Errorf("%s %s wanted twice (by %s and %s)", o.Kind(), key, prev.Owner(), o.Owner())
	}
	m[key] = o
	return nil
}

// Put puts o into s, replacing any object with its key.
func (s *State) Put(o Object) { s.kind(o.Kind())[o.Key()] = o }

// Merge puts every object of o into s, replacing those with the same key.
func (s *State) Merge(o *State) {
	for k, m := range o.objs {
		if len(m) > 0 {
			maps.Copy(s.kind(k), m)
		}
	}
}

func (s *State) kind(k Kind) map[string]Object {
	m := s.objs[k]
	if m == nil {
		m = map[string]Object{}
		s.objs[k] = m
	}
	return m
}

// Grow makes room for n more objects of kind k, sparing a large state
// the rehashing of growing one object at a time.
func (s *State) Grow(k Kind, n int) {
	if n <= 0 {
		return
	}
	grown := make(map[string]Object, len(s.objs[k])+n)
	maps.Copy(grown, s.objs[k])
	s.objs[k] = grown
}

// Get returns the object of kind k with key, or nil.
func (s *State) Get(k Kind, key string) Object { return s.objs[k][key] }

// Remove deletes the object of kind k with key.
func (s *State) Remove(k Kind, key string) { delete(s.objs[k], key) }

// Of returns the objects of kind k sorted by key.
func (s *State) Of(k Kind) []Object {
	m := s.objs[k]
	// Sort the map's keys (each object's Key()): computing keys in the
	// comparisons cost most of a plan with thousands of services.
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	out := make([]Object, len(keys))
	for i, key := range keys {
		out[i] = m[key]
	}
	return out
}

// All returns the objects of kind k with their keys, in no particular
// order: for a caller that sorts only what it keeps, cheaper than Of.
func (s *State) All(k Kind) iter.Seq2[string, Object] { return maps.All(s.objs[k]) }

// Count returns the number of objects of kind k in s.
func (s *State) Count(k Kind) int { return len(s.objs[k]) }

// Len returns the number of objects in s.
func (s *State) Len() int {
	n := 0
	for _, m := range s.objs {
		n += len(m)
	}
	return n
}

// Kinds lists every kind in creation order.
func Kinds() []Kind {
	return []Kind{KindNetns, KindLink, KindSysctl, KindDatapath, KindService, KindAttach,
		KindPolicyIdentity, KindPodPolicy, KindPolicyRevision, KindEndpoint, KindAddr, KindNeigh, KindRoute, KindMasquerade}
}

func sameAttrs(a, b Object) bool {
	x, y := a.Attrs(), b.Attrs()
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// Diff returns the attributes whose values differ between observed and
// desired, in desired's order.
func Diff(observed, desired Object) []Change {
	if sameFields(observed, desired) {
		return nil
	}
	from, to := observed.Attrs(), desired.Attrs()
	if slices.Equal(from, to) {
		return nil // told without a map: an object's attribute names are unique
	}
	have := make(map[string]string, len(from))
	for _, a := range from {
		have[a.Name] = a.Value
	}
	var out []Change
	for _, a := range to {
		if v, ok := have[a.Name]; !ok || v != a.Value {
			out = append(out, Change{Name: a.Name, From: have[a.Name], To: a.Value})
		}
	}
	return out
}

// sameFields reports whether a and b have equal Attrs without building
// them, the costliest part of comparing a large node: from the fields the
// attributes are made of (services and pod policies, whose lists Attrs
// joins), or from every field. False when it cannot tell.
func sameFields(a, b Object) bool {
	switch x := a.(type) {
	case *Service:
		y, ok := b.(*Service)
		return ok && x.sameAs(y)
	case *PodPolicy:
		y, ok := b.(*PodPolicy)
		return ok && x.Isolated == y.Isolated && slices.Equal(x.Rules, y.Rules)
	case *Netns:
		return equalTo(x, b)
	case *Sysctl:
		return equalTo(x, b)
	case *Addr:
		return equalTo(x, b)
	case *Neigh:
		return equalTo(x, b)
	case *Route:
		return equalTo(x, b)
	case *Datapath:
		return equalTo(x, b)
	case *Endpoint:
		return equalTo(x, b)
	case *Attach:
		return equalTo(x, b)
	case *PolicyIdentity:
		return equalTo(x, b)
	case *PolicyRevision:
		return equalTo(x, b)
	}
	return false
}

// equalTo reports whether b is a *T equal to *x.
func equalTo[T comparable](x *T, b any) bool {
	y, ok := b.(*T)
	return ok && *x == *y
}

// Change is one attribute moving from one value to another.
type Change struct {
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
}

// Equal reports whether s and o hold the same objects with the same
// attributes.
func (s *State) Equal(o *State) bool {
	if s.Len() != o.Len() {
		return false
	}
	for k, m := range s.objs {
		for key, a := range m {
			b := o.Get(k, key)
			if b == nil || !sameAttrs(a, b) {
				return false
			}
		}
	}
	return true
}
