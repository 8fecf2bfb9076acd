package compile

import (
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/netreconcile/netreconcile/spec"
)

// A watch pass compiles a file that differs from the last one in a pod or
// two. Building a class table describes, sorts and numbers every pod of
// the file (75 ms at 1000 nodes); NewClusterFrom carries the last file's
// tables over and moves only the pods that changed, so that a one-pod
// edit costs about what the pod does. The result is what NewCluster would
// build, identities included: where carrying could number a class
// otherwise (see renumber), the table is built again instead.
//
// A table depends on the file through its pods, and on the policies only
// through its blocks, which are its key in Cluster.tables: a node whose
// policies now name other blocks looks up another table. So a table is
// carried whatever the policies and namespaces; what it caches of them
// (the peers and rules, the namespace index) is checked against them
// (carryRules).

// maxDeltaShare bounds the pods changed, as a share of the file's, for
// which a table is patched rather than built again: past it patching
// costs about what building does.
const maxDeltaShare = 8

// NewClusterFrom is NewCluster for r that takes over the class tables
// prev built and patches them for the pods that differ between prev's
// file and r. prev must not be used afterwards: its tables are changed in
// place and belong to the new Cluster. prev may be nil. Where many pods
// differ, nothing is carried.
func NewClusterFrom(prev *Cluster, r *spec.Resolved) *Cluster {
	if prev == nil {
		return NewCluster(r)
	}
	if prev.r == r {
		prev.changed = map[string]bool{}
		return prev // the same file: everything holds
	}
	cl := NewCluster(r)
	d := diffPods(prev.r.Pods, r.Pods)
	cl.changed = map[string]bool{}
	for _, i := range d.removed {
		cl.changed[prev.r.Pods[i].Namespace] = true
	}
	for _, j := range d.added {
		cl.changed[r.Pods[j].Namespace] = true
	}
	if len(d.removed)+len(d.added) > len(r.Pods)/maxDeltaShare+2 {
		return cl
	}
	prev.mu.Lock()
	defer prev.mu.Unlock()
	for key, t := range prev.tables {
		// A table that cannot be patched is left out: built again
		// when a node needs it.
		if t.patch(r, d) {
			cl.tables[key] = t
		}
	}
	if prev.podsOf != nil {
		cl.podsOnce.Do(func() { cl.podsOf = d.localPods(prev.podsOf, r) })
	}
	return cl
}

// ChangedNamespaces returns the namespaces of the pods that
// NewClusterFrom found differing between the last file and cl's (added,
// removed, or with another address, node, labels or ports); false when
// it compared no files (cl was made by NewCluster). The map is cl's: do
// not change it.
func (cl *Cluster) ChangedNamespaces() (map[string]bool, bool) {
	return cl.changed, cl.changed != nil
}

// podDelta is how the pods of one file became those of the next.
type podDelta struct {
	// remap maps each old pod's index to the new one's, -1 for a pod
	// removed or changed.
	remap []int32
	// removed holds the old indexes of the pods removed or changed;
	// added the new indexes of the pods added or changed.
	removed, added []int
}

// diffPods compares old and new, each sorted by key (as Resolve leaves
// them): a pod is changed when its address, node, namespace, labels or
// ports differ. A large file is compared in two halves, on two cores:
// it is most of what carrying costs (50,000 pods at 1000 nodes).
func diffPods(old, new []spec.ResolvedPod) *podDelta {
	d := &podDelta{remap: make([]int32, len(old))}
	if len(new) < 4096 || len(old) < 4096 {
		d.removed, d.added = diffRange(old, new, 0, 0, d.remap)
		return d
	}
	m := len(new) / 2
	i, _ := slices.BinarySearchFunc(old, new[m].Key, func(p spec.ResolvedPod, key string) int { return strings.Compare(p.Key, key) })
	var removed, added []int
	var wg sync.WaitGroup
	wg.Go(func() { removed, added = diffRange(old[i:], new[m:], i, m, d.remap[i:]) })
	d.removed, d.added = diffRange(old[:i], new[:m], 0, 0, d.remap[:i])
	wg.Wait()
	d.removed, d.added = append(d.removed, removed...), append(d.added, added...)
	return d
}

// diffRange is diffPods for old and new, parts of their files from
// indexes oi and nj, filling remap for old.
func diffRange(old, new []spec.ResolvedPod, oi, nj int, remap []int32) (removed, added []int) {
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		order := 0
		switch {
		case j == len(new):
			order = -1
		case i == len(old):
			order = 1
		case old[i].Name != new[j].Name || old[i].Namespace != new[j].Namespace:
			// The key is namespace/name; name and namespace, as decoded,
			// are often the same strings, compared without reading them.
			order = strings.Compare(old[i].Key, new[j].Key)
		}
		switch {
		case order < 0:
			remap[i] = -1
			removed = append(removed, oi+i)
			i++
		case order > 0:
			added = append(added, nj+j)
			j++
		default:
			remap[i] = int32(nj + j)
			if a, b := &old[i], &new[j]; a.IP != b.IP || a.Node != b.Node || a.Namespace != b.Namespace ||
				!spec.SameLabels(a.Labels, b.Labels) || !slices.Equal(a.Ports, b.Ports) {
				remap[i] = -1
				removed, added = append(removed, oi+i), append(added, nj+j)
			}
			i, j = i+1, j+1
		}
	}
	return removed, added
}

// localPods is Cluster.podsOf for r made from prev's by d, in place.
func (d *podDelta) localPods(prev map[string][]int32, r *spec.Resolved) map[string][]int32 {
	for node, list := range prev {
		kept := list[:0]
		for _, i := range list {
			if j := d.remap[i]; j >= 0 {
				kept = append(kept, j)
			}
		}
		if prev[node] = kept; len(kept) == 0 {
			delete(prev, node) // as if built: only nodes with pods
		}
	}
	touched := map[string]bool{}
	for _, j := range d.added {
		if p := &r.Pods[j]; p.IP.Is4() {
			prev[keyOf(prev, p.Node)] = append(prev[p.Node], int32(j))
			touched[p.Node] = true
		}
	}
	for node := range touched {
		slices.Sort(prev[node])
	}
	return prev
}

// patch moves the pods of d between t's classes, now those of r, making
// and dropping classes; false when the result might differ from a table
// built for r (t is then left half changed: drop it).
func (t *table) patch(r *spec.Resolved, d *podDelta) bool {
	nsOf := map[*class]string{} // the namespace of each class touched
	touched := map[*class]bool{}
	for _, i := range d.removed {
		p := &t.r.Pods[i]
		if !p.IP.Is4() {
			continue
		}
		k := t.ofPod[i]
		if k == nil {
			return false
		}
		t.descOf(k) // while it has its members: it sorts the class
		if at, found := slices.BinarySearch(k.members, int32(i)); found {
			k.members = slices.Delete(k.members, at, at+1)
		}
		touched[k], nsOf[k] = true, p.Namespace
	}
	ofPod := make([]*class, len(r.Pods))
	for i, k := range t.ofPod {
		if j := d.remap[i]; j >= 0 {
			ofPod[j] = k
		}
	}
	for _, k := range t.classes {
		for n, m := range k.members {
			k.members[n] = d.remap[m]
		}
	}
	old := t.r
	t.r, t.ofPod = r, ofPod
	created := t.addPods(d.added, touched, nsOf)
	var dropped []*class
	for k := range touched {
		slices.Sort(k.members)
		if len(k.members) == 0 {
			dropped = append(dropped, k)
		}
	}
	if !t.renumber(dropped, created) {
		return false
	}
	sameNS := maps.EqualFunc(old.Namespaces, r.Namespaces, spec.SameLabels)
	if t.reindex(dropped, created, nsOf) || !sameNS {
		t.nss = t.namespaceIndex()
	}
	t.netIDs = t.netIdentities() // a pod's /32 may be a block prefix
	t.byLabel = map[string]map[labelPair][]*class{}
	t.carryRules(old, dropped, created, sameNS)
	return true
}

// addPods puts the pods of r at the indexes added into their classes,
// marking them touched; it returns the classes made for them, sorted.
func (t *table) addPods(added []int, touched map[*class]bool, nsOf map[*class]string) []*class {
	made := map[string]*class{}
	var created []*class
	for _, j := range added {
		p := &t.r.Pods[j]
		if !p.IP.Is4() {
			continue
		}
		in, blocks := t.membership(netip.PrefixFrom(p.IP, 32))
		desc := podDesc(p, blocks)
		k := made[desc]
		if k == nil {
			at, found := slices.BinarySearchFunc(t.classes, desc, t.compareDesc)
			if found {
				k = t.classes[at]
			} else {
				k = &class{desc: &desc, blocks: in}
				t.described = append(t.described, k)
				made[desc] = k
				created = append(created, k)
			}
		}
		k.members = append(k.members, int32(j))
		t.ofPod[j] = k
		touched[k], nsOf[k] = true, p.Namespace
	}
	slices.SortFunc(created, func(a, b *class) int { return strings.Compare(*a.desc, *b.desc) })
	return created
}

// carryRules keeps the peers and rules that hold in t's new file (old was
// the last): those of policies that did not change, whose peers gained
// or lost no class, and, for a named egress port to any peer, while no
// class came or went. The peers of a rule are patched for the classes
// dropped and created rather than resolved again.
func (t *table) carryRules(old *spec.Resolved, dropped, created []*class, sameNS bool) {
	if !sameNS {
		t.remotes, t.kinds = map[ruleRef]remotes{}, map[string]*sideKind{}
		return
	}
	same := map[string]bool{}
	unchanged := func(key string) bool {
		if same, ok := same[key]; ok {
			return same
		}
		a, b := policyByKey(old, key), policyByKey(t.r, key)
		same[key] = a != nil && b != nil && a.Namespace == b.Namespace && reflect.DeepEqual(a.Spec, b.Spec)
		return same[key]
	}
	gone := map[*class]bool{}
	for _, k := range dropped {
		gone[k] = true
	}
	moved := map[ruleRef]bool{} // peers that gained or lost a class
	for ref, rem := range t.remotes {
		if !unchanged(ref.policy) {
			delete(t.remotes, ref)
			continue
		}
		pol := policyByKey(t.r, ref.policy)
		peers := rulesOf(pol, ref.dir)[ref.rule].peers
		n := len(rem.classes)
		rem.classes = slices.DeleteFunc(rem.classes, func(k *class) bool { return gone[k] })
		changed := len(rem.classes) != n
		for _, k := range created {
			if t.peersMatch(pol.Namespace, peers, k) {
				rem.classes, changed = append(rem.classes, k), true
			}
		}
		if changed {
			slices.SortFunc(rem.classes, compareIDs)
			moved[ref] = true
		}
		t.remotes[ref] = rem
	}
	for key, k := range t.kinds {
		if k.anyNamed && len(dropped)+len(created) > 0 ||
			slices.ContainsFunc(k.policies, func(p string) bool { return !unchanged(p) }) ||
			slices.ContainsFunc(k.refs, func(ref ruleRef) bool { return moved[ref] }) {
			delete(t.kinds, key)
		}
	}
}

// policyByKey returns r's policy of key, or nil.
func policyByKey(r *spec.Resolved, key string) *spec.ResolvedPolicy {
	i, found := slices.BinarySearchFunc(r.Policies, key, func(p spec.ResolvedPolicy, key string) int { return strings.Compare(p.Key, key) })
	if !found {
		return nil
	}
	return &r.Policies[i]
}

// peersMatch reports whether pod class k is one of peers, those of a
// rule of a policy of namespace policyNS: resolvePeers for one class.
func (t *table) peersMatch(policyNS string, peers []spec.PolicyPeer, k *class) bool {
	p := t.pod(k)
	for _, peer := range peers {
		if peer.IPBlock != nil {
			if b, ok := parseBlock(peer.IPBlock); ok && k.blocks[b.text] {
				return true
			}
			continue
		}
		inNS := p.Namespace == policyNS
		if peer.NamespaceSelector != nil {
			inNS = matches(peer.NamespaceSelector, t.namespaceLabels(p.Namespace))
		}
		if inNS && (peer.PodSelector == nil || matches(peer.PodSelector, p.Labels)) {
			return true
		}
	}
	return false
}

// renumber gives the classes created their identities and forgets those
// of the classes dropped, where that is what assignIDs would give for the
// new set of classes; false where it might not be.
//
// assignIDs gives each class, in description order, the first of its
// candidates (classID) that no earlier class holds. Dropping a class
// frees its identity: a later class that passed over it (one of the
// rehashed, whose earlier candidates were all taken) would now take it.
// A class created whose first candidate nobody holds takes it, wherever
// it sorts: no class that passed over that value exists (it would be
// held), and no class holds it. Otherwise its place in the order decides
// who gets rehashed: built again.
func (t *table) renumber(dropped, created []*class) bool {
	gone := map[*class]bool{}
	for _, k := range dropped {
		gone[k] = true
	}
	isGone := func(k *class) bool { return gone[k] }
	t.byID = slices.DeleteFunc(t.byID, isGone)
	t.rehashed = slices.DeleteFunc(t.rehashed, isGone)
	for _, k := range t.rehashed {
		for n := 0; ; n++ {
			id := classID(t.descOf(k), n)
			if id == k.id {
				break
			}
			if t.classByID(id) == nil && !reserved(id) {
				return false // it passed over an identity now free
			}
		}
	}
	taken := map[uint32]bool{}
	for _, k := range created {
		id := classID(*k.desc, 0)
		if reserved(id) || taken[id] || t.classByID(id) != nil {
			return false
		}
		k.id, taken[id] = id, true
	}
	t.byID = mergeByID(t.byID, slices.SortedFunc(slices.Values(created), compareIDs))
	return true
}

// mergeByID merges two lists of classes sorted by identity.
func mergeByID(a, b []*class) []*class {
	if len(b) == 0 {
		return a
	}
	out := make([]*class, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0].id < b[0].id {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// reindex takes the classes dropped out of t's lists and indexes and
// merges those created in, keeping each list in description order. It
// reports whether a namespace gained its first pods or lost its last.
func (t *table) reindex(dropped, created []*class, nsOf map[*class]string) bool {
	if len(dropped)+len(created) == 0 {
		return false
	}
	gone := map[*class]bool{}
	for _, k := range dropped {
		gone[k] = true
	}
	t.classes = t.splice(t.classes, gone, created)
	byNS, byBlock := map[string][]*class{}, map[string][]*class{}
	for _, k := range slices.Concat(dropped, created) {
		byNS[nsOf[k]] = nil
		for text := range k.blocks {
			byBlock[text] = nil
		}
	}
	for _, k := range created {
		byNS[nsOf[k]] = append(byNS[nsOf[k]], k)
		for text := range k.blocks {
			byBlock[text] = append(byBlock[text], k)
		}
	}
	namespaces := false
	for ns, made := range byNS {
		list, had := t.byNS[ns]
		if t.byNS[keyOf(t.byNS, ns)] = t.splice(list, gone, made); len(t.byNS[ns]) == 0 {
			delete(t.byNS, ns)
			namespaces = namespaces || had
		} else {
			namespaces = namespaces || !had
		}
	}
	for text, made := range byBlock {
		if t.inBlock[text] = t.splice(t.inBlock[text], gone, made); len(t.inBlock[text]) == 0 {
			delete(t.inBlock, text)
		}
	}
	return namespaces
}

// splice returns list, sorted by description, without the classes gone
// and with those of made (sorted too) put in their places, found by
// bisection: most descriptions of a carried table are not kept (descOf).
func (t *table) splice(list []*class, gone map[*class]bool, made []*class) []*class {
	out := make([]*class, 0, len(list)+len(made))
	for _, k := range made {
		at, _ := slices.BinarySearchFunc(list, *k.desc, t.compareDesc)
		for _, o := range list[:at] {
			if !gone[o] {
				out = append(out, o)
			}
		}
		out, list = append(out, k), list[at:]
	}
	for _, o := range list {
		if !gone[o] {
			out = append(out, o)
		}
	}
	return out
}

// compareDesc orders class k against a description, for bisection.
func (t *table) compareDesc(k *class, desc string) int { return strings.Compare(t.descOf(k), desc) }

// Compact drops what the Cluster's tables can make again and a carried
// Cluster seldom needs: the descriptions of the pod classes (half of a
// table at 1000 nodes), made again for the classes a node's identities
// name, and the label indexes, which NewClusterFrom drops anyway. A
// daemon calls it on what it keeps between passes.
func (cl *Cluster) Compact() {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for _, t := range cl.tables {
		t.descMu.Lock()
		list := t.described
		if !t.compacted {
			list = t.classes
		}
		for _, k := range list {
			if len(k.members) > 0 {
				k.desc = nil
			}
		}
		t.described, t.compacted = nil, true
		t.descMu.Unlock()
		t.mu.Lock()
		t.byLabel = map[string]map[labelPair][]*class{}
		t.mu.Unlock()
	}
}
