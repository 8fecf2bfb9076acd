package observe

import (
	"maps"
	"slices"
	"sync"

	"github.com/netreconcile/netreconcile/reconcile/plan"
	"github.com/netreconcile/netreconcile/state"
)

// Cache lets passes reuse what they observed in the node namespace, in pod
// namespaces and in the datapath that nothing has changed since: the watch
// daemon's passes, and an apply's plan and verify. The daemon invalidates
// what its netlink subscriptions report changed (a pod namespace, a node
// link, the node's other objects), and everything when a subscription
// overflows and on its periodic full pass; the engine invalidates what it
// applies changes to (datapath entries and attachments it writes through:
// the kernel acknowledged each write), and everything when a pass fails.
// A Cache serves one pass at a time.
//
// What raises no netlink event is read again only on a full pass (watch's
// --resync, SIGHUP): the datapath's map entries, written only by
// netreconcile; its attachments, also read again when a link they were on
// is gone, recreated or renamed (they go with it); and the sysctls, also
// read again for a recreated link. Drift made there by hand is repaired
// by the next full pass. The daemon's subscriptions report only changes
// that may concern owned objects, so a foreign object can appear unseen;
// a desired one clashing with it then fails to apply, which invalidates
// everything, and the retry reports the clash.
type Cache struct {
	mu      sync.Mutex
	pods    map[string]*podObs // by netns reference
	nodeNS  *nsDump
	stale   nodeStale    // what changed in the node namespace since nodeNS
	nodeSys *nodeSysctls // outlives nodeNS
	dp      *dpObserved
	up      *uplinkObs // the uplink facts and peers' routes (UplinkWith)
	// netns records (the state directory) are written by this process's
	// passes alone: watch holds the node lock all along.
	netns map[string]string
	// Invalidations count up, so that what was read while one arrived is
	// not kept: the read may predate the change.
	gen   map[string]uint64 // per namespace
	dpGen uint64            // datapath entries or attachments dropped or written
	epoch uint64            // InvalidateAll
}

// stamp identifies the invalidations a read started after.
type stamp struct{ gen, epoch uint64 }

// NewCache returns an empty cache: the first pass reads everything.
func NewCache() *Cache { return &Cache{pods: map[string]*podObs{}, gen: map[string]uint64{}} }

// Invalidate marks namespace ns ("" for the node namespace, else a pod
// netns reference) as changed since it was observed.
func (c *Cache) Invalidate(ns string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.invalidate(ns)
}

// InvalidateAll makes the next pass read everything.
func (c *Cache) InvalidateAll() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	clear(c.gen) // stamps of older epochs never match again
	clear(c.pods)
	c.nodeNS, c.nodeSys, c.dp, c.netns, c.up = nil, nil, nil, nil, nil
	c.stale = nodeStale{}
	c.dpGen++
}

// pod returns what the cache holds of namespace ref, or nil and the stamp
// to store a fresh read with.
func (c *Cache) pod(ref string) (*podObs, stamp) {
	if c == nil {
		return nil, stamp{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pods[ref], stamp{c.gen[ref], c.epoch}
}

// putPod keeps p unless ref was invalidated since st.
func (c *Cache) putPod(ref string, p *podObs, st stamp) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st == (stamp{c.gen[ref], c.epoch}) {
		c.pods[ref] = p
	}
}

// nodeSysctls are the node's sysctls read so far (filled as passes ask
// for them). Sysctls change no link and raise no event: a Cache keeps them
// when the node namespace's dump is invalidated, each link's under the
// ifindex it was read from (a link recreated starts with the defaults).
type nodeSysctls struct {
	proxyARP    map[string]indexed[bool]   // by ifname
	linkSysctls map[string]indexed[string] // "ifname/key" -> value
	sysctls     map[string]string          // name -> value
}

// indexed is a value read for the link with ifindex index.
type indexed[T any] struct {
	index int
	value T
}

// nodeStale is what changed in the node namespace since its dump: links
// by ifindex (netlink events) or name (changes applied), and whether
// anything else changed (addresses, routes, neighbours; also after any
// link change: the kernel drops routes with their link without a word).
type nodeStale struct {
	index map[int]bool
	name  map[string]bool
	rest  bool
}

func (s nodeStale) any() bool { return len(s.index) > 0 || len(s.name) > 0 || s.rest }

// nodeNamespace returns the node namespace's dump kept (nil: none), the
// sysctls kept (maybe nil), what changed since the dump, and the stamp to
// store a fresh or refreshed dump with.
func (c *Cache) nodeNamespace() (*nsDump, *nodeSysctls, nodeStale, stamp) {
	if c == nil {
		return nil, nil, nodeStale{}, stamp{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stale
	st.index, st.name = maps.Clone(st.index), maps.Clone(st.name)
	return c.nodeNS, c.nodeSys, st, stamp{c.gen[state.NodeNS], c.epoch}
}

// InvalidateLink marks the link with ifindex index in namespace ns as
// changed (created, deleted or altered) since it was observed.
func (c *Cache) InvalidateLink(ns string, index int) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ns != state.NodeNS {
		c.invalidate(ns) // a pod namespace: cheap to read whole
		return
	}
	c.nodeChanged(index, "")
}

// InvalidateAttachments makes the next pass read the datapath's
// attachments again (a clsact filter or qdisc was deleted: tc changes
// are no link event), keeping its map entries.
func (c *Cache) InvalidateAttachments() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropAttachments()
}

// InvalidateObjects marks addresses, routes or neighbours of namespace ns
// as changed since they were observed; its links did not change.
func (c *Cache) InvalidateObjects(ns string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ns != state.NodeNS {
		c.invalidate(ns)
		return
	}
	c.nodeChanged(0, "")
}

// nodeChanged marks as stale in the node namespace's dump the link with
// ifindex index or with name (when given), and its other objects: routes
// go with their link without a word.
func (c *Cache) nodeChanged(index int, name string) {
	c.gen[state.NodeNS]++
	if index != 0 {
		if c.stale.index == nil {
			c.stale.index = map[int]bool{}
		}
		c.stale.index[index] = true
	}
	if name != "" {
		if c.stale.name == nil {
			c.stale.name = map[string]bool{}
		}
		c.stale.name[name] = true
	}
	c.stale.rest = true
}

// putNode keeps the sysctls read, and with fresh the dump d, unless the
// node namespace was invalidated since st.
func (c *Cache) putNode(d *nsDump, sys *nodeSysctls, fresh bool, st stamp) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if fresh && st == (stamp{c.gen[state.NodeNS], c.epoch}) {
		c.nodeNS, c.stale = d, nodeStale{}
	}
	if st.epoch == c.epoch {
		c.nodeSys = sys
	}
}

// records returns the netns records, or nil and the stamp to store them
// with.
func (c *Cache) records() (map[string]string, stamp) {
	if c == nil {
		return nil, stamp{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.netns, stamp{0, c.epoch}
}

func (c *Cache) putRecords(r map[string]string, st stamp) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.epoch == c.epoch {
		c.netns = r
	}
}

func (c *Cache) datapath() (*dpObserved, stamp) {
	if c == nil {
		return nil, stamp{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dp, stamp{c.dpGen, c.epoch}
}

func (c *Cache) putDatapath(d *dpObserved, st stamp) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st == (stamp{c.dpGen, c.epoch}) {
		c.dp = d
	}
}

// mapKinds are the objects that are entries of the datapath's maps. A map
// write the kernel accepted is what reading the map back would show, so
// the cache takes applied changes to them as written (write-through)
// rather than reading thousands of entries again. Attachments likewise:
// an attach the kernel accepted runs this build's program.
var mapKinds = map[state.Kind]bool{
	state.KindService: true, state.KindEndpoint: true, state.KindPolicyIdentity: true,
	state.KindPodPolicy: true, state.KindPolicyRevision: true,
}

// Applied updates the cache after p was applied without error: datapath
// entries, attachments and netns records are written through; whatever
// else p touched is invalidated. It reports whether p held map entries
// only and the cache took them all, so that nothing needs reading again
// to verify p.
func (c *Cache) Applied(p *plan.Plan) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var entries, atts []plan.Change
	all := true
	for _, ch := range p.Changes {
		kind := plan.KindOf(ch)
		switch {
		case mapKinds[kind]:
			entries = append(entries, ch)
			continue
		case kind == state.KindAttach:
			atts = append(atts, ch)
		case kind == state.KindNetns:
			c.invalidate(ch.Key)
			c.recordNetns(ch)
		case kind == state.KindDatapath:
			c.dp = nil
			c.dpGen++
		case ch.NS() != state.NodeNS:
			c.invalidate(ch.NS())
		case kind == state.KindMasquerade:
			// read on every pass (Node)
		case kind == state.KindSysctl:
			// ip_forward is copied into every interface's forwarding:
			// read them all again.
			c.nodeSys = nil
		case kind == state.KindLink:
			l, _ := ch.Desired.(*state.Link)
			if l == nil {
				l, _ = ch.Observed.(*state.Link)
			}
			c.nodeChanged(0, l.Name)
			if l.Type == state.LinkVeth && l.PeerNS == state.NodeNS && l.PeerName != "" {
				c.nodeChanged(0, l.PeerName) // a pair within the node namespace (the service device)
			}
			if c.nodeSys != nil {
				delete(c.nodeSys.proxyARP, l.Name)
				for k := range l.Sysctls {
					delete(c.nodeSys.linkSysctls, l.Name+"/"+k)
				}
			}
		default: // addresses, routes, neighbours of the node
			c.nodeChanged(0, "")
		}
		all = false
	}
	if len(entries)+len(atts) == 0 || c.dp == nil || c.dp.entries == nil {
		return false // nothing to write through, or read again anyway
	}
	dp := *c.dp
	if len(entries) > 0 {
		dp.entries, dp.epIndex = writeThrough(dp.entries, dp.epIndex, entries)
	}
	if len(atts) > 0 && dp.atts != nil {
		dp.atts, dp.attIndex = writeThrough(dp.atts, dp.attIndex, atts)
	}
	c.dp = &dp
	c.dpGen++
	return all && len(entries) > 0
}

// writeThrough applies changes to objs, objects found in the datapath.
// index, the ifindex each endpoint or attachment holds, gets -1 for one
// written: the index its link has now, looked up by name next time.
func writeThrough(objs []state.Object, index map[string]int, changes []plan.Change) ([]state.Object, map[string]int) {
	objs, index = slices.Clone(objs), maps.Clone(index)
	if index == nil {
		index = map[string]int{}
	}
	type kindKey struct {
		kind string
		key  string
	}
	byKey := make(map[kindKey]int, len(objs))
	for i, o := range objs {
		byKey[kindKey{o.Kind().String(), o.Key()}] = i
	}
	var gone []int
	for _, ch := range changes {
		k := kindKey{ch.Kind, ch.Key}
		i, have := byKey[k]
		switch {
		case ch.Action == plan.Delete:
			if have {
				gone = append(gone, i)
			}
			delete(index, ch.Key)
			continue
		case have:
			objs[i] = ch.Desired
		default:
			byKey[k] = len(objs)
			objs = append(objs, ch.Desired)
		}
		if k := ch.Desired.Kind(); k == state.KindEndpoint || k == state.KindAttach {
			index[ch.Key] = -1
		}
	}
	slices.Sort(gone)
	for j := len(gone) - 1; j >= 0; j-- {
		objs = slices.Delete(objs, gone[j], gone[j]+1)
	}
	return objs, index
}

// recordNetns writes a netns change through to the records kept.
func (c *Cache) recordNetns(ch plan.Change) {
	if c.netns == nil {
		return
	}
	recs := maps.Clone(c.netns)
	delete(recs, ch.Key)
	if n, ok := ch.Desired.(*state.Netns); ok && ch.Action != plan.Delete && n.Owned {
		recs[ch.Key] = n.Owner()
	}
	c.netns = recs
}

// dropAttachments forgets the attachments, keeping the map entries.
func (c *Cache) dropAttachments() {
	if c.dp != nil && c.dp.atts != nil {
		c.dp = &dpObserved{entries: c.dp.entries, epIndex: c.dp.epIndex}
	}
	c.dpGen++
}

// invalidate is Invalidate with c.mu held.
func (c *Cache) invalidate(ns string) {
	c.gen[ns]++
	if ns == state.NodeNS {
		// Attachments there are checked against the links on every pass.
		c.nodeNS, c.stale = nil, nodeStale{}
		return
	}
	delete(c.pods, ns)
	if c.dp != nil && slices.ContainsFunc(c.dp.atts, func(o state.Object) bool { return o.(*state.Attach).NS == ns }) {
		c.dropAttachments() // macvlan pods' are in their namespace
	}
}
