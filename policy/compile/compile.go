package compile

import (
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/netreconcile/netreconcile/spec"
)

// Reserved identities, as the datapath reads them (bpf/policy.h).
const (
	// World is an address in no class: no identity entry matches it.
	World uint32 = 0
	// Host is the node's own addresses, always allowed.
	Host uint32 = 1
	// Any in a rule matches every remote address.
	Any uint32 = 0xffffffff
)

// Directions of a Side.
const (
	Ingress = "ingress"
	Egress  = "egress"
)

// ErrUnknownNode is returned for a node the file does not declare.
var ErrUnknownNode = errors.New("no such node in the topology")

// Program is what one node's datapath holds to enforce the policies.
type Program struct {
	Node string
	// Identities are the identity map's entries, by prefix.
	Identities []Identity
	// Sides are the isolated sides of the node's pods, sorted by address
	// and direction. A side that is not listed is not isolated.
	Sides []Side
	// Revision stands for all of the above; never 0.
	Revision uint32
}

// Identity is one entry of the identity map: the addresses of Prefix that
// no longer prefix claims have identity ID.
type Identity struct {
	Prefix netip.Prefix
	ID     uint32
	// Class describes the class for humans (and is hashed into ID).
	Class string
}

// Side is one isolated direction of one local pod and the rules that
// allow connections on it.
type Side struct {
	Pod   string // namespace/name
	IP    netip.Addr
	Dir   string // Ingress or Egress
	Rules []Rule // sorted (CompareRules), no duplicates
}

// Rule allows connections whose remote end has identity Remote (or Any),
// with protocol Proto, to a port in [Port, Port + 2^(16-PortBits)).
type Rule struct {
	Remote   uint32
	Proto    string // TCP, UDP or SCTP
	Port     uint16
	PortBits uint8 // 16: the single port Port; 0: every port (Port 0)
}

// String prints the rule as plans show it: remote/protocol/ports, e.g.
// "1f2e3d4c/TCP/80", "any/UDP/64-127", "any/TCP/all".
func (r Rule) String() string { return string(r.appendText(make([]byte, 0, 32))) }

// appendText appends String's form of r to b, built without fmt: plans
// hold the text of every rule of every local pod.
func (r Rule) appendText(b []byte) []byte {
	if r.Remote == Any {
		b = append(b, "any"...)
	} else {
		b = hex.AppendEncode(b, binary.BigEndian.AppendUint32(nil, r.Remote)) // %08x
	}
	b = append(b, '/')
	b = append(b, r.Proto...)
	b = append(b, '/')
	return appendPorts(b, r.Port, r.PortBits)
}

// PortsText prints a port block: "80", "64-127" or "all".
func PortsText(port uint16, bits uint8) string {
	return string(appendPorts(make([]byte, 0, 12), port, bits))
}

func appendPorts(b []byte, port uint16, bits uint8) []byte {
	switch {
	case bits == 0:
		return append(b, "all"...)
	case bits >= 16:
		return strconv.AppendInt(b, int64(port), 10)
	}
	last := int(port) + 1<<(16-bits) - 1
	b = strconv.AppendInt(b, int64(port), 10)
	b = append(b, '-')
	return strconv.AppendInt(b, int64(last), 10)
}

// ParseRule reads Rule.String's form back.
func ParseRule(s string) (Rule, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return Rule{}, fmt.Errorf("parse policy rule %q: want remote/protocol/ports", s)
	}
	var r Rule
	if parts[0] == "any" {
		r.Remote = Any
	} else {
		id, err := strconv.ParseUint(parts[0], 16, 32)
		if err != nil {
			return Rule{}, fmt.Errorf("parse policy rule %q: remote: %w", s, err)
		}
		r.Remote = uint32(id)
	}
	r.Proto = parts[1]
	if !slices.Contains(spec.Protocols, r.Proto) {
		return Rule{}, fmt.Errorf("parse policy rule %q: protocol %q", s, r.Proto)
	}
	if parts[2] == "all" {
		return r, nil
	}
	lo, hi, isRange := strings.Cut(parts[2], "-")
	first, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return Rule{}, fmt.Errorf("parse policy rule %q: port: %w", s, err)
	}
	r.Port, r.PortBits = uint16(first), 16
	if isRange {
		last, err := strconv.ParseUint(hi, 10, 16)
		if err != nil || last < first {
			return Rule{}, fmt.Errorf("parse policy rule %q: bad port range", s)
		}
		size := last - first + 1
		if size&(size-1) != 0 || first%size != 0 {
			return Rule{}, fmt.Errorf("parse policy rule %q: %d-%d is not an aligned block", s, first, last)
		}
		for size > 1 {
			size >>= 1
			r.PortBits--
		}
	}
	return r, nil
}

// CompareRules orders rules by remote, protocol and ports.
func CompareRules(a, b Rule) int {
	return cmp.Or(cmp.Compare(a.Remote, b.Remote), cmp.Compare(a.Proto, b.Proto),
		cmp.Compare(a.Port, b.Port), cmp.Compare(a.PortBits, b.PortBits))
}

// PortBlocks splits the range [first, last] into the fewest aligned
// power-of-two blocks, as (first port, fixed bits) pairs.
func PortBlocks(first, last int) [][2]int {
	var out [][2]int
	for lo := first; lo <= last; {
		size := 1 << 16
		for size > 1 && (lo%size != 0 || lo+size-1 > last) {
			size >>= 1
		}
		bits := 16
		for s := size; s > 1; s >>= 1 {
			bits--
		}
		out = append(out, [2]int{lo, bits})
		lo += size
	}
	return out
}

// Node compiles r's policies for node.
func Node(r *spec.Resolved, node string) (*Program, error) { return NewCluster(r).Node(node) }

// Cluster compiles one file's policies for any of its nodes, sharing
// between them what does not depend on the node: the classes (with
// their identities and the peers each rule resolves to) depend on it only
// through the ipBlocks of the rules that apply there, so nodes whose
// rules name the same blocks share one table. Safe for concurrent use.
type Cluster struct {
	r      *spec.Resolved
	mu     sync.Mutex
	tables map[string]*table // by the texts of the node's blocks

	// The indexes of each node's IPv4 pods, made once: a node looks at
	// its own pods, not at every pod of the file.
	podsOnce sync.Once
	podsOf   map[string][]int32
	// The policies of each namespace, in file order, made once: a node
	// looks at the policies of its pods' namespaces, not at every policy.
	polsOnce sync.Once
	polsOf   map[string][]*spec.ResolvedPolicy
	// changed holds the namespaces of the pods that differ from the last
	// file (ChangedNamespaces); nil when no files were compared.
	changed map[string]bool
}

// NewCluster prepares compiling r's policies for its nodes.
func NewCluster(r *spec.Resolved) *Cluster {
	return &Cluster{r: r, tables: map[string]*table{}}
}

// Node compiles the policies for node.
func (cl *Cluster) Node(node string) (*Program, error) {
	prog, err := cl.Shape(node)
	if err == nil {
		prog.Revision = revision(prog)
	}
	return prog, err
}

// Shape is Node without the revision (Revision 0): what counting a node's
// entries needs (validate does it for every node), without hashing every
// identity and rule of it.
func (cl *Cluster) Shape(node string) (*Program, error) {
	n := cl.r.Node(node)
	if n == nil {
		return nil, fmt.Errorf("compile policies for node %q: %w", node, ErrUnknownNode)
	}
	c := &compiler{r: cl.r, node: n, local: cl.localPods(node)}
	c.selectSides(cl.policiesOf)
	prog := &Program{Node: node}
	if len(c.sides) > 0 {
		c.table = cl.table(c.collectBlocks())
		named := make([][]*class, len(c.sides))
		for i, s := range c.sides {
			k := c.compileSide(s)
			prog.Sides = append(prog.Sides, Side{Pod: s.pod.Key, IP: s.pod.IP, Dir: s.dir, Rules: k.rules})
			named[i] = k.named
		}
		prog.Identities = c.identities(named)
	}
	return prog, nil
}

// localPods returns the indexes of node's IPv4 pods, in file order.
func (cl *Cluster) localPods(node string) []int32 {
	cl.podsOnce.Do(func() {
		cl.podsOf = map[string][]int32{}
		for i := range cl.r.Pods {
			if p := &cl.r.Pods[i]; p.IP.Is4() {
				cl.podsOf[keyOf(cl.podsOf, p.Node)] = append(cl.podsOf[p.Node], int32(i))
			}
		}
	})
	return cl.podsOf[node]
}

// policiesOf returns the policies of namespace ns, in file order.
func (cl *Cluster) policiesOf(ns string) []*spec.ResolvedPolicy {
	cl.polsOnce.Do(func() {
		cl.polsOf = map[string][]*spec.ResolvedPolicy{}
		for j := range cl.r.Policies {
			pol := &cl.r.Policies[j]
			cl.polsOf[pol.Namespace] = append(cl.polsOf[pol.Namespace], pol)
		}
	})
	return cl.polsOf[ns]
}

// table returns the classes of the pods and of blocks, built on first use.
func (cl *Cluster) table(blocks []*block) *table {
	texts := make([]string, len(blocks))
	for i, b := range blocks {
		texts[i] = b.text
	}
	key := strings.Join(texts, "\n")
	cl.mu.Lock()
	defer cl.mu.Unlock()
	t, ok := cl.tables[key]
	if !ok {
		t = &table{r: cl.r, blocks: blocks, ofPod: make([]*class, len(cl.r.Pods)), remotes: map[ruleRef]remotes{},
			kinds: map[string]*sideKind{}}
		t.buildClasses()
		t.netIDs = t.netIdentities()
		cl.tables[key] = t
	}
	return t
}

// keyOf returns key as a key of m: itself when m has it, else a copy.
// The file's strings are substrings of its text (spec/flow.go), and a key
// of a map that NewClusterFrom carries would keep an old file's text.
func keyOf[V any](m map[string]V, key string) string {
	if _, ok := m[key]; ok {
		return key
	}
	return strings.Clone(key)
}

// labelPair is a label's key and value, a map key made without
// concatenating (every pod's labels are indexed).
type labelPair struct{ k, v string }

// side is an isolated side of a local pod with the policies that select it.
type side struct {
	pod      *spec.ResolvedPod
	dir      string
	policies []*spec.ResolvedPolicy
}

// block is an IPv4 ipBlock; text names it in class descriptions.
type block struct {
	text   string
	cidr   netip.Prefix
	except []netip.Prefix
}

func (b *block) contains(p netip.Prefix) bool {
	if !covers(b.cidr, p) {
		return false
	}
	for _, e := range b.except {
		if covers(e, p) {
			return false
		}
	}
	return true
}

// covers reports whether every address of p is in outer.
func covers(outer, p netip.Prefix) bool {
	return outer.Bits() <= p.Bits() && outer.Contains(p.Addr())
}

// class is an identity class.
//
// A daemon keeps a table between passes (50,000 classes at 1000 nodes), so
// a class is kept to 48 bytes: its description behind a pointer that
// Cluster.Compact drops, no position.
type class struct {
	// desc describes the class (descOf): made again when needed for a
	// pod class of a carried table.
	desc   *string
	id     uint32
	blocks map[string]bool // texts of the blocks its members are in
	// members are the indexes of its pods in table.r.Pods, in file order
	// (none for a class of ipBlock prefixes): indexes rather than
	// pointers or addresses, so that a table carried to the next file
	// (NewClusterFrom) renumbers them and holds nothing of the last one.
	members []int32
}

// descOf returns k's description, made from a member if it was dropped.
func (t *table) descOf(k *class) string {
	t.descMu.Lock()
	defer t.descMu.Unlock()
	if k.desc == nil {
		p := t.pod(k)
		_, blocks := t.membership(netip.PrefixFrom(p.IP, 32))
		desc := podDesc(p, blocks)
		k.desc = &desc
		t.described = append(t.described, k)
	}
	return *k.desc
}

// pod returns a member of pod class k (its first), whose namespace,
// labels and ports are the class's; nil for a class of ipBlock prefixes.
func (t *table) pod(k *class) *spec.ResolvedPod {
	if len(k.members) == 0 {
		return nil
	}
	return &t.r.Pods[k.members[0]]
}

// compiler compiles for one node.
type compiler struct {
	r     *spec.Resolved
	node  *spec.ResolvedNode
	local []int32 // indexes of the node's IPv4 pods

	sides []side
	*table
}

// table is what compiling shares between nodes whose rules name the same
// blocks: read-only once built, but for remotes.
type table struct {
	r       *spec.Resolved
	blocks  []*block                // sorted by text
	classes []*class                // every class with members; sorted by desc
	ofPod   []*class                // by index in r.Pods; nil for a pod without an IPv4 address
	byID    []*class                // sorted by id (classByID)
	netCls  map[netip.Prefix]*class // classes of ipBlock prefixes (nil: the world)
	netIDs  []Identity              // the identities of netCls's prefixes, sorted

	// Pod classes by namespace, and by namespace and label pair, so that
	// a selector looks at the classes that can match, not at every pod.
	byNS    map[string][]*class
	byLabel map[string]map[labelPair][]*class // namespace -> label, made per namespace when needed (labelIndex)
	nss     *spec.NamespaceIndex              // every namespace: the file's and its pods'
	inBlock map[string][]*class               // block text -> classes in it
	// descMu guards the classes' descriptions, made again when needed,
	// and described: the classes whose description was made since the
	// last Cluster.Compact, once compacted (all of them before).
	descMu    sync.Mutex
	described []*class
	compacted bool
	// rehashed are the classes whose identity is not the hash of their
	// description (a collision): what NewClusterFrom checks a removed
	// class against.
	rehashed []*class

	// remotes holds the peer set of each rule: a policy's rules are
	// compiled once for every pod it selects, on every node.
	mu      sync.Mutex
	remotes map[ruleRef]remotes
	// kinds holds the rules of each kind of side (sideKey): a policy
	// selects pods on many nodes, and each such side has the same rules.
	kinds map[string]*sideKind
}

// sideKind is what the sides of one kind share: their rules, and the
// classes those name (whose pods' addresses a node holding such a side
// needs), in the order the rules first name them.
type sideKind struct {
	rules []Rule
	named []*class
	// What the rules were made of, for NewClusterFrom to tell whether
	// they still hold: the policies, the peers of their rules, and
	// whether a named egress port to any peer looked at every class.
	policies []string
	refs     []ruleRef
	anyNamed bool
}

// ruleRef identifies a rule's peers by its policy (key), direction and
// place: the same in the next file when the policy did not change.
type ruleRef struct {
	policy string
	dir    string
	rule   int
}

// selectSides finds the isolated sides of the local pods; policiesOf
// gives a namespace's policies in file order.
func (c *compiler) selectSides(policiesOf func(ns string) []*spec.ResolvedPolicy) {
	// A policy looks only at the local pods of its namespace.
	dirs := [2]string{Ingress, Egress}
	for _, i := range c.local {
		pod := &c.r.Pods[i]
		var selecting [2][]*spec.ResolvedPolicy // by direction, in file order
		for _, pol := range policiesOf(pod.Namespace) {
			if !matches(&pol.Spec.PodSelector, pod.Labels) {
				continue
			}
			for d, dir := range dirs {
				if slices.Contains(pol.Spec.PolicyTypes, specDir(dir)) {
					selecting[d] = append(selecting[d], pol)
				}
			}
		}
		for d, dir := range dirs {
			if pols := selecting[d]; len(pols) > 0 {
				c.sides = append(c.sides, side{pod: pod, dir: dir, policies: pols})
			}
		}
	}
	slices.SortStableFunc(c.sides, func(a, b side) int {
		return cmp.Or(a.pod.IP.Compare(b.pod.IP), strings.Compare(a.dir, b.dir))
	})
}

func specDir(dir string) string {
	if dir == Ingress {
		return spec.PolicyIngress
	}
	return spec.PolicyEgress
}

// rule is an ingress or egress rule seen the same way.
type rule struct {
	peers []spec.PolicyPeer
	ports []spec.PolicyPort
}

func rulesOf(pol *spec.ResolvedPolicy, dir string) []rule {
	var out []rule
	if dir == Ingress {
		for _, r := range pol.Spec.Ingress {
			out = append(out, rule{r.From, r.Ports})
		}
	} else {
		for _, r := range pol.Spec.Egress {
			out = append(out, rule{r.To, r.Ports})
		}
	}
	return out
}

// collectBlocks gathers the IPv4 ipBlocks of the rules that apply here,
// sorted by text. IPv6 blocks match no address the datapath sees.
func (c *compiler) collectBlocks() []*block {
	byText := map[string]*block{}
	for _, s := range c.sides {
		for _, pol := range s.policies {
			for _, ru := range rulesOf(pol, s.dir) {
				for _, peer := range ru.peers {
					if peer.IPBlock == nil {
						continue
					}
					b, ok := parseBlock(peer.IPBlock)
					if ok {
						byText[b.text] = b
					}
				}
			}
		}
	}
	blocks := make([]*block, 0, len(byText))
	for _, t := range slices.Sorted(maps.Keys(byText)) {
		blocks = append(blocks, byText[t])
	}
	return blocks
}

func parseBlock(ib *spec.IPBlock) (*block, bool) {
	cidr, err := netip.ParsePrefix(ib.CIDR)
	if err != nil || !cidr.Addr().Is4() {
		return nil, false
	}
	b := &block{cidr: cidr.Masked()}
	var ex []string
	for _, e := range ib.Except {
		p, err := netip.ParsePrefix(e)
		if err != nil || !p.Addr().Is4() {
			continue
		}
		b.except = append(b.except, p.Masked())
		ex = append(ex, p.Masked().String())
	}
	slices.Sort(ex)
	b.text = b.cidr.String()
	if len(ex) > 0 {
		b.text += " except " + strings.Join(ex, " ")
	}
	return b, true
}

func (c *table) membership(p netip.Prefix) (map[string]bool, string) {
	var in map[string]bool // nil for none: the commonest by far, one per pod
	var names []string
	for _, b := range c.blocks {
		if b.contains(p) {
			if in == nil {
				in = map[string]bool{}
			}
			in[b.text] = true
			names = append(names, b.text)
		}
	}
	return in, strings.Join(names, "; ")
}

// podDescs describes every IPv4 pod and the blocks it is in, on every CPU
// (a cluster's 50,000 pods).
func (c *table) podDescs() ([]string, []map[string]bool) {
	descs, ins := make([]string, len(c.r.Pods)), make([]map[string]bool, len(c.r.Pods))
	describe := func(from, to int) {
		for i := from; i < to; i++ {
			if p := &c.r.Pods[i]; p.IP.Is4() {
				in, blocks := c.membership(netip.PrefixFrom(p.IP, 32))
				descs[i], ins[i] = podDesc(p, blocks), in
			}
		}
	}
	n := len(c.r.Pods)
	workers := min(runtime.GOMAXPROCS(0), 1+n/1000)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { describe(w*n/workers, (w+1)*n/workers) })
	}
	wg.Wait()
	return descs, ins
}

// buildClasses sorts every pod, and every ipBlock prefix, into its class.
func (c *table) buildClasses() {
	byDesc := map[string]*class{}
	get := func(desc string, in map[string]bool) *class {
		if k, ok := byDesc[desc]; ok {
			return k
		}
		k := &class{desc: &desc, blocks: in}
		byDesc[desc] = k
		return k
	}
	descs, ins := c.podDescs()
	for i := range c.r.Pods {
		p := &c.r.Pods[i]
		if !p.IP.Is4() {
			continue
		}
		k := get(descs[i], ins[i])
		k.members = append(k.members, int32(i))
		c.ofPod[i] = k
	}
	c.netCls = map[netip.Prefix]*class{}
	for _, b := range c.blocks {
		for _, p := range append([]netip.Prefix{b.cidr}, b.except...) {
			if _, done := c.netCls[p]; done {
				continue
			}
			in, blocks := c.membership(p)
			if len(in) == 0 {
				c.netCls[p] = nil // the world: the entry overrides a shorter prefix
				continue
			}
			c.netCls[p] = get("addresses in "+blocks, in)
		}
	}
	c.byNS = map[string][]*class{}
	c.byLabel = map[string]map[labelPair][]*class{}
	c.inBlock = map[string][]*class{}
	for _, d := range slices.Sorted(maps.Keys(byDesc)) {
		k := byDesc[d]
		c.classes = append(c.classes, k)
		for text := range k.blocks {
			c.inBlock[text] = append(c.inBlock[text], k)
		}
		if len(k.members) == 0 {
			continue
		}
		ns := c.pod(k).Namespace
		c.byNS[keyOf(c.byNS, ns)] = append(c.byNS[ns], k)
	}
	c.nss = c.namespaceIndex()
	c.assignIDs()
}

// namespaceIndex indexes every namespace: the file's and its pods'.
func (c *table) namespaceIndex() *spec.NamespaceIndex {
	nsSet := map[string]bool{}
	for ns := range c.r.Namespaces {
		nsSet[ns] = true
	}
	for ns := range c.byNS {
		nsSet[ns] = true
	}
	return spec.NewNamespaceIndex(slices.Collect(maps.Keys(nsSet)), c.namespaceLabels)
}

// assignIDs gives every class its identity: a hash of the description,
// rehashed (in description order, so deterministically) on the rare
// collision or reserved value.
func (c *table) assignIDs() {
	used := make(map[uint32]bool, len(c.classes))
	c.rehashed = nil
	for _, k := range c.classes {
		for n := 0; ; n++ {
			if id := classID(*k.desc, n); !reserved(id) && !used[id] { // a build made every description
				k.id, used[id] = id, true
				if n > 0 {
					c.rehashed = append(c.rehashed, k)
				}
				break
			}
		}
	}
	c.byID = slices.SortedFunc(slices.Values(c.classes), compareIDs)
}

func compareIDs(a, b *class) int { return cmp.Compare(a.id, b.id) }

// classByID returns the class of identity id, or nil.
func (c *table) classByID(id uint32) *class {
	i, found := slices.BinarySearchFunc(c.byID, id, func(k *class, id uint32) int { return cmp.Compare(k.id, id) })
	if !found {
		return nil
	}
	return c.byID[i]
}

// classID is the n-th candidate identity of the class described by desc.
func classID(desc string, n int) uint32 {
	h := fnv.New32a()
	h.Write([]byte(desc))
	if n > 0 {
		fmt.Fprintf(h, "\x00%d", n)
	}
	return h.Sum32()
}

func reserved(id uint32) bool { return id == World || id == Host || id == Any }

func podDesc(p *spec.ResolvedPod, blocks string) string {
	// Made for every pod of the file: without a sorted copy of the keys
	// or a string per port for the usual few of each.
	var keyBuf [8]string
	keys := keyBuf[:0]
	for k := range p.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.Grow(64)
	b.WriteString("pods in ")
	b.WriteString(p.Namespace)
	b.WriteString(" with labels {")
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(p.Labels[k])
	}
	b.WriteByte('}')
	if len(p.Ports) > 0 {
		var portBuf [4]string
		ports := portBuf[:0]
		for _, cp := range p.Ports {
			ports = append(ports, cp.Name+"="+strconv.Itoa(cp.Port)+"/"+protocolOf(cp.Protocol))
		}
		slices.Sort(ports)
		b.WriteString(" ports {")
		for i, d := range ports {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(d)
		}
		b.WriteByte('}')
	}
	if blocks != "" {
		b.WriteString(" in ")
		b.WriteString(blocks)
	}
	return b.String()
}

// netIdentities are the entries of the ipBlock prefixes, sorted; where a
// pod's address is such a prefix (a /32), the pod's class wins: it
// carries the same blocks.
func (c *table) netIdentities() []Identity {
	ids := make([]Identity, 0, len(c.netCls))
	hosts := map[netip.Addr]*class{}
	for p := range c.netCls {
		if p.IsSingleIP() {
			hosts[p.Addr()] = nil
		}
	}
	if len(hosts) > 0 {
		// Rare: the pods are looked through rather than indexed by address.
		for i := range c.r.Pods {
			if _, ok := hosts[c.r.Pods[i].IP]; ok && c.ofPod[i] != nil {
				hosts[c.r.Pods[i].IP] = c.ofPod[i]
			}
		}
	}
	for p, k := range c.netCls {
		id := Identity{Prefix: p, ID: World, Class: "the world"}
		if pk := hosts[p.Addr()]; pk != nil && p.IsSingleIP() {
			k = pk
		}
		if k != nil {
			id.ID, id.Class = k.id, c.descOf(k)
		}
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareIdentities)
	return ids
}

func compareIdentities(a, b Identity) int {
	return cmp.Or(a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
}

// identities are the node's, sorted: the ipBlock prefixes, the /32s of
// the pods whose class a rule of the node names (namedBySide, by side)
// and of the node's own pods, and the node's own addresses as the host
// (over any other entry of the same prefix).
//
// Any other pod's address is left out, which changes no verdict: its
// longest match is then a block prefix that holds it in exactly the
// blocks its pod holds it in (every block prefix is an entry), so that
// prefix's class, or the world, is named only by the rules of those
// blocks, which would name the pod's class too; and such a pod's class is
// named by no rule here, so either identity meets the ANY rules only.
func (c *compiler) identities(namedBySide [][]*class) []Identity {
	ids := slices.Clone(c.netIDs)
	named := map[*class]bool{}
	for _, list := range namedBySide {
		for _, k := range list {
			if !named[k] {
				named[k] = true
				for _, m := range k.members {
					ids = append(ids, Identity{Prefix: netip.PrefixFrom(c.r.Pods[m].IP, 32), ID: k.id, Class: c.descOf(k)})
				}
			}
		}
	}
	for _, i := range c.local {
		if k := c.ofPod[i]; !named[k] {
			ids = append(ids, Identity{Prefix: netip.PrefixFrom(c.r.Pods[i].IP, 32), ID: k.id, Class: c.descOf(k)})
		}
	}
	// A pod's /32 equal to a block prefix is in both: one entry.
	slices.SortFunc(ids, compareIdentities)
	ids = slices.CompactFunc(ids, func(a, b Identity) bool { return a.Prefix == b.Prefix })
	for _, a := range []netip.Addr{c.node.Address.Addr(), c.node.Gateway} {
		if !a.Is4() {
			continue
		}
		host := Identity{Prefix: netip.PrefixFrom(a, 32), ID: Host, Class: "node " + c.node.Name}
		if i, found := slices.BinarySearchFunc(ids, host, compareIdentities); found {
			ids[i] = host
		} else {
			ids = slices.Insert(ids, i, host)
		}
	}
	return ids
}

// remotes is a rule's peer set: every address (any) or some classes.
type remotes struct {
	any     bool
	classes []*class
}

// ids returns the identities of rem's classes, or Any.
func (rem remotes) ids() []uint32 {
	if rem.any {
		return []uint32{Any}
	}
	out := make([]uint32, len(rem.classes))
	for i, k := range rem.classes {
		out[i] = k.id
	}
	return out
}

// peers returns the peer set of ref, the rule of pol whose peers are
// peers, resolved once.
func (c *table) peers(pol *spec.ResolvedPolicy, ref ruleRef, peers []spec.PolicyPeer) remotes {
	if len(peers) == 0 {
		return remotes{any: true}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if rem, ok := c.remotes[ref]; ok {
		return rem
	}
	rem := c.resolvePeers(pol.Namespace, peers)
	c.remotes[ref] = rem
	return rem
}

func (c *table) resolvePeers(policyNS string, peers []spec.PolicyPeer) remotes {
	set := map[*class]bool{}
	for _, peer := range peers {
		if peer.IPBlock != nil {
			b, ok := parseBlock(peer.IPBlock)
			if !ok {
				continue
			}
			for _, k := range c.inBlock[b.text] {
				set[k] = true
			}
			continue
		}
		namespaces := []string{policyNS}
		if peer.NamespaceSelector != nil {
			namespaces = namespaces[:0]
			for _, ns := range c.nss.Candidates(peer.NamespaceSelector.MatchLabels) {
				if matches(peer.NamespaceSelector, c.namespaceLabels(ns)) {
					namespaces = append(namespaces, ns)
				}
			}
		}
		for _, ns := range namespaces {
			for _, k := range c.candidates(ns, peer.PodSelector) {
				if !set[k] && (peer.PodSelector == nil || matches(peer.PodSelector, c.pod(k).Labels)) {
					set[k] = true
				}
			}
		}
	}
	// In identity order, sorted from the set: walking every class of the
	// file instead cost each rule of a 1000-node cluster 50,000 lookups.
	out := remotes{classes: slices.SortedFunc(maps.Keys(set), compareIDs)}
	return out
}

// candidates are the pod classes of namespace ns that sel may match: with
// matchLabels, those carrying its rarest pair; else all of them.
func (c *table) candidates(ns string, sel *spec.LabelSelector) []*class {
	all := c.byNS[ns]
	if sel == nil || len(sel.MatchLabels) == 0 {
		return all
	}
	best := all
	for k, v := range sel.MatchLabels {
		if l := c.labelIndex(ns)[labelPair{k, v}]; len(l) < len(best) {
			best = l
		}
		if len(best) == 0 {
			break
		}
	}
	return best
}

// labelIndex is byLabel[ns], made when a rule first names ns (a node's
// rules name few of a cluster's namespaces). Called with c.mu held.
func (c *table) labelIndex(ns string) map[labelPair][]*class {
	if m, ok := c.byLabel[ns]; ok {
		return m
	}
	m := map[labelPair][]*class{}
	for _, k := range c.byNS[ns] {
		for lk, lv := range c.pod(k).Labels {
			m[labelPair{lk, lv}] = append(m[labelPair{lk, lv}], k)
		}
	}
	c.byLabel[ns] = m
	return m
}

func (c *table) namespaceLabels(ns string) map[string]string {
	if l, ok := c.r.Namespaces[ns]; ok {
		return l
	}
	return map[string]string{spec.MetadataNameLabel: ns}
}

// compileSide compiles side s, once for every side of its kind (sideKey)
// through the table: the rules are shared, do not change them.
func (c *compiler) compileSide(s side) *sideKind {
	key := sideKey(s)
	c.mu.Lock()
	k, ok := c.kinds[key]
	c.mu.Unlock()
	if ok {
		return k
	}
	k = &sideKind{}
	for _, pol := range s.policies {
		k.policies = append(k.policies, pol.Key)
	}
	k.rules = c.compileRules(s, k)
	seen := map[uint32]bool{}
	for _, ru := range k.rules {
		if ru.Remote == Any || seen[ru.Remote] {
			continue
		}
		seen[ru.Remote] = true
		if cl := c.classByID(ru.Remote); cl != nil {
			k.named = append(k.named, cl)
		}
	}
	c.mu.Lock()
	c.kinds[key] = k
	c.mu.Unlock()
	return k
}

// sideKey names what a side's rules depend on: its direction, the
// policies that select it, and its pod's ports (an ingress rule may name
// one).
func sideKey(s side) string {
	var b strings.Builder
	b.WriteString(s.dir)
	for _, pol := range s.policies {
		b.WriteString("\x00" + pol.Namespace + "/" + pol.Name)
	}
	b.WriteString("\x00")
	for _, cp := range s.pod.Ports {
		b.WriteString(cp.Name + "=" + strconv.Itoa(cp.Port) + "/" + protocolOf(cp.Protocol) + ",")
	}
	return b.String()
}

// compileRules compiles the rules of side s, sorted, noting in kind what
// they depend on.
func (c *compiler) compileRules(s side, kind *sideKind) []Rule {
	// Rules packed in a word (the protocol by its place in protos): a set
	// of Rule hashed the protocol's text for each of a cluster's millions.
	set := map[uint64]struct{}{}
	var protos []string
	add := func(remote uint32, proto string, port uint16, bits uint8) {
		i := slices.Index(protos, proto)
		if i < 0 {
			i, protos = len(protos), append(protos, proto)
		}
		set[uint64(remote)<<32|uint64(i)<<24|uint64(port)<<8|uint64(bits)] = struct{}{}
	}
	for _, pol := range s.policies {
		for i, ru := range rulesOf(pol, s.dir) {
			ref := ruleRef{pol.Key, s.dir, i}
			rem := c.peers(pol, ref, ru.peers)
			if !rem.any {
				kind.refs = append(kind.refs, ref)
			}
			ids := rem.ids()
			ports := ru.ports
			if len(ports) == 0 {
				for _, proto := range spec.Protocols {
					for _, id := range ids {
						add(id, proto, 0, 0)
					}
				}
				continue
			}
			for _, pp := range ports {
				proto := protocolOf(pp.Protocol)
				switch {
				case pp.Port == nil:
					for _, id := range ids {
						add(id, proto, 0, 0)
					}
				case pp.Port.IsString && s.dir == Ingress:
					// The name is the selected pod's.
					if n, ok := namedPort(s.pod, pp.Port.StrVal, proto); ok {
						for _, id := range ids {
							add(id, proto, uint16(n), 16)
						}
					}
				case pp.Port.IsString:
					// The name is each peer's: only pod classes have ports.
					cls := rem.classes
					if rem.any {
						cls = c.classes // of which those of pods
						kind.anyNamed = true
					}
					for _, k := range cls {
						if n, ok := namedPort(c.pod(k), pp.Port.StrVal, proto); ok {
							add(k.id, proto, uint16(n), 16)
						}
					}
				default:
					last := pp.Port.IntVal
					if pp.EndPort > 0 {
						last = pp.EndPort
					}
					for _, blk := range PortBlocks(pp.Port.IntVal, last) {
						for _, id := range ids {
							add(id, proto, uint16(blk[0]), uint8(blk[1]))
						}
					}
				}
			}
		}
	}
	return unpack(set, protos)
}

// unpack returns the rules of set (packed by compileRules, the protocol
// by its place in protos), sorted.
func unpack(set map[uint64]struct{}, protos []string) []Rule {
	// With the protocols renumbered in text order, the words sort as
	// CompareRules sorts the rules.
	sorted := slices.Sorted(slices.Values(protos))
	rank := make([]uint64, len(protos))
	for i, p := range protos {
		rank[i] = uint64(slices.Index(sorted, p))
	}
	keys := make([]uint64, 0, len(set))
	for k := range set {
		keys = append(keys, k&^(0xff<<24)|rank[k>>24&0xff]<<24)
	}
	slices.Sort(keys)
	rules := make([]Rule, len(keys))
	for i, k := range keys {
		rules[i] = Rule{Remote: uint32(k >> 32), Proto: sorted[k>>24&0xff], Port: uint16(k >> 8), PortBits: uint8(k)}
	}
	return rules
}

func namedPort(p *spec.ResolvedPod, name, proto string) (int, bool) {
	if p == nil {
		return 0, false
	}
	for _, cp := range p.Ports {
		if cp.Name == name && protocolOf(cp.Protocol) == proto {
			return cp.Port, true
		}
	}
	return 0, false
}

func protocolOf(p string) string {
	if p == "" {
		return spec.ProtocolTCP
	}
	return p
}

// matches is metav1.LabelSelector matching: every matchLabels pair and
// every expression must hold; NotIn and DoesNotExist hold for an absent
// key; an unknown operator matches nothing.
func matches(sel *spec.LabelSelector, labels map[string]string) bool {
	if sel == nil {
		return false
	}
	for k, v := range sel.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, e := range sel.MatchExpressions {
		got, ok := labels[e.Key]
		var hold bool
		switch e.Operator {
		case "In":
			hold = ok && slices.Contains(e.Values, got)
		case "NotIn":
			hold = !ok || !slices.Contains(e.Values, got)
		case "Exists":
			hold = ok
		case "DoesNotExist":
			hold = !ok
		}
		if !hold {
			return false
		}
	}
	return true
}

// revision hashes the program's entries.
func revision(p *Program) uint32 {
	// The text hashed is "id <prefix> <id>\n" per identity, then "side
	// <ip> <direction>\n" per side followed by "  <rule>\n" per rule,
	// built without fmt: its cost showed on nodes with thousands of rules.
	h := fnv.New64a()
	var b []byte
	for _, id := range p.Identities {
		b = append(b[:0], "id "...)
		b = append(b, id.Prefix.String()...)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(id.ID), 10)
		b = append(b, '\n')
		h.Write(b)
	}
	for _, s := range p.Sides {
		b = append(b[:0], "side "...)
		b = append(b, s.IP.String()...)
		b = append(b, ' ')
		b = append(b, s.Dir...)
		b = append(b, '\n')
		for _, r := range s.Rules {
			b = append(b, "  "...)
			b = r.appendText(b)
			b = append(b, '\n')
		}
		h.Write(b)
	}
	sum := h.Sum64()
	rev := uint32(sum) ^ uint32(sum>>32)
	if rev == 0 {
		rev = 1
	}
	return rev
}
