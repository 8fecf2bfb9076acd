package observe

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/drivers/kinds"
	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/masq"
	"github.com/netreconcile/netreconcile/reconcile/internal/handles"
	"github.com/netreconcile/netreconcile/reconcile/internal/pool"
	"github.com/netreconcile/netreconcile/reconcile/internal/records"
	"github.com/netreconcile/netreconcile/state"
)

// podEnd is the pod side of a veth as seen inside the pod namespace.
type podEnd struct {
	ns    string
	name  string
	index int
	mtu   int
	up    bool
	mac   string
	alias string
}

// observer holds one pass's intermediate facts. Pod namespaces are read
// by several workers at once (the cost is syscalls, not CPU); mu guards
// what they merge into.
type observer struct {
	cfg     *Config
	pending map[string]string // link key -> owner, links being created when a pass stopped
	mu      sync.Mutex
	obs     *state.Observed
	ends    map[int]podEnd // the host end's ifindex -> pod end
	// parents are macvlan/ipvlan links in pod namespaces whose parent is
	// in the node namespace, by the parent's ifindex there: resolved to a
	// name once the node namespace is read.
	parents []parentRef
	dp      dpObserved
	cache   *Cache // nil: read everything
	// netnsMarked: the pod namespace read (sub-observers) has its
	// loopback marked as netreconcile's.
	netnsMarked bool
}

type parentRef struct {
	link  *state.Link
	index int
}

// observeWorkers bounds the namespaces read at once.
const observeWorkers = 8

// Config says which node to observe and where.
type Config struct {
	Node      string // node name in the file
	NodeNetns string // the node's host namespace: "" (current), a name, or a path
	BPFFS     string // pin directory of this node
	Uplink    string // the uplink's name
	Records   records.Dir
}

// Scope names what a pass reads beyond what netreconcile owns by its
// marks and records. The engine computes it from the desired state: the
// observation depends on the file only through it.
type Scope struct {
	// Netns are the pod namespaces the file names (read whether or not
	// they are netreconcile's: a foreign one is reported as such).
	Netns []string
	// LinkSysctls are the per-interface sysctls to read, by node link
	// name (only those the file sets are compared).
	LinkSysctls map[string][]string
	// Sysctls are node sysctls to read besides those recorded as changed.
	Sysctls []string
	// MapSizes are the map sizes wanted of the datapath pinned in a
	// directory (absent: no datapath wanted there); a datapath of other
	// sizes is replaced, so its entries are not read.
	MapSizes map[string]string
}

// Node reads the node's state: the node namespace, every pod namespace
// that the scope names or that netreconcile recorded as its own, and the
// datapath. One dump per object kind per namespace; with a cache, only
// what changed since it was filled. The datapath is read (or taken from
// the cache) only once dpReady (when not nil) is closed. Owners of the
// datapath's entries, which the maps do not hold, are left empty.
func Node(cfg *Config, scope *Scope, cache *Cache, dpReady <-chan struct{}) (*state.Observed, error) {
	o := &observer{cfg: cfg, obs: state.NewObserved(cfg.Node), ends: map[int]podEnd{}, cache: cache}
	var err error
	if o.pending, err = cfg.Records.Pending(); err != nil {
		return nil, err
	}
	// Pod namespaces are read beside the node namespace, and the datapath
	// beside them once the node's links are known: it finds the host ends
	// of pods among them without listing them again.
	nsDone := make(chan error, 1)
	go func() {
		start := time.Now()
		err := o.namespaces(scope)
		o.mu.Lock()
		o.obs.Phases = append(o.obs.Phases, "podNamespaces", time.Since(start))
		o.mu.Unlock()
		nsDone <- err
	}()
	nodeErr := func(err error) (*state.Observed, error) {
		<-nsDone // when the node namespace cannot be read, that is the one error
		return nil, err
	}
	start := time.Now()
	nd, sys, stale, nodeStamp := cache.nodeNamespace()
	fresh := nd == nil || stale.any()
	if fresh {
		h := handles.New(cfg.NodeNetns)
		defer h.Close()
		nh, err := h.Get(state.NodeNS)
		if err != nil {
			return nodeErr(err)
		}
		if nd == nil || len(stale.index)+len(stale.name) > maxOneByOne {
			nd, err = dump(nh, state.NodeNS, cfg.Node)
		} else {
			nd, err = refresh(nh, nd, stale, cfg.Node)
		}
		if err != nil {
			return nodeErr(err)
		}
		o.mu.Lock()
		o.obs.Phases = append(o.obs.Phases, "nodeDump", time.Since(start))
		o.mu.Unlock()
	}
	if sys == nil {
		sys = &nodeSysctls{proxyARP: map[string]indexed[bool]{}, linkSysctls: map[string]indexed[string]{},
			sysctls: map[string]string{}}
	}
	names, byIndex := nd.linkIndex()
	dpDone := make(chan error, 1)
	go func() {
		if dpReady != nil {
			<-dpReady
		}
		cachedDP, dpStamp := cache.datapath()
		err := o.observeDatapath(scope, names, byIndex, cachedDP)
		if err == nil {
			kept := o.dp
			kept.phases = nil
			cache.putDatapath(&kept, dpStamp)
		}
		dpDone <- err
	}()
	if err := errors.Join(<-nsDone, <-dpDone); err != nil {
		return nil, err
	}
	o.obs.Phases = append(o.obs.Phases, o.dp.phases...)
	start = time.Now()
	if err := o.node(nd, sys, scope); err != nil {
		return nil, err
	}
	cache.putNode(nd, sys, fresh, nodeStamp) // with the sysctls node read
	if err := o.nftables(); err != nil {
		return nil, err
	}
	o.obs.Phases = append(o.obs.Phases, "nodeNamespace", time.Since(start))
	return o.obs, nil
}

// nftables reads netreconcile's table in the node namespace: on every
// pass, never cached, since no kernel event the cache follows says it
// changed.
func (o *observer) nftables() error {
	m, err := masq.Observe(o.cfg.NodeNetns)
	if m != nil {
		o.obs.Owned.Put(m)
	}
	return err
}

// namespaces observes pod namespaces first, so that node veths can be
// matched to their peers.
func (o *observer) namespaces(scope *Scope) error {
	owned, st := o.cache.records()
	if owned == nil {
		var err error
		var warns []string
		if owned, warns, err = o.cfg.Records.OwnedNetns(); err != nil {
			return err
		}
		o.warn(warns...)
		o.cache.putRecords(owned, st)
	}
	seen := map[string]bool{}
	var refs []string
	for _, ref := range scope.Netns {
		seen[ref] = true
		refs = append(refs, ref)
	}
	for ref := range owned {
		if !seen[ref] {
			refs = append(refs, ref)
		}
	}
	// Sized for what a thousand pods bring, rather than grown step by step.
	o.ends = make(map[int]podEnd, len(refs))
	for _, k := range []state.Kind{state.KindAddr, state.KindRoute, state.KindNeigh} {
		o.obs.Owned.Grow(k, len(refs))
	}
	if o.cache != nil {
		// What the cache holds needs no worker.
		uncached := refs[:0]
		for _, ref := range refs {
			if p, _ := o.cache.pod(ref); p != nil {
				o.merge(ref, p, owned)
			} else {
				uncached = append(uncached, ref)
			}
		}
		refs = uncached
	}
	return o.pods(refs, owned, seen)
}

// pods observes pod namespaces refs, observeWorkers at a time, each
// worker with handles of its own (the node namespace's are reused from
// namespace to namespace). After a failure no namespace is started; every
// failure is returned.
func (o *observer) pods(refs []string, owned map[string]string, wanted map[string]bool) error {
	return pool.Each(refs, observeWorkers, func() *handles.Set { return handles.New(o.cfg.NodeNetns) },
		func(h *handles.Set) { h.Close() },
		func(h *handles.Set, ref string) error { return o.pod(h, ref, owned, wanted) })
}

// pod observes one pod namespace.
func (o *observer) pod(h *handles.Set, ref string, owned map[string]string, wanted map[string]bool) error {
	_, st := o.cache.pod(ref) // namespaces merged what the cache held
	_, err := h.FD(ref)
	if err != nil {
		// Absent. A record of it without a desire for it is left from a
		// crash between recording and creating: observed, so that the
		// plan deletes the record.
		if owner, ok := owned[ref]; ok && !wanted[ref] {
			o.mu.Lock()
			o.obs.Owned.Put(&state.Netns{Ref: ref, Owned: true, OwnerK: owner})
			o.mu.Unlock()
		}
		return nil
	}
	defer h.Forget(ref)
	ph, err := h.Get(ref)
	if err != nil {
		return err
	}
	d, err := dump(ph, ref, o.cfg.Node)
	if err != nil {
		return err
	}
	// Sorted apart from the pass's observation, so that the cache can
	// keep this namespace's part.
	sub := &observer{cfg: o.cfg, pending: o.pending, obs: state.NewObserved(o.cfg.Node), ends: map[int]podEnd{}}
	byIndex, ours, owners := sub.links(ref, d.links)
	nodeID := sub.podParents(h, ph, ref, d.links, ours)
	for _, l := range d.links {
		a := l.Attrs()
		if l.Type() != state.LinkVeth || a.NetNsID < 0 {
			continue
		}
		if nodeID == unknownID {
			nodeID = nodeIDIn(h, ph)
		}
		if a.NetNsID != nodeID {
			continue // its peer is not in the node namespace
		}
		// Keyed by the peer's ifindex in the node namespace: the node's
		// id for this namespace would cost a lookup that grows with the
		// number of namespaces. Unmarked ends are recorded too: a crash
		// between creating a pair and marking its pod end leaves one, and
		// the host end (marked at creation) still claims it.
		sub.ends[a.ParentIndex] = podEnd{ns: ref, name: a.Name, index: a.Index, mtu: a.MTU,
			up: a.Flags&net.FlagUp != 0, mac: a.HardwareAddr.String(), alias: a.Alias}
	}
	sub.rest(ref, d, byIndex, ours, owners)
	// The namespace is proven netreconcile's by its marked loopback, or
	// (made by an earlier release) by a link of ours inside it.
	p := &podObs{obs: sub.obs, ends: sub.ends, parents: sub.parents, made: sub.netnsMarked || len(owners) > 0}
	o.cache.putPod(ref, p, st)
	o.merge(ref, p, owned)
	return nil
}

// warn notes ignored state records for the log.
func (o *observer) warn(w ...string) {
	if len(w) == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.obs.Warnings = append(o.obs.Warnings, w...)
}

// podObs is what one pod namespace showed.
type podObs struct {
	obs     *state.Observed // its owned and foreign objects
	ends    map[int]podEnd
	parents []parentRef
	made    bool // it shows that netreconcile made it
}

// merge adds what pod namespace ref showed to the pass's observation.
// Whether the namespace itself is ours comes from the records, which may
// have changed since p was observed.
func (o *observer) merge(ref string, p *podObs, owned map[string]string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	owner, ok := owned[ref]
	if ok && (!p.made || !records.PodOwner(owner)) {
		// A record is not proof enough to delete a namespace: one that
		// shows no mark of ours was not made by netreconcile.
		o.obs.Warnings = append(o.obs.Warnings, fmt.Sprintf("ignored the record of namespace %s (%s): the namespace "+
			"carries no mark of netreconcile's (its loopback and links are unmarked) or the owner is not a pod, so netreconcile did not make it", ref, owner))
		ok = false
	}
	if ok {
		o.obs.Owned.Put(&state.Netns{Ref: ref, Owned: true, OwnerK: owner})
	} else {
		o.obs.Foreign.Netns[ref] = true
	}
	o.obs.Owned.Merge(p.obs.Owned)
	f := &p.obs.Foreign
	maps.Copy(o.obs.Foreign.Links, f.Links)
	maps.Copy(o.obs.Foreign.Addrs, f.Addrs)
	maps.Copy(o.obs.Foreign.Routes, f.Routes)
	maps.Copy(o.obs.Foreign.VXLAN, f.VXLAN)
	maps.Copy(o.ends, p.ends)
	o.parents = append(o.parents, p.parents...)
}

// podParents records the parents of owned macvlan/ipvlan links of pod
// namespace ref: the kernel names a parent by its ifindex in the namespace
// of the link's netnsid, which must be the node's. It returns the node
// namespace's id in ref, or unknownID when it did not need it.
func (o *observer) podParents(h *handles.Set, ph *netlink.Handle, ref string, links []netlink.Link, ours map[int]bool) int {
	nodeID := unknownID
	for _, l := range links {
		a := l.Attrs()
		if k := kinds.Of(l.Type()); !ours[a.Index] || k == nil || !k.Child {
			continue
		}
		obj, _ := o.obs.Owned.Get(state.KindLink, state.LinkKey(ref, a.Name)).(*state.Link)
		if obj == nil {
			continue
		}
		if nodeID == unknownID {
			nodeID = nodeIDIn(h, ph)
		}
		if a.NetNsID < 0 || a.NetNsID != nodeID {
			obj.Parent = "?" // not a child of a node device: replaced
			continue
		}
		o.parents = append(o.parents, parentRef{obj, a.ParentIndex})
	}
	return nodeID
}

// unknownID stands for a namespace id not looked up yet.
const unknownID = -2

// nodeIDIn returns the id the pod namespace of ph gives the node
// namespace, or -1.
func nodeIDIn(h *handles.Set, ph *netlink.Handle) int {
	fd, err := h.FD(state.NodeNS)
	if err != nil {
		return -1
	}
	id, err := ph.GetNetNsIdByFd(int(fd))
	if err != nil {
		return -1
	}
	return id
}

// nsDump is everything one namespace shows: one dump per kind.
type nsDump struct {
	links   []netlink.Link
	addrs   []netlink.Addr
	routes  []netlink.Route
	neighs  []netlink.Neigh
	proxies []netlink.Neigh         // proxy ARP entries, node namespace only
	fdb     map[int][]netlink.Neigh // by owned vxlan ifindex
}

func dump(h *netlink.Handle, ns, node string) (*nsDump, error) {
	d := &nsDump{}
	var err error
	if d.links, err = nsutil.RetryDump(h.LinkList); err != nil {
		return nil, fmt.Errorf("list links in netns %q: %w", state.NSLabel(ns), err)
	}
	if err := dumpRest(h, d, ns, node); err != nil {
		return nil, err
	}
	return d, nil
}

// maxOneByOne is how many node links are read one by one (refresh,
// proxyARP); past it, one dump of them all is cheaper.
const maxOneByOne = 32

// refresh reads again, into a copy of d, what changed in the node
// namespace since d was dumped: the links stale names (by index or name),
// and the rest when stale says so. A thousand host links take most of a
// dump; a pod added changes one of them.
func refresh(h *netlink.Handle, d *nsDump, stale nodeStale, node string) (*nsDump, error) {
	fresh := &nsDump{links: slices.Clone(d.links), addrs: d.addrs, routes: d.routes, neighs: d.neighs,
		proxies: d.proxies, fdb: d.fdb}
	put := func(l netlink.Link, err error, gone func(netlink.Link) bool) error {
		if err != nil && !nsutil.IsLinkNotFound(err) {
			return fmt.Errorf("read link in netns %q: %w", state.NSLabel(state.NodeNS), err)
		}
		fresh.links = slices.DeleteFunc(fresh.links, gone)
		if err == nil {
			idx := l.Attrs().Index
			fresh.links = slices.DeleteFunc(fresh.links, func(o netlink.Link) bool { return o.Attrs().Index == idx })
			fresh.links = append(fresh.links, l)
		}
		return nil
	}
	for idx := range stale.index {
		l, err := h.LinkByIndex(idx)
		if err := put(l, err, func(o netlink.Link) bool { return o.Attrs().Index == idx }); err != nil {
			return nil, err
		}
	}
	for name := range stale.name {
		l, err := h.LinkByName(name)
		if err := put(l, err, func(o netlink.Link) bool { return o.Attrs().Name == name }); err != nil {
			return nil, err
		}
	}
	if stale.rest {
		if err := dumpRest(h, fresh, state.NodeNS, node); err != nil {
			return nil, err
		}
	}
	return fresh, nil
}

// dumpRest fills d with everything but its links (already there: the
// FDB is read per VXLAN link).
func dumpRest(h *netlink.Handle, d *nsDump, ns, node string) error {
	d.fdb = map[int][]netlink.Neigh{}
	var err error
	if d.addrs, err = nsutil.RetryDump(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_V4) }); err != nil {
		return fmt.Errorf("list addresses in netns %q: %w", state.NSLabel(ns), err)
	}
	if d.routes, err = nsutil.RetryDump(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	}); err != nil {
		return fmt.Errorf("list routes in netns %q: %w", state.NSLabel(ns), err)
	}
	if d.neighs, err = nsutil.RetryDump(func() ([]netlink.Neigh, error) { return h.NeighList(0, netlink.FAMILY_V4) }); err != nil {
		return fmt.Errorf("list neighbours in netns %q: %w", state.NSLabel(ns), err)
	}
	if ns == state.NodeNS {
		if d.proxies, err = nsutil.RetryDump(func() ([]netlink.Neigh, error) { return h.NeighProxyList(0, netlink.FAMILY_V4) }); err != nil {
			return fmt.Errorf("list proxy neighbours in netns %q: %w", state.NSLabel(ns), err)
		}
	}
	for _, l := range d.links {
		if _, ok := state.OwnerOf(node, l.Attrs().Alias); !ok || l.Type() != state.LinkVXLAN {
			continue
		}
		idx := l.Attrs().Index
		if d.fdb[idx], err = nsutil.RetryDump(func() ([]netlink.Neigh, error) { return h.NeighList(idx, unix.AF_BRIDGE) }); err != nil {
			return fmt.Errorf("list fdb of %s in netns %q: %w", l.Attrs().Name, state.NSLabel(ns), err)
		}
	}
	return nil
}

// linkObject copies the attributes netreconcile sets from a netlink link.
func linkObject(ns string, l netlink.Link, byIndex map[int]string) *state.Link {
	a := l.Attrs()
	s := &state.Link{NS: ns, Name: a.Name, Type: l.Type(), Alias: a.Alias, MTU: a.MTU,
		Up: a.Flags&net.FlagUp != 0, Index: a.Index}
	if a.MasterIndex != 0 {
		s.Master = byIndex[a.MasterIndex]
	}
	if a.HardwareAddr != nil {
		s.HWAddr = a.HardwareAddr.String()
	}
	s.NoARP = a.RawFlags&unix.IFF_NOARP != 0
	kind := kinds.Of(s.Type)
	if kind != nil && kind.Child && a.NetNsID < 0 && a.ParentIndex != 0 {
		s.Parent = byIndex[a.ParentIndex] // in ns; a parent elsewhere is resolved later
	}
	if kind != nil && kind.Parse != nil {
		kind.Parse(l, s, byIndex)
	}
	return s
}

// links sorts a namespace's links into owned objects (except veth pod
// ends, which belong to their host end) and foreign names.
func (o *observer) links(ns string, links []netlink.Link) (byIndex map[int]string, ours map[int]bool, owners map[string]string) {
	byIndex, ours, owners = map[int]string{}, map[int]bool{}, map[string]string{}
	for _, l := range links {
		byIndex[l.Attrs().Index] = l.Attrs().Name
	}
	for _, l := range links {
		a := l.Attrs()
		if ns != state.NodeNS && a.Name == "lo" {
			// A namespace's loopback carries the mark of the namespace
			// (see createNetns), not of a link of ours: never deleted.
			_, o.netnsMarked = state.OwnerOf(o.cfg.Node, a.Alias)
			continue
		}
		owner, ok := state.OwnerOf(o.cfg.Node, a.Alias)
		if !ok && a.Alias == "" {
			owner, ok = o.pending[state.LinkKey(ns, a.Name)]
		}
		if !ok {
			o.obs.Foreign.Links[state.LinkKey(ns, a.Name)] = l.Type()
			if v, isVXLAN := l.(*netlink.Vxlan); isVXLAN {
				o.obs.Foreign.VXLAN[state.LinkKey(ns, a.Name)] = fmt.Sprintf("%d/%d", v.VxlanId, v.Port)
			}
			continue
		}
		ours[a.Index] = true
		owners[a.Name] = owner
		if ns != state.NodeNS && l.Type() == state.LinkVeth {
			continue
		}
		o.obs.Owned.Put(linkObject(ns, l, byIndex))
	}
	return byIndex, ours, owners
}

// rest sorts addresses, routes and neighbours of namespace ns. Objects
// on owned links, and routes with our protocol, are ours.
func (o *observer) rest(ns string, d *nsDump, byIndex map[int]string, ours map[int]bool, owners map[string]string) {
	for _, a := range d.addrs {
		p, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		p = p.Unmap()
		bits, _ := a.Mask.Size()
		link := byIndex[a.LinkIndex]
		if ns == state.NodeNS && link == o.cfg.Uplink {
			o.obs.Uplink.Addrs = append(o.obs.Uplink.Addrs, netip.PrefixFrom(p, bits))
		}
		if !ours[a.LinkIndex] {
			o.obs.Foreign.Addrs[state.AddrKey(ns, p)] = state.LinkKey(ns, link)
			continue
		}
		o.obs.Owned.Put(&state.Addr{NS: ns, Link: link, Prefix: netip.PrefixFrom(p, bits), OwnerK: owners[link]})
	}
	for _, r := range d.routes {
		obj := routeObject(ns, r, byIndex)
		if int(r.Protocol) != state.RouteProtocol {
			if r.Protocol != unix.RTPROT_KERNEL { // connected routes follow addresses
				o.obs.Foreign.Routes[obj.Key()] = int(r.Protocol)
			}
			continue
		}
		obj.OwnerK = owners[obj.Dev]
		if obj.OwnerK == "" && ns == state.NodeNS {
			obj.OwnerK = "routing" // a direct route to a peer, on the uplink
		}
		o.obs.Owned.Put(obj)
	}
	for _, n := range d.neighs {
		if !ours[n.LinkIndex] || n.State&netlink.NUD_PERMANENT == 0 || n.HardwareAddr == nil {
			continue
		}
		ip, _ := netip.AddrFromSlice(n.IP)
		link := byIndex[n.LinkIndex]
		o.obs.Owned.Put(&state.Neigh{NS: ns, Link: link, IP: ip.Unmap(), MAC: n.HardwareAddr.String(), OwnerK: owners[link]})
	}
	for _, n := range d.proxies {
		if !ours[n.LinkIndex] {
			continue
		}
		ip, _ := netip.AddrFromSlice(n.IP)
		link := byIndex[n.LinkIndex]
		o.obs.Owned.Put(&state.Neigh{NS: ns, Link: link, IP: ip.Unmap(), Proxy: true, OwnerK: owners[link]})
	}
	for idx, fdb := range d.fdb {
		link := byIndex[idx]
		for _, n := range fdb {
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok || n.HardwareAddr == nil || n.State&netlink.NUD_PERMANENT == 0 {
				continue
			}
			o.obs.Owned.Put(&state.Neigh{NS: ns, Link: link, IP: ip.Unmap(), MAC: n.HardwareAddr.String(),
				Bridge: true, OwnerK: owners[link]})
		}
	}
}

func routeObject(ns string, r netlink.Route, byIndex map[int]string) *state.Route {
	obj := &state.Route{NS: ns, Dev: byIndex[r.LinkIndex], MTU: r.MTU, Scope: "global"}
	if r.Dst == nil {
		obj.Dst = netip.MustParsePrefix("0.0.0.0/0")
	} else if ip, ok := netip.AddrFromSlice(r.Dst.IP); ok {
		bits, _ := r.Dst.Mask.Size()
		obj.Dst = netip.PrefixFrom(ip.Unmap(), bits)
	}
	if ip, ok := netip.AddrFromSlice(r.Gw); ok {
		obj.Gw = ip.Unmap()
	}
	if ip, ok := netip.AddrFromSlice(r.Src); ok {
		obj.Src = ip.Unmap()
	}
	obj.OnLink = r.Flags&unix.RTNH_F_ONLINK != 0
	if r.Scope == netlink.SCOPE_LINK {
		obj.Scope = "link"
	}
	return obj
}

// node observes the node namespace, its sysctls, and matches host veth
// ends to the pod ends seen before.
func (o *observer) node(d *nsDump, sys *nodeSysctls, scope *Scope) error {
	byIndex, ours, owners := o.links(state.NodeNS, d.links)
	for _, p := range o.parents {
		p.link.Parent = byIndex[p.index]
	}
	o.obs.Uplink.Name = o.cfg.Uplink
	for _, l := range d.links {
		a := l.Attrs()
		if a.Name == o.cfg.Uplink {
			o.obs.Uplink.Found, o.obs.Uplink.Index, o.obs.Uplink.MTU = true, a.Index, a.MTU
		}
		if !ours[a.Index] || l.Type() != state.LinkVeth {
			continue
		}
		obj, ok := o.obs.Owned.Get(state.KindLink, state.LinkKey(state.NodeNS, a.Name)).(*state.Link)
		if !ok {
			continue // the second end of a pair in this namespace, taken already
		}
		obj.PeerNS, obj.PeerName = "?", "?"
		end, ok := o.ends[a.Index]
		if !ok {
			o.samePair(obj, l, d.links, byIndex)
			continue
		}
		obj.PeerNS, obj.PeerName, obj.PeerMAC = end.ns, end.name, end.mac
		delete(o.obs.Foreign.Links, state.LinkKey(end.ns, end.name))
		if end.alias != obj.Alias {
			obj.Alias = "" // an update marks both ends
		}
		obj.Up = obj.Up && end.up
		if end.mtu != obj.MTU {
			obj.MTU = 0 // the ends disagree: an update sets both
		}
	}
	if err := o.proxyARP(sys); err != nil {
		return err
	}
	if err := o.linkSysctls(scope, sys); err != nil {
		return err
	}
	o.rest(state.NodeNS, d, byIndex, ours, owners)
	o.dp.putInto(o.obs.Owned)
	return o.sysctls(scope, sys)
}

// samePair completes obj, the veth l, when its peer is in the node
// namespace too (the service device): the pair is one Link, named by the
// end whose name sorts first, as the file's objects name it; the other
// end is not an object of its own.
func (o *observer) samePair(obj *state.Link, l netlink.Link, links []netlink.Link, byIndex map[int]string) {
	a := l.Attrs()
	peerName, ok := byIndex[a.ParentIndex]
	if a.NetNsID >= 0 || a.ParentIndex == 0 || !ok {
		return
	}
	var peer netlink.Link
	for _, p := range links {
		if p.Attrs().Index == a.ParentIndex {
			peer = p
		}
	}
	if peer == nil || peer.Type() != state.LinkVeth || peer.Attrs().ParentIndex != a.Index {
		return
	}
	if peerName < a.Name {
		o.obs.Owned.Remove(state.KindLink, obj.Key()) // the peer's object holds the pair
		return
	}
	pa := peer.Attrs()
	o.obs.Owned.Remove(state.KindLink, state.LinkKey(state.NodeNS, peerName))
	delete(o.obs.Foreign.Links, state.LinkKey(state.NodeNS, peerName))
	obj.PeerNS, obj.PeerName = state.NodeNS, peerName
	if pa.Alias != obj.Alias {
		obj.Alias = "" // an update marks both ends
	}
	obj.Up = obj.Up && pa.Flags&net.FlagUp != 0
	obj.NoARP = obj.NoARP && pa.RawFlags&unix.IFF_NOARP != 0
	if pa.MTU != obj.MTU {
		obj.MTU = 0
	}
}

// proxyARP reads proxy_arp of owned node links in one namespace switch.
func (o *observer) proxyARP(sys *nodeSysctls) error {
	var links, missing []*state.Link // missing: not read since the link was (re)made or changed
	for _, obj := range o.obs.Owned.Of(state.KindLink) {
		if l := obj.(*state.Link); l.NS == state.NodeNS && (l.Type == state.LinkVeth || l.Type == state.LinkBridge) {
			links = append(links, l)
			if v, ok := sys.proxyARP[l.Name]; !ok || v.index != l.Index {
				missing = append(missing, l)
			}
		}
	}
	if len(missing) > 0 {
		// A few links: their sysctls; many: two dumps for all.
		err := nsutil.Do(o.cfg.NodeNetns, func() error {
			if len(missing) > maxOneByOne {
				on, err := proxyARPByIndex()
				if err != nil {
					return err
				}
				for _, l := range missing {
					sys.proxyARP[l.Name] = indexed[bool]{l.Index, on[l.Index]}
				}
				return nil
			}
			for _, l := range missing {
				on, err := proxyARPOf(l.Name)
				if err != nil {
					return err
				}
				sys.proxyARP[l.Name] = indexed[bool]{l.Index, on}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read proxy_arp of node links: %w", err)
		}
	}
	for _, l := range links {
		l.ProxyARP = sys.proxyARP[l.Name].value
	}
	return nil
}

// linkSysctls reads the per-interface sysctls the scope names for owned
// node links, in one namespace switch. Only those keys are read: the
// others are not compared.
func (o *observer) linkSysctls(scope *Scope, sys *nodeSysctls) error {
	type read struct {
		have *state.Link
		key  string
	}
	var missing []read // not read since the link was (re)made or changed
	for name, keys := range scope.LinkSysctls {
		have, _ := o.obs.Owned.Get(state.KindLink, state.LinkKey(state.NodeNS, name)).(*state.Link)
		if have == nil {
			continue
		}
		have.Sysctls = map[string]string{}
		for _, k := range keys {
			v, ok := sys.linkSysctls[have.Name+"/"+k]
			if !ok || v.index != have.Index {
				missing = append(missing, read{have, k})
			}
			have.Sysctls[k] = v.value
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return nsutil.Do(o.cfg.NodeNetns, func() error {
		for _, r := range missing {
			b, err := os.ReadFile(state.SysctlPath(r.have.Name, r.key))
			if err != nil {
				return fmt.Errorf("read %s of %s: %w", r.key, r.have, err)
			}
			v := strings.TrimSpace(string(b))
			sys.linkSysctls[r.have.Name+"/"+r.key], r.have.Sysctls[r.key] = indexed[string]{r.have.Index, v}, v
		}
		return nil
	})
}

// sysctls reads the node sysctls the scope names and those that
// netreconcile changed before (recorded with their original value). Their
// owner is "node": the engine gives the desired ones theirs.
func (o *observer) sysctls(scope *Scope, sys *nodeSysctls) error {
	names := map[string]string{}
	for _, name := range scope.Sysctls {
		names[name] = state.NodeOwner
	}
	recorded, warns, err := o.cfg.Records.RecordedSysctls()
	if err != nil {
		return err
	}
	o.warn(warns...)
	for name := range recorded {
		if _, ok := names[name]; !ok {
			names[name] = state.NodeOwner
		}
	}
	for name, owner := range names {
		v, ok := sys.sysctls[name]
		if !ok {
			if v, err = nsutil.ReadSysctl(o.cfg.NodeNetns, name); err != nil {
				return err
			}
			sys.sysctls[name] = v
		}
		o.obs.Owned.Put(&state.Sysctl{NS: state.NodeNS, Name: name, Value: v, OwnerK: owner})
	}
	return nil
}

// linkIndex maps the dump's link names to indexes and back.
func (d *nsDump) linkIndex() (names map[string]int, byIndex map[int]string) {
	names, byIndex = make(map[string]int, len(d.links)), make(map[int]string, len(d.links))
	for _, l := range d.links {
		names[l.Attrs().Name], byIndex[l.Attrs().Index] = l.Attrs().Index, l.Attrs().Name
	}
	return names, byIndex
}
