package spec

import (
	"cmp"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"unsafe"
)

// Incremental resolve, for the watch daemon's reload (Parser.Load).
//
// A cluster-sized file takes about 90 ms to resolve, most of it checking
// 50,000 pods, while an edit changes one of them. So a Parser remembers
// its last successful resolve and, when the next set differs from it only
// in pods, services and policies, builds the new model from the old one:
//   - the pods that changed (the run between the longest common prefix
//     and suffix of the two lists) are checked alone, with the checks
//     Resolve uses (checker.pod), and against indexes of the others (keys,
//     netns, explicit ips) for clashes;
//   - addresses are allocated again only on the nodes whose pods changed:
//     allocation is per node, in file order (alloc.go), so redoing a
//     node's over its pods in file order gives exactly the full result;
//   - services or policies, when any of theirs changed, are checked again
//     as a whole list (their checks span the list: nodePorts, affinity);
//     unchanged, their resolved lists are reused as they are;
//   - Namespaces follows the namespaces objects use, counted.
//
// Anything else (the first load, a changed header, cluster, namespace or
// node, too many changed pods, a part not split into items) and every
// problem found on the way falls back to Resolve, so that what a load
// returns, errors and their positions included, is always what Resolve
// gives; the differential test holds the two equal. The previous model is
// never written to (the daemon may still serve it): new slices are made,
// and what did not change (nodes, labels) is shared, read-only.

// lastResolve is what a Parser keeps of its last successful load.
type lastResolve struct {
	t     *Topology
	r     *Resolved
	zeros itemZeros
	ix    *deltaIndex // built on the first incremental load, then kept up to date
}

// itemZeros are, for each item of the pods, services and policies lists,
// the fields its text writes with a zero value (Resolve tells an explicit
// 0 from an absent field, so two items decoding to equal values may still
// resolve differently).
type itemZeros struct {
	pods, services, policies []map[string]Pos
}

// deltaIndex is what the pod checks need to know of the pods that did not
// change, and the namespaces objects use.
type deltaIndex struct {
	nodes    map[string]*ResolvedNode
	nodeAt   map[netip.Addr]string // underlay addresses → node
	netns    map[string]string     // netns identity → pod key
	ips      map[netip.Addr]string // explicit pod ip → pod key
	nsPods   map[string]int        // namespace → pods in it
	nsSvcs   map[string]bool       // namespaces services live in
	nsPols   map[string]bool       // namespaces policies live in
	declared map[string]bool       // namespaces: names
}

// minDelta is the number of changed pods always tried incrementally;
// beyond it, up to an eighth of the pods: past that a full Resolve costs
// little more.
const minDelta = 64

// remember keeps a successful load for the next one.
func (p *Parser) remember(t *Topology, pos *Positions, r *Resolved) {
	z, ok := zerosOf(t, pos)
	if !ok {
		p.last = nil
		return
	}
	p.last = &lastResolve{t: t, r: r, zeros: z}
}

// resolveDelta resolves t from the last load by difference (see above);
// nil when it cannot, and Resolve must.
func (p *Parser) resolveDelta(t *Topology, pos *Positions) *Resolved {
	last := p.last
	if last == nil || t == nil || !sameFrame(last.t, t, pos) {
		return nil
	}
	z, ok := zerosOf(t, pos)
	if !ok {
		return nil
	}
	if last.ix == nil {
		last.ix = newDeltaIndex(last.t, last.r)
	}
	d, ok := last.podDelta(t, z.pods)
	if !ok {
		return nil
	}
	svcs, pols, ok := last.otherLists(t, pos, z)
	if !ok {
		return nil
	}
	r := *last.r
	r.Pods = d.merge(last.r.Pods)
	r.Services, r.Policies = svcs.services, pols.policies
	r.Namespaces = last.namespaces(d, svcs, pols)
	last.ix.commit(d, svcs.used, pols.used)
	p.last = &lastResolve{t: t, r: &r, zeros: z, ix: last.ix}
	p.deltas++
	return &r
}

// sameFrame reports whether t has the last load's header, cluster,
// namespaces and nodes, and that its cluster is still valid as written
// (an explicit 0 where the last had none is an error).
func sameFrame(last, t *Topology, pos *Positions) bool {
	if t.APIVersion != last.APIVersion || t.Kind != last.Kind || !reflect.DeepEqual(t.Cluster, last.Cluster) ||
		!sameItems(last.Namespaces, t.Namespaces) || !sameItems(last.Nodes, t.Nodes) {
		return false
	}
	c := &checker{pos: pos}
	c.header(t)
	c.cluster(t, &Resolved{})
	return len(c.errs.List) == 0
}

// zerosOf collects the zero-valued fields of every item of the lists; ok
// is false when a source was not split into items (its written zeros are
// not kept per item).
func zerosOf(t *Topology, pos *Positions) (itemZeros, bool) {
	var z itemZeros
	var ok1, ok2, ok3 bool
	z.pods, ok1 = listZeros(pos, "pods", len(t.Pods))
	z.services, ok2 = listZeros(pos, "services", len(t.Services))
	z.policies, ok3 = listZeros(pos, "policies", len(t.Policies))
	return z, ok1 && ok2 && ok3
}

// listZeros is zerosOf for one list of n items.
func listZeros(pos *Positions, list string, n int) ([]map[string]Pos, bool) {
	parts, starts := []*Positions{pos}, []int{0}
	if pos.set != nil {
		parts, starts = pos.set.parts, pos.set.starts[list]
	}
	if len(starts) != len(parts) {
		return nil, false
	}
	out := make([]map[string]Pos, 0, n)
	for k, part := range parts {
		end := n
		if k+1 < len(starts) {
			end = starts[k+1]
		}
		if end == starts[k] {
			continue
		}
		items := part.seqs[list]
		if items == nil || len(items.spans) != end-starts[k] {
			return nil, false
		}
		for i := range items.spans {
			out = append(out, items.zerosOf(i))
		}
	}
	return out, len(out) == n
}

// sameItem reports whether two decoded items are equal. An item the
// Parser reused is a bit-for-bit copy of the last one (the same strings,
// maps and slices), which is checked first: comparing 50,000 pods deeply
// costs more than resolving them.
func sameItem[T any](a, b *T) bool {
	size := unsafe.Sizeof(*a)
	ab := unsafe.Slice((*byte)(unsafe.Pointer(a)), size)
	bb := unsafe.Slice((*byte)(unsafe.Pointer(b)), size)
	return string(ab) == string(bb) || reflect.DeepEqual(*a, *b)
}

// sameItems is sameItem over two lists.
func sameItems[T any](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameItem(&a[i], &b[i]) {
			return false
		}
	}
	return true
}

// sameZeros reports whether two items write the same fields with a zero
// value (where is for messages only).
func sameZeros(a, b map[string]Pos) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

// sameList reports whether two lists have the same items, zeros included.
func sameList[T any](a, b []T, za, zb []map[string]Pos) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameItem(&a[i], &b[i]) || !sameZeros(za[i], zb[i]) {
			return false
		}
	}
	return true
}

// changedRun returns the run of items that differ between two lists: a[from:aEnd]
// became b[from:bEnd], the items before and after being the same.
func changedRun[T any](a, b []T, za, zb []map[string]Pos) (from, aEnd, bEnd int) {
	same := func(i, j int) bool { return sameItem(&a[i], &b[j]) && sameZeros(za[i], zb[j]) }
	n := min(len(a), len(b))
	for from < n && same(from, from) {
		from++
	}
	aEnd, bEnd = len(a), len(b)
	for aEnd > from && bEnd > from && same(aEnd-1, bEnd-1) {
		aEnd, bEnd = aEnd-1, bEnd-1
	}
	return from, aEnd, bEnd
}

// podKey is the key Resolve gives a valid pod.
func podKey(p *Pod) string { return cmp.Or(p.Namespace, DefaultNamespace) + "/" + p.Name }

// byKey compares a resolved pod's key with k, for binary searches.
func byKey(p ResolvedPod, k string) int { return strings.Compare(p.Key, k) }

// newDeltaIndex indexes a resolved model's pods and namespaces.
func newDeltaIndex(t *Topology, r *Resolved) *deltaIndex {
	ix := &deltaIndex{
		nodes: make(map[string]*ResolvedNode, len(r.Nodes)), nodeAt: make(map[netip.Addr]string, len(r.Nodes)),
		netns: make(map[string]string, len(r.Pods)), ips: map[netip.Addr]string{}, nsPods: map[string]int{},
		nsSvcs: map[string]bool{}, nsPols: map[string]bool{}, declared: map[string]bool{},
	}
	for i := range r.Nodes {
		n := &r.Nodes[i]
		ix.nodes[n.Name] = n
		if n.Address.IsValid() {
			ix.nodeAt[n.Address.Addr()] = n.Name
		}
	}
	for _, p := range r.Pods {
		ix.netns[netnsIdentity(p.Netns)] = p.Key
		if !p.Allocated {
			ix.ips[p.IP] = p.Key
		}
		ix.nsPods[p.Namespace]++
	}
	for _, s := range r.Services {
		ix.nsSvcs[s.Namespace] = true
	}
	for _, p := range r.Policies {
		ix.nsPols[p.Namespace] = true
	}
	for _, ns := range t.Namespaces {
		ix.declared[ns.Name] = true
	}
	return ix
}

// podDelta is how the pods changed since the last load.
type podDelta struct {
	removed []ResolvedPod         // as the last model has them
	added   []ResolvedPod         // resolved, addresses allocated; by key
	moved   map[string]netip.Addr // unchanged pods whose allocated address changed
	n       int                   // the number of pods now
}

// podDelta finds the pods that changed, checks and resolves them, and
// allocates again on their nodes; false on any problem or too many
// changes.
func (last *lastResolve) podDelta(t *Topology, zeros []map[string]Pos) (*podDelta, bool) {
	old, ix := last.t.Pods, last.ix
	from, oldEnd, newEnd := changedRun(old, t.Pods, last.zeros.pods, zeros)
	if oldEnd-from+newEnd-from > max(minDelta, len(t.Pods)/8) {
		return nil, false
	}
	d := &podDelta{n: len(t.Pods), moved: map[string]netip.Addr{}}
	gone, nodes := map[string]bool{}, map[string]bool{}
	for i := from; i < oldEnd; i++ {
		k := podKey(&old[i])
		j, found := slices.BinarySearchFunc(last.r.Pods, k, byKey)
		if !found {
			return nil, false // the last model was valid: cannot happen
		}
		d.removed = append(d.removed, last.r.Pods[j])
		gone[k], nodes[old[i].Node] = true, true
	}
	changed := t.Pods[from:newEnd]
	added, ok := ix.check(last.r, changed)
	if !ok || ix.clashes(last.r.Pods, gone, added, changed) {
		return nil, false
	}
	for i := range changed {
		nodes[changed[i].Node] = true
	}
	ips, ok := ix.allocate(t.Pods, nodes)
	if !ok {
		return nil, false
	}
	isAdded := make(map[string]bool, len(added))
	for i := range added {
		if changed[i].IP == "" {
			added[i].IP, added[i].Allocated = ips[added[i].Key], true
		}
		isAdded[added[i].Key] = true
	}
	for k, ip := range ips {
		if j, found := slices.BinarySearchFunc(last.r.Pods, k, byKey); found && !isAdded[k] && last.r.Pods[j].IP != ip {
			d.moved[k] = ip
		}
	}
	slices.SortFunc(added, func(a, b ResolvedPod) int { return strings.Compare(a.Key, b.Key) })
	d.added = added
	return d, true
}

// check checks and resolves changed pods as Resolve does, but for their
// allocated addresses and clashes with the others; false on any problem.
func (ix *deltaIndex) check(r *Resolved, pods []Pod) ([]ResolvedPod, bool) {
	c := &checker{}
	seen := &podsSeen{
		nodes: ix.nodes, nodeAt: ix.nodeAt,
		keyAt: map[string]int{}, netnsAt: map[string]int{}, ipAt: map[netip.Addr]int{},
		allocs: map[string]*allocator{}, resolved: make([]ResolvedPod, len(pods)),
	}
	for i, p := range pods {
		seen.resolved[i] = c.pod(i, p, r, seen)
	}
	return seen.resolved, len(c.errs.List) == 0
}

// clashes reports whether a changed pod takes the key, netns or explicit
// ip of a pod that did not change (those of the gone pods are free).
func (ix *deltaIndex) clashes(last []ResolvedPod, gone map[string]bool, added []ResolvedPod, pods []Pod) bool {
	for i, p := range added {
		if _, found := slices.BinarySearchFunc(last, p.Key, byKey); found && !gone[p.Key] {
			return true
		}
		if k, ok := ix.netns[netnsIdentity(p.Netns)]; ok && !gone[k] {
			return true
		}
		if k, ok := ix.ips[p.IP]; pods[i].IP != "" && ok && !gone[k] {
			return true
		}
	}
	return false
}

// allocate allocates the addresses of the pods of nodes again, as
// checker.pods does (explicit ips reserved, then the others in file
// order): pod key → address. False when a node's podCIDR is full.
func (ix *deltaIndex) allocate(pods []Pod, nodes map[string]bool) (map[string]netip.Addr, bool) {
	names := slices.Collect(maps.Keys(nodes))
	on := map[string][]int{}
	for i := range pods {
		// A few names are compared faster than hashed, 50,000 times.
		if len(names) <= 8 && slices.Contains(names, pods[i].Node) || len(names) > 8 && nodes[pods[i].Node] {
			on[pods[i].Node] = append(on[pods[i].Node], i)
		}
	}
	out := map[string]netip.Addr{}
	for name, idx := range on {
		n := ix.nodes[name]
		if n == nil || !n.PodCIDR.IsValid() {
			continue // the pod check reported it
		}
		a := newAllocator(n.PodCIDR)
		for _, i := range idx {
			if pods[i].IP != "" {
				a.reserve(netip.MustParseAddr(pods[i].IP)) // checked valid
			}
		}
		for _, i := range idx {
			if pods[i].IP != "" {
				continue
			}
			k := podKey(&pods[i])
			ip, ok := a.allocate(k)
			if !ok {
				return nil, false
			}
			out[k] = ip
		}
	}
	return out, true
}

// merge returns the last model's pods (sorted by key) with d applied, in
// a new slice.
func (d *podDelta) merge(old []ResolvedPod) []ResolvedPod {
	type event struct {
		at  int          // before old[at] (an insertion), or old[at] itself
		add *ResolvedPod // insert it; else drop old[at], or give it ip
		ip  netip.Addr   // invalid: drop
	}
	var events []event
	for i := range d.added {
		at, _ := slices.BinarySearchFunc(old, d.added[i].Key, byKey)
		events = append(events, event{at: at, add: &d.added[i]})
	}
	for _, p := range d.removed {
		at, _ := slices.BinarySearchFunc(old, p.Key, byKey)
		events = append(events, event{at: at})
	}
	for k, ip := range d.moved {
		at, _ := slices.BinarySearchFunc(old, k, byKey)
		events = append(events, event{at: at, ip: ip})
	}
	if len(events) == 0 {
		return old // shared, read-only, as the unchanged lists are
	}
	// At one place, insertions (in key order) come before old[at].
	slices.SortStableFunc(events, func(a, b event) int {
		return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(boolInt(a.add == nil), boolInt(b.add == nil)))
	})
	out := make([]ResolvedPod, 0, d.n)
	i := 0
	for _, e := range events {
		out = append(out, old[i:e.at]...)
		i = e.at
		switch {
		case e.add != nil:
			out = append(out, *e.add)
		case e.ip.IsValid():
			p := old[i]
			p.IP = e.ip
			out = append(out, p)
			i++
		default:
			i++
		}
	}
	return append(out, old[i:]...)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// lists are services or policies resolved, and the namespaces they use.
type lists struct {
	services []ResolvedService
	policies []ResolvedPolicy
	used     map[string]bool
	changed  bool // checked again: not the last ones
}

// otherLists resolves the services and the policies: the last ones when
// none of theirs changed, else the whole list again (their checks span
// it); false on any problem.
func (last *lastResolve) otherLists(t *Topology, pos *Positions, z itemZeros) (svcs, pols lists, ok bool) {
	svcs = lists{services: last.r.Services, used: last.ix.nsSvcs}
	pols = lists{policies: last.r.Policies, used: last.ix.nsPols}
	if !sameList(last.t.Services, t.Services, last.zeros.services, z.services) {
		c, r := &checker{pos: pos}, *last.r
		r.Services = nil
		c.services(t, &r)
		if len(c.errs.List) > 0 {
			return svcs, pols, false
		}
		svcs = lists{services: sortedByKey(r.Services, func(s *ResolvedService) string { return s.Key }), used: setOf(c.used), changed: true}
	}
	if !sameList(last.t.Policies, t.Policies, last.zeros.policies, z.policies) {
		c, r := &checker{pos: pos}, *last.r
		r.Policies = nil
		c.policies(t, &r)
		if len(c.errs.List) > 0 {
			return svcs, pols, false
		}
		slices.SortFunc(r.Policies, func(a, b ResolvedPolicy) int { return strings.Compare(a.Key, b.Key) })
		pols = lists{policies: r.Policies, used: setOf(c.used), changed: true}
	}
	return svcs, pols, true
}

func setOf(s []string) map[string]bool {
	m := make(map[string]bool, len(s))
	for _, v := range s {
		m[v] = true
	}
	return m
}

// namespaces is the last model's Namespaces after d and the namespaces
// services and policies now use: the same map when no namespace came or
// went, else a new one.
func (last *lastResolve) namespaces(d *podDelta, svcs, pols lists) map[string]map[string]string {
	ix := last.ix
	delta := map[string]int{}
	for _, p := range d.removed {
		delta[p.Namespace]--
	}
	for _, p := range d.added {
		delta[p.Namespace]++
	}
	maybe := maps.Clone(delta)
	for _, l := range []struct {
		changed  bool
		now, was map[string]bool
	}{{svcs.changed, svcs.used, ix.nsSvcs}, {pols.changed, pols.used, ix.nsPols}} {
		if l.changed {
			for ns := range l.now {
				maybe[ns] = 0
			}
			for ns := range l.was {
				maybe[ns] = 0
			}
		}
	}
	var out map[string]map[string]string
	for ns := range maybe {
		_, had := last.r.Namespaces[ns]
		used := ix.declared[ns] || ix.nsPods[ns]+delta[ns] > 0 || svcs.used[ns] || pols.used[ns]
		if used == had {
			continue
		}
		if out == nil {
			out = maps.Clone(last.r.Namespaces)
		}
		if used {
			out[ns] = map[string]string{MetadataNameLabel: ns}
		} else {
			delete(out, ns)
		}
	}
	if out == nil {
		return last.r.Namespaces
	}
	return out
}

// commit brings the index up to date with d and the namespaces services
// and policies now use.
func (ix *deltaIndex) commit(d *podDelta, svcNS, polNS map[string]bool) {
	for _, p := range d.removed {
		delete(ix.netns, netnsIdentity(p.Netns))
		if !p.Allocated {
			delete(ix.ips, p.IP)
		}
		if ix.nsPods[p.Namespace]--; ix.nsPods[p.Namespace] == 0 {
			delete(ix.nsPods, p.Namespace)
		}
	}
	for _, p := range d.added {
		ix.netns[netnsIdentity(p.Netns)] = p.Key
		if !p.Allocated {
			ix.ips[p.IP] = p.Key
		}
		ix.nsPods[p.Namespace]++
	}
	ix.nsSvcs, ix.nsPols = svcNS, polNS
}
