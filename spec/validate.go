package spec

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// Defaults and limits of the v1 file.
const (
	DefaultNamespace = "default"
	DefaultUplink    = "eth0"
	DefaultVNI       = 1
	DefaultVXLANPort = 4789
	MaxVNI           = 1<<24 - 1
	MinMTU           = 576
	MaxMTU           = 65535

	// MetadataNameLabel is set on every namespace to its name, as
	// Kubernetes does, so namespaceSelector can pick a namespace by name.
	MetadataNameLabel = "kubernetes.io/metadata.name"

	AffinityNone     = "None"
	AffinityClientIP = "ClientIP"
	// DefaultAffinityTimeout is Kubernetes' default
	// sessionAffinityConfig.clientIP.timeoutSeconds (3 h).
	DefaultAffinityTimeout = 10800
	// MaxAffinityTimeout is Kubernetes' bound on it (one day).
	MaxAffinityTimeout = 86400

	ServiceClusterIP = "ClusterIP"
	ServiceNodePort  = "NodePort"
	// TrafficCluster and TrafficLocal are the values of
	// external/internalTrafficPolicy.
	TrafficCluster = "Cluster"
	TrafficLocal   = "Local"
	// DefaultNodePortMin and DefaultNodePortMax are Kubernetes' default
	// node port range.
	DefaultNodePortMin = 30000
	DefaultNodePortMax = 32767

	PolicyIngress = "Ingress"
	PolicyEgress  = "Egress"

	ProtocolTCP  = "TCP"
	ProtocolUDP  = "UDP"
	ProtocolSCTP = "SCTP"
)

// Modes lists the valid pod attachment modes, in the order messages show them.
var Modes = []string{ModeVeth, ModeBridge, ModeMacvlan, ModeIPvlan}

// RoutingModes lists the valid cluster.routing.mode values.
var RoutingModes = []string{RoutingAuto, RoutingDirect, RoutingVXLAN}

// Protocols lists the valid port protocols.
var Protocols = []string{ProtocolTCP, ProtocolUDP, ProtocolSCTP}

// Operators lists the valid label selector operators.
var Operators = []string{"In", "NotIn", "Exists", "DoesNotExist"}

// resolveParsed runs Resolve even when decoding found problems, so that a
// user sees structural and semantic errors together, but drops semantic
// errors at or under a field that failed to decode: those only repeat the
// first error ("required" after "expected a string").
func resolveParsed(t *Topology, pos *Positions, err error) (*Resolved, error) {
	if t == nil {
		return nil, err
	}
	var decodeErrs *Errors
	if err != nil && !errors.As(err, &decodeErrs) {
		return nil, err
	}
	r, rerr := Resolve(t, pos)
	if decodeErrs == nil {
		return r, rerr
	}
	all := &Errors{List: slices.Clone(decodeErrs.List)}
	var semantic *Errors
	if errors.As(rerr, &semantic) {
		for _, e := range semantic.List {
			covered := slices.ContainsFunc(decodeErrs.List, func(d *Error) bool { return d.File == e.File && isUnder(e.Path, d.Path) })
			if !covered {
				all.List = append(all.List, e)
			}
		}
	}
	return nil, all.orNil()
}

// Resolve checks a decoded topology as a whole and builds the desired
// model: defaults applied, addresses parsed, pod addresses allocated,
// everything sorted by key. pos (from Parse, may be nil) places errors in
// the file. Every problem is reported, as *Errors; on error the Resolved is
// nil, so later stages never see a half-valid model.
func Resolve(t *Topology, pos *Positions) (*Resolved, error) {
	if t == nil {
		return nil, errors.New("resolve topology: no topology")
	}
	c := &checker{pos: pos}
	r := &Resolved{}
	c.header(t)
	c.cluster(t, r)
	c.namespaces(t, r)
	nodes := c.nodes(t, r)
	// Pods, services and policies are checked apart, on every CPU (each
	// writes only its own part of r), and their problems and namespaces
	// joined in that order, as if checked one after the other.
	svcs, pols := &checker{pos: pos}, &checker{pos: pos}
	var wg sync.WaitGroup
	wg.Go(func() {
		svcs.services(t, r)
		r.Services = sortedByKey(r.Services, func(s *ResolvedService) string { return s.Key })
	})
	wg.Go(func() {
		pols.policies(t, r)
		slices.SortFunc(r.Policies, func(a, b ResolvedPolicy) int { return strings.Compare(a.Key, b.Key) })
	})
	c.pods(t, r, nodes)
	wg.Wait()
	for _, sub := range []*checker{c, svcs, pols} {
		for _, ns := range sub.used {
			if _, ok := r.Namespaces[ns]; !ok {
				r.Namespaces[ns] = map[string]string{MetadataNameLabel: ns}
			}
		}
		if sub != c {
			for _, e := range sub.errs.List {
				if e.Msg != tooManyErrors("").Msg {
					c.push(e)
				}
			}
		}
	}
	if err := c.errs.orNil(); err != nil {
		return nil, err
	}
	slices.SortFunc(r.Nodes, func(a, b ResolvedNode) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(r.Pods, func(a, b ResolvedPod) int { return strings.Compare(a.Key, b.Key) })
	return r, nil
}

// sortedByKey sorts s by key through an index: moving thousands of large
// structs in the sort cost more than copying them once.
func sortedByKey[T any](s []T, key func(*T) string) []T {
	if len(s) == 0 {
		return s
	}
	idx := make([]int, len(s))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(key(&s[a]), key(&s[b])) })
	out := make([]T, len(s))
	for i, j := range idx {
		out[i] = s[j]
	}
	return out
}

// checker collects problems with their positions.
type checker struct {
	pos  *Positions
	errs Errors
	used []string // namespaces objects live in (see use)
}

func (c *checker) add(path, format string, args ...any) {
	if len(c.errs.List) <= maxErrors {
		c.push(c.pos.ErrorAt(path, fmt.Sprintf(format, args...)))
	}
}

// push keeps e among the first maxErrors problems, then notes once that
// there were more.
func (c *checker) push(e *Error) {
	switch {
	case len(c.errs.List) < maxErrors:
		c.errs.List = append(c.errs.List, e)
	case len(c.errs.List) == maxErrors:
		file := ""
		if c.pos != nil {
			file = c.pos.File
		}
		c.errs.List = append(c.errs.List, tooManyErrors(file))
	}
}

// ref names the item at path (pods[3]) in a message about another one.
// In a set of several files it is the item's path in its own file and
// where it starts there (pods[0] in a.yaml:12), so that a duplicate names
// both places.
func (c *checker) ref(path string) string {
	if c.pos == nil || c.pos.set == nil {
		return path
	}
	p, local := c.pos.set.locate(path)
	return fmt.Sprintf("%s in %s:%d", local, p.File, p.Lookup(local).Line)
}

// written reports whether a field whose value is zero was present in the
// file, to tell an explicit 0 from an absent value. Without positions
// nothing is known and zero means absent.
func (c *checker) written(path string) bool {
	return c.pos.writtenZero(path)
}

func (c *checker) header(t *Topology) {
	switch t.APIVersion {
	case APIVersion:
	case "":
		c.add("apiVersion", "required; must be %q", APIVersion)
	default:
		c.add("apiVersion", "unsupported apiVersion %q; must be %q", t.APIVersion, APIVersion)
	}
	switch t.Kind {
	case Kind:
	case "":
		c.add("kind", "required; must be %q", Kind)
	default:
		c.add("kind", "unsupported kind %q; must be %q", t.Kind, Kind)
	}
}

func (c *checker) cluster(t *Topology, r *Resolved) {
	cl := t.Cluster
	if cl.PodCIDR == "" {
		c.add("cluster.podCIDR", "required")
	} else if p, ok := c.cidr("cluster.podCIDR", cl.PodCIDR); ok {
		if rs, why := reservedRange(p); why != "" {
			c.add("cluster.podCIDR", "%s overlaps %s (%s)", p, rs, why)
		} else if p.Bits() > 30 {
			c.add("cluster.podCIDR", "%s is too small: a node needs at least a /30", p)
		} else {
			r.PodCIDR = p
		}
	}
	if cl.ServiceCIDR != "" {
		if p, ok := c.cidr("cluster.serviceCIDR", cl.ServiceCIDR); ok {
			if cl.PodCIDR != "" && r.PodCIDR.IsValid() && r.PodCIDR.Overlaps(p) {
				c.add("cluster.serviceCIDR", "%s overlaps cluster.podCIDR %s", p, r.PodCIDR)
			} else if rs, why := reservedRange(p); why != "" {
				c.add("cluster.serviceCIDR", "%s overlaps %s (%s)", p, rs, why)
			} else {
				r.ServiceCIDR = p
			}
		}
	}

	r.Mode = cl.Mode
	if r.Mode == "" {
		r.Mode = ModeVeth
	}
	c.oneOf("cluster.mode", cl.Mode, "mode", Modes)

	r.Routing = cl.Routing.Mode
	if r.Routing == "" {
		r.Routing = RoutingAuto
	}
	c.oneOf("cluster.routing.mode", cl.Routing.Mode, "routing mode", RoutingModes)

	r.VNI = cl.Routing.VXLAN.VNI
	if r.VNI == 0 && !c.written("cluster.routing.vxlan.vni") {
		r.VNI = DefaultVNI
	} else if r.VNI < 1 || r.VNI > MaxVNI {
		c.add("cluster.routing.vxlan.vni", "must be between 1 and %d, got %d", MaxVNI, r.VNI)
	}
	r.VXLANPort = cl.Routing.VXLAN.Port
	if r.VXLANPort == 0 && !c.written("cluster.routing.vxlan.port") {
		r.VXLANPort = DefaultVXLANPort
	} else {
		c.portRange("cluster.routing.vxlan.port", r.VXLANPort)
	}

	r.Maps = c.mapSizes(cl.Datapath.Maps)
	if v := cl.Datapath.ConntrackPerSource; v != 0 || c.written("cluster.datapath.conntrackPerSource") {
		if v < 1 || v > MaxMapSize {
			c.add("cluster.datapath.conntrackPerSource", "must be between 1 and %d entries, got %d", MaxMapSize, v)
		}
		r.ConntrackPerSource = v
	}
	r.Masquerade = cl.Egress.Masquerade == nil || *cl.Egress.Masquerade
	for i, s := range cl.Egress.NonMasqueradeCIDRs {
		if p, ok := c.cidr(index("cluster.egress.nonMasqueradeCIDRs", i), s); ok {
			r.NonMasqueradeCIDRs = append(r.NonMasqueradeCIDRs, p)
		}
	}
	c.nodePortRange(cl.NodePortRange, r)
	r.MTU = cl.MTU
	if r.MTU != 0 && (r.MTU < MinMTU || r.MTU > MaxMTU) {
		c.add("cluster.mtu", "must be 0 (derive from the uplink) or between %d and %d, got %d", MinMTU, MaxMTU, r.MTU)
	}
}

// MaxMapSize bounds every cluster.datapath.maps size: hash maps are
// allocated whole when created, and 2^22 entries already take hundreds of
// MiB of kernel memory for the larger ones.
const MaxMapSize = 1 << 22

// mapSizes validates cluster.datapath.maps and returns the sizes with
// defaults for the absent ones.
func (c *checker) mapSizes(m DatapathMaps) MapSizes {
	out := DefaultMapSizes
	for _, f := range []struct {
		name string
		v    int
		dst  *int
	}{
		{"services", m.Services, &out.Services}, {"backends", m.Backends, &out.Backends},
		{"endpoints", m.Endpoints, &out.Endpoints}, {"affinity", m.Affinity, &out.Affinity},
		{"conntrack", m.Conntrack, &out.Conntrack}, {"policyIdentities", m.PolicyIdentities, &out.PolicyIdentities},
		{"policyPods", m.PolicyPods, &out.PolicyPods}, {"policyRules", m.PolicyRules, &out.PolicyRules},
	} {
		path := "cluster.datapath.maps." + f.name
		switch {
		case f.v == 0 && !c.written(path):
		case f.v < 1 || f.v > MaxMapSize:
			c.add(path, "must be between 1 and %d entries, got %d", MaxMapSize, f.v)
		default:
			*f.dst = f.v
		}
	}
	return out
}

func (c *checker) namespaces(t *Topology, r *Resolved) {
	r.Namespaces = map[string]map[string]string{}
	first := map[string]int{}
	for i, ns := range t.Namespaces {
		p := index("namespaces", i)
		if !c.name(join(p, "name"), ns.Name) {
			continue
		}
		if j, dup := first[ns.Name]; dup {
			c.add(join(p, "name"), "duplicate namespace %q (first at %s)", ns.Name, c.ref(index("namespaces", j)))
			continue
		}
		first[ns.Name] = i
		c.labels(join(p, "labels"), ns.Labels)
		if v, ok := ns.Labels[MetadataNameLabel]; ok && v != ns.Name {
			c.add(key(join(p, "labels"), MetadataNameLabel), "must be %q, the namespace's name (it is set automatically)", ns.Name)
		}
		labels := maps.Clone(ns.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[MetadataNameLabel] = ns.Name
		r.Namespaces[ns.Name] = labels
	}
}

// use records a namespace that an object lives in, so that
// namespaceSelector sees namespaces that were never listed. Resolve adds
// them to the model.
func (c *checker) use(ns string) { c.used = append(c.used, ns) }

// objectKey validates an object's name and namespace and returns its
// namespace (defaulted) and key; ok is false when either is invalid.
func (c *checker) objectKey(path string, name, namespace string) (ns, k string, ok bool) {
	// The paths are made only for a problem: a cluster has 50,000 items.
	ok = validName(name) || c.name(join(path, "name"), name)
	ns = namespace
	if ns == "" {
		ns = DefaultNamespace
	} else if !validName(ns) && !c.name(join(path, "namespace"), ns) {
		ok = false
	}
	return ns, ns + "/" + name, ok
}

// uniqueKey is objectKey for item i of a list (pods, services,
// policies), which also reports a key an earlier item took (keyAt: key ->
// index). ok is false when the key is invalid or taken.
func (c *checker) uniqueKey(list string, i int, kind, name, namespace string, keyAt map[string]int) (ns, k string, ok bool) {
	if validName(name) && (namespace == "" || validName(namespace)) {
		ns = cmp.Or(namespace, DefaultNamespace)
		k = ns + "/" + name
	} else if ns, k, ok = c.objectKey(index(list, i), name, namespace); !ok {
		return ns, k, false
	}
	if j, dup := keyAt[k]; dup {
		c.add(join(index(list, i), "name"), "duplicate %s %q (first at %s)", kind, k, c.ref(index(list, j)))
		return ns, k, false
	}
	keyAt[k] = i
	return ns, k, true
}

// nodeAt is a node's prefix (its underlay address or its podCIDR), kept
// with the node's index and name for messages.
type nodeAt struct {
	i    int
	name string
	p    netip.Prefix
}

// nodesSeen is what the node checks have accepted so far, to find
// duplicates and overlaps.
type nodesSeen struct {
	nameAt map[string]int
	addrAt map[netip.Addr]int
	cidrs  []nodeAt
	addrs  []nodeAt
}

func (c *checker) nodes(t *Topology, r *Resolved) map[string]*ResolvedNode {
	if len(t.Nodes) == 0 {
		c.add("nodes", "at least one node is required")
	}
	seen := &nodesSeen{nameAt: map[string]int{}, addrAt: map[netip.Addr]int{}}
	for i, n := range t.Nodes {
		p := index("nodes", i)
		rn := ResolvedNode{Name: n.Name, Index: i, Uplink: c.uplink(join(p, "uplink"), n.Uplink)}
		nameOK := c.name(join(p, "name"), n.Name)
		if j, dup := seen.nameAt[n.Name]; nameOK && dup {
			c.add(join(p, "name"), "duplicate node %q (first at %s)", n.Name, c.ref(index("nodes", j)))
			nameOK = false
		}
		c.nodeUnderlay(join(p, "address"), t, r, seen, &rn)
		c.nodePodCIDR(join(p, "podCIDR"), n.PodCIDR, r, seen, &rn)
		if nameOK {
			seen.nameAt[n.Name] = i
			r.Nodes = append(r.Nodes, rn)
		}
	}
	byName := map[string]*ResolvedNode{}
	for i := range r.Nodes {
		byName[r.Nodes[i].Name] = &r.Nodes[i]
	}
	if r.Routing == RoutingDirect {
		c.oneSubnet(seen.addrs)
	}
	return byName
}

// uplink checks a node's uplink name and returns it, defaulted.
func (c *checker) uplink(path, uplink string) string {
	if uplink == "" {
		return DefaultUplink
	}
	if msg := checkIfName(uplink); msg != "" {
		c.add(path, "%s", msg)
	} else if what := OwnLinkName(uplink); what != "" {
		c.add(path, "uplink %q is named like %s, a device netreconcile creates and deletes; give the node's underlay interface", uplink, what)
	}
	return uplink
}

// nodeUnderlay checks the underlay address of t.Nodes[rn.Index] against the
// cluster's ranges and the nodes before it, and sets rn.Address.
func (c *checker) nodeUnderlay(path string, t *Topology, r *Resolved, seen *nodesSeen, rn *ResolvedNode) {
	n := t.Nodes[rn.Index]
	if n.Address == "" {
		c.add(path, "required")
		return
	}
	a, ok := c.nodeAddress(path, n.Address)
	if !ok {
		return
	}
	rn.Address = a
	switch j, dup := seen.addrAt[a.Addr()]; {
	case dup:
		c.add(path, "address %s is already used by %s (node %q)", a.Addr(), c.ref(index("nodes", j)), t.Nodes[j].Name)
	case r.PodCIDR.IsValid() && r.PodCIDR.Contains(a.Addr()):
		c.add(path, "underlay address %s lies inside cluster.podCIDR %s", a.Addr(), r.PodCIDR)
	case r.ServiceCIDR.IsValid() && r.ServiceCIDR.Contains(a.Addr()):
		c.add(path, "underlay address %s lies inside cluster.serviceCIDR %s", a.Addr(), r.ServiceCIDR)
	default:
		seen.addrAt[a.Addr()] = rn.Index
		seen.addrs = append(seen.addrs, nodeAt{rn.Index, n.Name, a})
	}
}

// nodePodCIDR checks a node's podCIDR against the reserved ranges, the
// cluster's podCIDR and the nodes before it, and sets rn's PodCIDR and
// Gateway.
func (c *checker) nodePodCIDR(path, podCIDR string, r *Resolved, seen *nodesSeen, rn *ResolvedNode) {
	if podCIDR == "" {
		c.add(path, "required")
		return
	}
	pc, ok := c.cidr(path, podCIDR)
	if !ok {
		return
	}
	rs, why := reservedRange(pc)
	switch {
	case why != "":
		c.add(path, "%s overlaps %s (%s)", pc, rs, why)
	case pc.Bits() > 30:
		c.add(path, "%s leaves no address for pods (network, gateway and broadcast take three); use a /30 or shorter", pc)
	case r.PodCIDR.IsValid() && !(r.PodCIDR.Bits() <= pc.Bits() && r.PodCIDR.Contains(pc.Addr())):
		c.add(path, "%s is not inside cluster.podCIDR %s", pc, r.PodCIDR)
	default:
		for _, o := range seen.cidrs {
			if o.p.Overlaps(pc) {
				c.add(path, "%s overlaps %s.podCIDR %s (node %q)", pc, c.ref(index("nodes", o.i)), o.p, o.name)
				return
			}
		}
		seen.cidrs = append(seen.cidrs, nodeAt{rn.Index, rn.Name, pc})
		rn.PodCIDR = pc
		rn.Gateway = pc.Addr().Next()
	}
}

// oneSubnet checks that the nodes' underlay addresses share one subnet, as
// routing mode direct needs; each node is reported once, against the
// first earlier node it does not share a subnet with.
func (c *checker) oneSubnet(addrs []nodeAt) {
	for j := 1; j < len(addrs); j++ {
		for _, a := range addrs[:j] {
			b := addrs[j]
			if !a.p.Contains(b.p.Addr()) || !b.p.Contains(a.p.Addr()) {
				c.add(join(index("nodes", b.i), "address"),
					"routing mode direct needs every node on one underlay subnet: node %q (%s) and node %q (%s) do not share one; use auto or vxlan",
					a.name, a.p, b.name, b.p)
				break
			}
		}
	}
}

// podsSeen is what the pod checks have accepted so far, and the address
// allocators of the nodes.
type podsSeen struct {
	nodes    map[string]*ResolvedNode
	keyAt    map[string]int
	netnsAt  map[string]int
	ipAt     map[netip.Addr]int
	nodeAt   map[netip.Addr]string // underlay addresses
	allocs   map[string]*allocator
	resolved []ResolvedPod
}

// allocFor returns node n's allocator, made on first use.
func (s *podsSeen) allocFor(n *ResolvedNode) *allocator {
	if a, ok := s.allocs[n.Name]; ok {
		return a
	}
	a := newAllocator(n.PodCIDR)
	s.allocs[n.Name] = a
	return a
}

func (c *checker) pods(t *Topology, r *Resolved, nodes map[string]*ResolvedNode) {
	seen := &podsSeen{
		nodes:    nodes,
		keyAt:    make(map[string]int, len(t.Pods)),
		netnsAt:  make(map[string]int, len(t.Pods)),
		ipAt:     make(map[netip.Addr]int, len(t.Pods)),
		nodeAt:   make(map[netip.Addr]string, len(nodes)),
		allocs:   map[string]*allocator{},
		resolved: make([]ResolvedPod, len(t.Pods)),
	}
	for _, n := range nodes {
		if n.Address.IsValid() {
			seen.nodeAt[n.Address.Addr()] = n.Name
		}
	}
	for i, p := range t.Pods {
		seen.resolved[i] = c.pod(i, p, r, seen)
	}
	// Allocation comes after every explicit ip is known and reserved, in
	// file order; see alloc.go for why.
	for i, p := range t.Pods {
		node := nodes[p.Node]
		if p.IP != "" || node == nil || !node.PodCIDR.IsValid() {
			continue
		}
		rp := &seen.resolved[i]
		ip, ok := seen.allocFor(node).allocate(rp.Key)
		if !ok {
			c.add(index("pods", i), "no free address left for pod %q: node %q's podCIDR %s is full", rp.Key, node.Name, node.PodCIDR)
			continue
		}
		rp.IP, rp.Allocated = ip, true
	}
	r.Pods = seen.resolved
}

// pod checks pods[i] and resolves it, all but an allocated address. The
// paths of its fields are made only for a problem (at): a cluster's pods
// would make half a million strings nobody reads.
func (c *checker) pod(i int, p Pod, r *Resolved, seen *podsSeen) ResolvedPod {
	at := func(field string) string { return join(index("pods", i), field) }
	// A duplicate's default netns would clash too: say it once.
	ns, k, ok := c.uniqueKey("pods", i, "pod", p.Name, p.Namespace, seen.keyAt)
	c.use(ns)
	rp := ResolvedPod{
		Key: k, Name: p.Name, Namespace: ns, Node: p.Node, Mode: p.Mode, Netns: p.Netns, AdoptNetns: p.AdoptNetns,
		// Labels are shared with the decoded file (both are read-only): a
		// copy was a quarter of a cluster-sized file's memory.
		Labels: p.Labels,
	}
	var good bool
	if rp.Ports, good = validPorts(p.Ports); !good {
		rp.Ports = c.containerPorts(at("ports"), p.Ports)
	}
	if rp.Mode == "" {
		rp.Mode = r.Mode
	}
	if p.Mode != "" && !slices.Contains(Modes, p.Mode) {
		c.oneOf(at("mode"), p.Mode, "mode", Modes)
	}
	if !validLabels(p.Labels) {
		c.labels(at("labels"), p.Labels)
	}
	c.podNetns(at, i, &rp, ok, seen)
	node := c.podNode(at, p.Node, seen.nodes)
	if p.IP != "" {
		c.podIP(at, i, p.IP, node, &rp, seen)
	}
	return rp
}

// validPorts returns ports with the protocol defaulted when they are all
// valid (what containerPorts checks), else false.
func validPorts(ports []ContainerPort) ([]ContainerPort, bool) {
	var out []ContainerPort
	for i, cp := range ports {
		if cp.Port < 1 || cp.Port > 65535 || cp.Protocol != "" && !slices.Contains(Protocols, cp.Protocol) ||
			cp.Name != "" && (checkPortName(cp.Name) != "" || slices.ContainsFunc(ports[:i], func(o ContainerPort) bool { return o.Name == cp.Name })) {
			return nil, false
		}
		if cp.Protocol == "" {
			cp.Protocol = ProtocolTCP
		}
		out = append(out, cp)
	}
	return out, true
}

// validLabels reports whether every label key and value is valid.
func validLabels(m map[string]string) bool {
	for k, v := range m {
		if checkLabelKey(k) != "" || checkLabelValue(v) != "" {
			return false
		}
	}
	return true
}

// validName reports whether c.name accepts v.
func validName(v string) bool { return v != "" && checkDNSLabel(v) == "" }

// podNetns defaults the pod's netns (when keyOK: its name and namespace
// are valid) and checks it is valid and not another pod's.
func (c *checker) podNetns(at func(string) string, i int, rp *ResolvedPod, keyOK bool, seen *podsSeen) {
	netnsOK := true
	if rp.Netns == "" {
		rp.Netns = rp.Namespace + "-" + rp.Name
		netnsOK = keyOK // an invalid name is reported already
		if keyOK && len(rp.Netns) > maxNetnsName {
			c.add(at("netns"), "the default netns name %q is longer than %d characters; set netns", rp.Netns, maxNetnsName)
			netnsOK = false
		}
	} else if msg := checkNetns(rp.Netns); msg != "" {
		c.add(at("netns"), "%s", msg)
		netnsOK = false
	}
	if !netnsOK {
		return
	}
	id := netnsIdentity(rp.Netns)
	if j, dup := seen.netnsAt[id]; dup {
		c.add(at("netns"), "netns %q is already used by %s (pod %q)", rp.Netns, c.ref(index("pods", j)), seen.resolved[j].Key)
	} else {
		seen.netnsAt[id] = i
	}
}

// podNode returns the pod's node, or nil when it is missing, unknown or
// has no valid podCIDR (reported already).
func (c *checker) podNode(at func(string) string, name string, nodes map[string]*ResolvedNode) *ResolvedNode {
	if name == "" {
		c.add(at("node"), "required")
		return nil
	}
	node := nodes[name]
	if node == nil {
		c.add(at("node"), "unknown node %q (nodes: %s)", name, strings.Join(slices.Sorted(maps.Keys(nodes)), ", "))
		return nil
	}
	if !node.PodCIDR.IsValid() {
		return nil // its podCIDR is already reported
	}
	return node
}

// podIP checks an explicit pod address, sets rp.IP and reserves it in its
// node's allocator (node is nil when the node is not usable).
func (c *checker) podIP(at func(string) string, i int, addr string, node *ResolvedNode, rp *ResolvedPod, seen *podsSeen) {
	ip, err := netip.ParseAddr(addr)
	if err != nil || !ip.Is4() || strings.Contains(addr, "/") {
		c.addr(at("ip"), addr) // reports it
		return
	}
	rp.IP = ip
	if j, dup := seen.ipAt[ip]; dup {
		c.add(at("ip"), "address %s is already used by %s (pod %q)", ip, c.ref(index("pods", j)), seen.resolved[j].Key)
	} else {
		seen.ipAt[ip] = i
	}
	if msg := reservedPodAddr(ip, seen.nodeAt); msg != "" {
		c.add(at("ip"), "%s", msg)
	} else if node != nil {
		if msg := podAddrProblem(ip, node); msg != "" {
			c.add(at("ip"), "%s", msg)
		} else {
			seen.allocFor(node).reserve(ip)
		}
	}
}

// podAddrProblem says why an explicit pod address is not a usable host
// address of its node's podCIDR ("" when it is).
func podAddrProblem(ip netip.Addr, n *ResolvedNode) string {
	switch {
	case !n.PodCIDR.Contains(ip):
		return fmt.Sprintf("%s is outside node %q's podCIDR %s", ip, n.Name, n.PodCIDR)
	case ip == n.PodCIDR.Addr():
		return fmt.Sprintf("%s is the network address of node %q's podCIDR %s", ip, n.Name, n.PodCIDR)
	case ip == n.Gateway:
		return fmt.Sprintf("%s is node %q's gateway address (the first host address of podCIDR %s is reserved for the bridge/shim gateway)", ip, n.Name, n.PodCIDR)
	case ip == broadcast(n.PodCIDR):
		return fmt.Sprintf("%s is the broadcast address of node %q's podCIDR %s", ip, n.Name, n.PodCIDR)
	}
	return ""
}

// containerPorts validates a pod's ports and returns them with the
// protocol defaulted.
func (c *checker) containerPorts(path string, ports []ContainerPort) []ContainerPort {
	var out []ContainerPort
	nameAt := map[string]int{}
	for i, cp := range ports {
		p := index(path, i)
		if cp.Name != "" {
			if msg := checkPortName(cp.Name); msg != "" {
				c.add(join(p, "name"), "%s", msg)
			} else if j, dup := nameAt[cp.Name]; dup {
				c.add(join(p, "name"), "duplicate port name %q (first at ports[%d])", cp.Name, j)
			} else {
				nameAt[cp.Name] = i
			}
		}
		c.port(join(p, "port"), cp.Port)
		cp.Protocol = c.protocol(join(p, "protocol"), cp.Protocol)
		out = append(out, cp)
	}
	return out
}

// Addresses no pod may hold: a pod claiming one would pass for the
// datapath or the node (drivers/names_test.go keeps them in step with
// datapath.DefaultHairpinIP and veth.Gateway).
var (
	// HairpinIP is the source a pod sees when it reaches itself through a
	// service.
	HairpinIP = netip.AddrFrom4([4]byte{169, 254, 42, 1})
	// VethGateway is the veth pods' gateway, answered by the node.
	VethGateway = netip.AddrFrom4([4]byte{169, 254, 1, 1})
)

// reservedPodAddr says why ip cannot be a pod's address (the hairpin
// source, the veth gateway, a reserved range, a node's underlay address),
// or returns "". nodeAt maps underlay addresses to node names.
func reservedPodAddr(ip netip.Addr, nodeAt map[netip.Addr]string) string {
	switch {
	case ip == HairpinIP:
		return fmt.Sprintf("%s is the datapath's hairpin address (the source a pod sees when it reaches itself through a service); no pod may hold it", ip)
	case ip == VethGateway:
		return fmt.Sprintf("%s is the veth pods' gateway address; no pod may hold it", ip)
	case nodeAt[ip] != "":
		return fmt.Sprintf("%s is node %q's underlay address; no pod may hold it", ip, nodeAt[ip])
	}
	if rs, why := reservedRange(netip.PrefixFrom(ip, 32)); why != "" {
		return fmt.Sprintf("%s lies in %s (%s)", ip, rs, why)
	}
	return ""
}

// reservedRanges are IPv4 ranges that pod and service networks can never
// overlap: a pod would route them to itself or nowhere, and the link-local
// range holds the veth pods' gateway (169.254.1.1) and the datapath's
// hairpin source (169.254.42.1).
var reservedRanges = []struct {
	p   netip.Prefix
	why string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\""},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local: the pods' gateway 169.254.1.1 and the hairpin source 169.254.42.1"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved, with the broadcast address"},
}

// reservedRange returns the reserved range p overlaps and why it is
// reserved, or "" when it overlaps none.
func reservedRange(p netip.Prefix) (netip.Prefix, string) {
	for _, r := range reservedRanges {
		if r.p.Overlaps(p) {
			return r.p, r.why
		}
	}
	return netip.Prefix{}, ""
}

func (c *checker) services(t *Topology, r *Resolved) {
	if len(t.Services) > 0 && t.Cluster.ServiceCIDR == "" {
		c.add("cluster.serviceCIDR", "required when services are defined")
	}
	keyAt := make(map[string]int, len(t.Services))
	ipAt := make(map[netip.Addr]int, len(t.Services))
	if len(t.Services) > 0 {
		r.Services = make([]ResolvedService, 0, len(t.Services))
	}
	for i, s := range t.Services {
		path := index("services", i)
		ns, k, _ := c.uniqueKey("services", i, "service", s.Name, s.Namespace, keyAt)
		c.use(ns)
		// The selector is shared with the decoded file, as a pod's labels are.
		rs := ResolvedService{Key: k, Name: s.Name, Namespace: ns, Selector: s.Selector, SessionAffinity: s.SessionAffinity}

		ipPath := join(path, "clusterIP")
		if s.ClusterIP == "" {
			c.add(ipPath, "required")
		} else if ip, good := c.addr(ipPath, s.ClusterIP); good {
			rs.ClusterIP = ip
			sc := r.ServiceCIDR
			switch j, dup := ipAt[ip]; {
			case dup:
				c.add(ipPath, "clusterIP %s is already used by %s (service %q)", ip, c.ref(index("services", j)), t.Services[j].Name)
			case !sc.IsValid():
			case !sc.Contains(ip):
				c.add(ipPath, "%s is outside cluster.serviceCIDR %s", ip, sc)
			case ip == sc.Addr() && sc.Bits() < 31:
				c.add(ipPath, "%s is the network address of cluster.serviceCIDR %s", ip, sc)
			case ip == broadcast(sc) && sc.Bits() < 31:
				c.add(ipPath, "%s is the broadcast address of cluster.serviceCIDR %s", ip, sc)
			}
			if _, dup := ipAt[ip]; !dup {
				ipAt[ip] = i
			}
		}

		c.labels(join(path, "selector"), s.Selector)
		rs.Ports = c.servicePorts(join(path, "ports"), s.Ports)

		if rs.SessionAffinity == "" {
			rs.SessionAffinity = AffinityNone
		}
		c.oneOf(join(path, "sessionAffinity"), s.SessionAffinity, "session affinity", []string{AffinityNone, AffinityClientIP})
		c.serviceTraffic(path, s, &rs, r)
		r.Services = append(r.Services, rs)
	}
	c.frontends(t, r)
}

// serviceTraffic resolves how traffic reaches a service besides its
// clusterIP: type, external IPs, traffic policies, affinity timeout.
func (c *checker) serviceTraffic(path string, s Service, rs *ResolvedService, r *Resolved) {
	rs.Type = cmp.Or(s.Type, ServiceClusterIP)
	c.oneOf(join(path, "type"), s.Type, "service type", []string{ServiceClusterIP, ServiceNodePort})
	rs.ExternalTrafficPolicy = cmp.Or(s.ExternalTrafficPolicy, TrafficCluster)
	c.oneOf(join(path, "externalTrafficPolicy"), s.ExternalTrafficPolicy, "traffic policy", []string{TrafficCluster, TrafficLocal})
	rs.InternalTrafficPolicy = cmp.Or(s.InternalTrafficPolicy, TrafficCluster)
	c.oneOf(join(path, "internalTrafficPolicy"), s.InternalTrafficPolicy, "traffic policy", []string{TrafficCluster, TrafficLocal})
	c.serviceFrontends(path, s, rs, r)
	rs.AffinityTimeout = DefaultAffinityTimeout
	ac := s.SessionAffinityConfig
	if ac == nil {
		return
	}
	if rs.SessionAffinity != AffinityClientIP {
		// As Kubernetes: a timeout with no affinity to time out is a
		// mistake, not something to ignore.
		c.add(join(path, "sessionAffinityConfig"), "only with sessionAffinity: ClientIP (this service's is %s)", rs.SessionAffinity)
		return
	}
	if ac.ClientIP != nil && ac.ClientIP.TimeoutSeconds != nil {
		v := *ac.ClientIP.TimeoutSeconds
		if v < 1 || v > MaxAffinityTimeout {
			c.add(join(path, "sessionAffinityConfig.clientIP.timeoutSeconds"), "must be between 1 and %d seconds, got %d", MaxAffinityTimeout, v)
		}
		rs.AffinityTimeout = v
	}
}

// servicePorts validates a service's ports and returns them with protocol
// and targetPort defaulted.
func (c *checker) servicePorts(path string, ports []ServicePort) []ServicePort {
	if len(ports) == 0 {
		c.add(path, "at least one port is required")
	}
	var out []ServicePort
	nameAt := map[string]int{}
	type portKey struct {
		port  int
		proto string
	}
	portAt := map[portKey]int{}
	for i, sp := range ports {
		p := index(path, i)
		switch {
		case sp.Name == "" && len(ports) > 1:
			c.add(join(p, "name"), "required when a service has more than one port")
		case sp.Name == "":
		case checkDNSLabel(sp.Name) != "":
			c.add(join(p, "name"), "invalid port name %q: must be a lowercase RFC 1123 label", sp.Name)
		default:
			if j, dup := nameAt[sp.Name]; dup {
				c.add(join(p, "name"), "duplicate port name %q (first at ports[%d])", sp.Name, j)
			} else {
				nameAt[sp.Name] = i
			}
		}
		portOK := c.port(join(p, "port"), sp.Port)
		sp.Protocol = c.protocol(join(p, "protocol"), sp.Protocol)
		if portOK {
			pk := portKey{sp.Port, sp.Protocol}
			if j, dup := portAt[pk]; dup {
				c.add(join(p, "port"), "duplicate port %d/%s (first at ports[%d])", sp.Port, sp.Protocol, j)
			} else {
				portAt[pk] = i
			}
		}
		tp := join(p, "targetPort")
		switch {
		case sp.TargetPort.IsString:
			if msg := checkPortName(sp.TargetPort.StrVal); msg != "" {
				c.add(tp, "%s", msg)
			}
		case sp.TargetPort.IntVal == 0 && !c.written(tp):
			sp.TargetPort = FromInt(sp.Port)
		default:
			c.portRange(tp, sp.TargetPort.IntVal)
		}
		out = append(out, sp)
	}
	return out
}

// manifest checks the Kubernetes header of a pasted NetworkPolicy and
// takes its metadata's name and namespace where the short form's are
// not written (both written and different is an error).
func (c *checker) manifest(path string, pol *Policy) {
	if pol.APIVersion != "" && pol.APIVersion != "networking.k8s.io/v1" {
		c.add(join(path, "apiVersion"), "%q: a NetworkPolicy here is networking.k8s.io/v1", pol.APIVersion)
	}
	if pol.Kind != "" && pol.Kind != "NetworkPolicy" {
		c.add(join(path, "kind"), "%q: only NetworkPolicy objects belong in policies:", pol.Kind)
	}
	m := pol.Metadata
	if m == nil {
		return
	}
	take := func(field string, short *string, long string) {
		switch {
		case long == "":
		case *short == "":
			*short = long
		case *short != long:
			c.add(join(join(path, "metadata"), field), "%q differs from %s %q: write one of them", long, field, *short)
		}
	}
	take("name", &pol.Name, m.Name)
	take("namespace", &pol.Namespace, m.Namespace)
}

func (c *checker) policies(t *Topology, r *Resolved) {
	keyAt := make(map[string]int, len(t.Policies))
	if len(t.Policies) > 0 {
		r.Policies = make([]ResolvedPolicy, 0, len(t.Policies))
	}
	for i, pol := range t.Policies {
		path := index("policies", i)
		c.manifest(path, &pol)
		ns, k, _ := c.uniqueKey("policies", i, "policy", pol.Name, pol.Namespace, keyAt)
		c.use(ns)
		sp := join(path, "spec")
		spec := clonePolicySpec(pol.Spec)
		c.selector(join(sp, "podSelector"), spec.PodSelector)

		seen := map[string]bool{}
		for j, pt := range spec.PolicyTypes {
			ptPath := index(join(sp, "policyTypes"), j)
			switch {
			case pt != PolicyIngress && pt != PolicyEgress:
				c.add(ptPath, "unknown policy type %q (valid: Ingress, Egress)", pt)
			case seen[pt]:
				c.add(ptPath, "duplicate policy type %q", pt)
			}
			seen[pt] = true
		}
		if len(spec.PolicyTypes) == 0 {
			// As Kubernetes: a policy always isolates ingress, and
			// isolates egress only when it says something about it.
			spec.PolicyTypes = []string{PolicyIngress}
			if len(spec.Egress) > 0 {
				spec.PolicyTypes = append(spec.PolicyTypes, PolicyEgress)
			}
		}
		for j := range spec.Ingress {
			rp := index(join(sp, "ingress"), j)
			for k, peer := range spec.Ingress[j].From {
				c.peer(index(join(rp, "from"), k), peer)
			}
			for k := range spec.Ingress[j].Ports {
				c.policyPort(index(join(rp, "ports"), k), &spec.Ingress[j].Ports[k])
			}
		}
		for j := range spec.Egress {
			rp := index(join(sp, "egress"), j)
			for k, peer := range spec.Egress[j].To {
				c.peer(index(join(rp, "to"), k), peer)
			}
			for k := range spec.Egress[j].Ports {
				c.policyPort(index(join(rp, "ports"), k), &spec.Egress[j].Ports[k])
			}
		}
		r.Policies = append(r.Policies, ResolvedPolicy{Key: k, Name: pol.Name, Namespace: ns, Spec: spec})
	}
}

func (c *checker) peer(path string, p PolicyPeer) {
	if p.PodSelector == nil && p.NamespaceSelector == nil && p.IPBlock == nil {
		c.add(path, "a peer needs podSelector, namespaceSelector or ipBlock")
		return
	}
	if p.IPBlock != nil && (p.PodSelector != nil || p.NamespaceSelector != nil) {
		c.add(join(path, "ipBlock"), "ipBlock cannot be combined with podSelector or namespaceSelector in one peer")
	}
	if p.PodSelector != nil {
		c.selector(join(path, "podSelector"), *p.PodSelector)
	}
	if p.NamespaceSelector != nil {
		c.selector(join(path, "namespaceSelector"), *p.NamespaceSelector)
	}
	if p.IPBlock == nil {
		return
	}
	bp := join(path, "ipBlock")
	var block netip.Prefix
	if p.IPBlock.CIDR == "" {
		c.add(join(bp, "cidr"), "required")
	} else if b, ok := c.anyCIDR(join(bp, "cidr"), p.IPBlock.CIDR); ok {
		block = b
	}
	for i, e := range p.IPBlock.Except {
		ep := index(join(bp, "except"), i)
		x, ok := c.anyCIDR(ep, e)
		if !ok || !block.IsValid() {
			continue
		}
		if x.Addr().Is4() != block.Addr().Is4() || x.Bits() <= block.Bits() || !block.Contains(x.Addr()) {
			c.add(ep, "%s is not strictly inside ipBlock.cidr %s", x, block)
		}
	}
}

// policyPort validates a policy port and defaults its protocol in place.
func (c *checker) policyPort(path string, pp *PolicyPort) {
	pp.Protocol = c.protocol(join(path, "protocol"), pp.Protocol)
	portPath := join(path, "port")
	if pp.Port != nil {
		if pp.Port.IsString {
			if msg := checkPortName(pp.Port.StrVal); msg != "" {
				c.add(portPath, "%s", msg)
			}
		} else {
			c.portRange(portPath, pp.Port.IntVal)
		}
	}
	endPath := join(path, "endPort")
	if pp.EndPort == 0 && !c.written(endPath) {
		return
	}
	switch {
	case pp.Port == nil:
		c.add(endPath, "endPort requires port")
	case pp.Port.IsString:
		c.add(endPath, "endPort requires a numeric port, not the named port %q", pp.Port.StrVal)
	case !c.portRange(endPath, pp.EndPort):
	case pp.EndPort < pp.Port.IntVal:
		c.add(endPath, "endPort %d is less than port %d", pp.EndPort, pp.Port.IntVal)
	}
}

func (c *checker) selector(path string, s LabelSelector) {
	c.labels(join(path, "matchLabels"), s.MatchLabels)
	for i, e := range s.MatchExpressions {
		ep := index(join(path, "matchExpressions"), i)
		if e.Key == "" {
			c.add(join(ep, "key"), "required")
		} else if msg := checkLabelKey(e.Key); msg != "" {
			c.add(join(ep, "key"), "%s", msg)
		}
		vp := join(ep, "values")
		switch e.Operator {
		case "In", "NotIn":
			if len(e.Values) == 0 {
				c.add(vp, "must be non-empty for operator %s", e.Operator)
			}
		case "Exists", "DoesNotExist":
			if len(e.Values) > 0 {
				c.add(vp, "must be empty for operator %s", e.Operator)
			}
		case "":
			c.add(join(ep, "operator"), "required (valid: %s)", strings.Join(Operators, ", "))
		default:
			c.add(join(ep, "operator"), "unknown operator %q (valid: %s)", e.Operator, strings.Join(Operators, ", "))
		}
		for j, v := range e.Values {
			if msg := checkLabelValue(v); msg != "" {
				c.add(index(vp, j), "%s", msg)
			}
		}
	}
}

// labels validates a label map (labels, selector, matchLabels), in key
// order so that messages come out the same each run.
func (c *checker) labels(path string, m map[string]string) {
	valid := true
	for k, v := range m {
		valid = valid && checkLabelKey(k) == "" && checkLabelValue(v) == ""
	}
	if valid {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(m)) { // errors in a stable order
		if msg := checkLabelKey(k); msg != "" {
			c.add(key(path, k), "%s", msg)
		}
		if msg := checkLabelValue(m[k]); msg != "" {
			c.add(key(path, k), "%s", msg)
		}
	}
}

// name validates a required object name.
func (c *checker) name(path, v string) bool {
	if v == "" {
		c.add(path, "required")
		return false
	}
	if msg := checkDNSLabel(v); msg != "" {
		c.add(path, "%s", msg)
		return false
	}
	return true
}

// oneOf validates an optional enumerated value.
func (c *checker) oneOf(path, v, what string, valid []string) {
	if v != "" && !slices.Contains(valid, v) {
		c.add(path, "unknown %s %q (valid: %s)", what, v, strings.Join(valid, ", "))
	}
}

// protocol validates a protocol and returns it defaulted to TCP.
func (c *checker) protocol(path, v string) string {
	if v == "" {
		return ProtocolTCP
	}
	if !slices.Contains(Protocols, v) {
		c.add(path, "unsupported protocol %q (valid: %s)", v, strings.Join(Protocols, ", "))
	}
	return v
}

// port validates a required port number.
func (c *checker) port(path string, v int) bool {
	if v == 0 && !c.written(path) {
		c.add(path, "required")
		return false
	}
	return c.portRange(path, v)
}

func (c *checker) portRange(path string, v int) bool {
	if v < 1 || v > 65535 {
		c.add(path, "port must be between 1 and 65535, got %d", v)
		return false
	}
	return true
}

// cidr parses an IPv4 prefix that must be written in canonical form: a
// prefix with host bits set is nearly always a typo for another network.
func (c *checker) cidr(path, s string) (netip.Prefix, bool) {
	p, ok := c.anyCIDR(path, s)
	if ok && !p.Addr().Is4() {
		c.add(path, "%s is IPv6; only IPv4 is supported", p)
		return netip.Prefix{}, false
	}
	return p, ok
}

// anyCIDR parses a canonical prefix of either family (policies may match
// IPv6 peers even though pods are IPv4).
func (c *checker) anyCIDR(path, s string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		c.add(path, "invalid CIDR %q: %s", s, cidrReason(s, err))
		return netip.Prefix{}, false
	}
	if p.Addr().Is4In6() {
		c.add(path, "invalid CIDR %q: write IPv4 networks in dotted form", s)
		return netip.Prefix{}, false
	}
	if m := p.Masked(); m != p {
		c.add(path, "%s has host bits set; did you mean %s?", p, m)
		return netip.Prefix{}, false
	}
	return p, true
}

func cidrReason(s string, err error) string {
	if !strings.Contains(s, "/") {
		return "missing the prefix length (e.g. /24)"
	}
	msg := err.Error()
	// netip quotes the whole input again; keep only the reason.
	if i := strings.LastIndex(msg, "): "); i >= 0 {
		return msg[i+3:]
	}
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

// addr parses a bare IPv4 address.
func (c *checker) addr(path, s string) (netip.Addr, bool) {
	if strings.Contains(s, "/") {
		c.add(path, "%q must be a bare address, without a prefix length", s)
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		c.add(path, "invalid IP address %q", s)
		return netip.Addr{}, false
	}
	if !a.Is4() {
		c.add(path, "%s is not an IPv4 address; only IPv4 is supported", s)
		return netip.Addr{}, false
	}
	return a, true
}

// nodeAddress parses an underlay address with its prefix length, which
// says which other nodes are on the same L2 subnet.
func (c *checker) nodeAddress(path, s string) (netip.Prefix, bool) {
	if !strings.Contains(s, "/") {
		c.add(path, "%q needs a prefix length giving the underlay subnet, e.g. 172.31.1.2/24", s)
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		c.add(path, "invalid address %q: %s", s, cidrReason(s, err))
		return netip.Prefix{}, false
	}
	if !p.Addr().Is4() {
		c.add(path, "%s is not an IPv4 address; only IPv4 is supported", s)
		return netip.Prefix{}, false
	}
	if p.Bits() < 31 {
		switch p.Addr() {
		case p.Masked().Addr():
			c.add(path, "%s is the network address of %s; give the node's own address", p.Addr(), p.Masked())
			return netip.Prefix{}, false
		case broadcast(p):
			c.add(path, "%s is the broadcast address of %s; give the node's own address", p.Addr(), p.Masked())
			return netip.Prefix{}, false
		}
	}
	return p, true
}

// clonePolicySpec copies a spec deeply enough that defaulting the copy
// leaves the source topology as the user wrote it.
func clonePolicySpec(s PolicySpec) PolicySpec {
	out := PolicySpec{
		PodSelector: cloneSelector(s.PodSelector),
		PolicyTypes: slices.Clone(s.PolicyTypes),
	}
	for _, r := range s.Ingress {
		out.Ingress = append(out.Ingress, PolicyIngressRule{From: clonePeers(r.From), Ports: clonePorts(r.Ports)})
	}
	for _, r := range s.Egress {
		out.Egress = append(out.Egress, PolicyEgressRule{To: clonePeers(r.To), Ports: clonePorts(r.Ports)})
	}
	return out
}

func cloneSelector(s LabelSelector) LabelSelector {
	out := LabelSelector{MatchLabels: maps.Clone(s.MatchLabels)}
	for _, e := range s.MatchExpressions {
		e.Values = slices.Clone(e.Values)
		out.MatchExpressions = append(out.MatchExpressions, e)
	}
	return out
}

func clonePeers(peers []PolicyPeer) []PolicyPeer {
	var out []PolicyPeer
	for _, p := range peers {
		var q PolicyPeer
		if p.PodSelector != nil {
			s := cloneSelector(*p.PodSelector)
			q.PodSelector = &s
		}
		if p.NamespaceSelector != nil {
			s := cloneSelector(*p.NamespaceSelector)
			q.NamespaceSelector = &s
		}
		if p.IPBlock != nil {
			q.IPBlock = &IPBlock{CIDR: p.IPBlock.CIDR, Except: slices.Clone(p.IPBlock.Except)}
		}
		out = append(out, q)
	}
	return out
}

func clonePorts(ports []PolicyPort) []PolicyPort {
	var out []PolicyPort
	for _, p := range ports {
		if p.Port != nil {
			v := *p.Port
			p.Port = &v
		}
		out = append(out, p)
	}
	return out
}
