// Package apply executes a plan on the node's kernel: each step says
// exactly what to do, and apply does no diffing.
package apply

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/drivers/kinds"
	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/masq"
	"github.com/netreconcile/netreconcile/reconcile/internal/handles"
	"github.com/netreconcile/netreconcile/reconcile/internal/pool"
	"github.com/netreconcile/netreconcile/reconcile/internal/records"
	"github.com/netreconcile/netreconcile/reconcile/plan"
	"github.com/netreconcile/netreconcile/state"
)

// Config says which node a plan is applied to and where.
type Config struct {
	Node      string // node name in the file
	NodeNetns string // the node's host namespace: "" (current), a name, or a path
	BPFFS     string // pin directory of this node
	// AttachMode says how new datapath attachments are made (see
	// datapath.Datapath.SetAttachMode).
	AttachMode string
	Records    records.Dir
}

// applier executes a plan's steps. It does no diffing: each step says
// exactly what to do.
type applier struct {
	cfg *Config
	h   *handles.Set
	log logr.Logger
	// idx caches ifindexes of links this pass created or looked up, by
	// link key, saving a request per address, neighbour and route. It is
	// shared by the pass's workers: a pod's later steps may run on another
	// worker than the one that made its links.
	idx *ifindexes
	// dp is the node's datapath, opened once per apply and shared.
	dp *dpHolder
}

// applyWorkers bounds the pods whose changes run at once.
const applyWorkers = 4

// Apply executes p. Deletions run first, in order; then changes to
// node-wide objects (a bridge, tunnel routes); then each pod's creations
// and updates, in order within the pod, with several pods at once: pods
// never depend on each other, and most of the cost is syscalls and
// namespace switches, which overlap well. One exception: while a datapath
// step's programs are being verified (datapath.OpenMapsWith), the node's
// later steps (map entries, its attachments, addresses and routes) run
// beside the pods' steps up to their first attachment.
//
// It stops at the first kernel refusal (other pods in flight finish
// their current change) and returns an error naming the object and the
// kernel's reason; what was applied stays applied, and the next apply
// resumes from the state it then observes.
func Apply(ctx context.Context, cfg *Config, p *plan.Plan, log logr.Logger) (int, error) {
	return From(ctx, cfg, p, log, 0)
}

// From is Apply for a part of a plan whose earlier parts made done
// changes (they count towards afterChange).
func From(ctx context.Context, cfg *Config, p *plan.Plan, log logr.Logger, done int) (int, error) {
	var serial []plan.Change
	var implied []*state.Link
	groups := map[string][]plan.Change{}
	var owners []string
	for _, c := range p.Steps() {
		switch {
		case c.ImpliedBy != "":
			if l, ok := c.Observed.(*state.Link); ok && l.NS == state.NodeNS {
				implied = append(implied, l)
			}
		case c.Action == plan.Delete || !strings.HasPrefix(c.Owner, "pod/"):
			serial = append(serial, c)
		default:
			if groups[c.Owner] == nil {
				owners = append(owners, c.Owner)
			}
			groups[c.Owner] = append(groups[c.Owner], c)
		}
	}
	var applied atomic.Int64
	applied.Store(int64(done))
	count := func() int { return int(applied.Load()) - done }
	dp := &dpHolder{pinDir: cfg.BPFFS, mode: cfg.AttachMode}
	defer dp.close()
	idx := &ifindexes{m: map[string]int{}}
	a := newApplier(cfg, log, dp, idx)
	defer a.h.Close()
	newWorker := func() *applier { return newApplier(cfg, log, dp, idx) }
	head, tail := cutAfterDatapath(serial)
	if err := a.run(ctx, head, &applied); err != nil {
		return count(), err
	}
	if dp.loadingNow() {
		// The programs are being verified (seconds of CPU for a new
		// build): meanwhile the node's other steps run, and every pod
		// is made up to its first attachment.
		err := beside(ctx, func(ctx context.Context) error { return a.run(ctx, tail, &applied) },
			func(ctx context.Context) error { return runPodHeads(ctx, owners, groups, newWorker, &applied) })
		if err != nil {
			return count(), err
		}
		tail = nil
	}
	if err := a.run(ctx, tail, &applied); err != nil {
		return count(), err
	}
	if err := runPods(ctx, owners, groups, newWorker, &applied); err != nil {
		return count(), err
	}
	if err := dp.wait(); err != nil {
		return count(), err
	}
	return count(), a.settle(implied)
}

// runPodHeads runs the steps of each pod up to its first attachment,
// leaving the others in groups. Each pod's steps keep their order, and a
// pod gets no address before its programs are attached.
func runPodHeads(ctx context.Context, owners []string, groups map[string][]plan.Change, newWorker func() *applier,
	applied *atomic.Int64) error {
	heads := make(map[string][]plan.Change, len(groups))
	for _, o := range owners {
		heads[o], groups[o] = cutAtPrograms(groups[o])
	}
	return runPods(ctx, owners, heads, newWorker, applied)
}

// beside runs node and pods at once. The first failure stops the other
// (before its next change); only the failures that did not come from
// that stop are returned.
func beside(ctx context.Context, node, pods func(context.Context) error) error {
	inner, stop := context.WithCancel(ctx)
	defer stop()
	nodeErr := make(chan error, 1)
	go func() {
		err := node(inner)
		if err != nil {
			stop()
		}
		nodeErr <- err
	}()
	err := pods(inner)
	if err != nil {
		stop()
	}
	var out []error
	for _, e := range append(flatten(err), flatten(<-nodeErr)...) {
		if ctx.Err() != nil || !errors.Is(e, context.Canceled) {
			out = append(out, e)
		}
	}
	return errors.Join(out...)
}

// flatten lists the errors an errors.Join holds (err itself otherwise).
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// cutAfterDatapath splits the node's steps cs after the one that creates
// or updates the datapath (which starts loading its programs). What
// follows it are the datapath's entries and attachments and the node's
// addresses and routes, which no pod's links and namespace depend on.
func cutAfterDatapath(cs []plan.Change) (through, after []plan.Change) {
	i := slices.IndexFunc(cs, func(c plan.Change) bool {
		_, ok := c.Desired.(*state.Datapath)
		return ok && c.Action != plan.Delete
	})
	if i < 0 {
		return cs, nil
	}
	return cs[:i+1], cs[i+1:]
}

// cutAtPrograms splits cs before its first step that needs the datapath's
// programs (an attachment made or changed).
func cutAtPrograms(cs []plan.Change) (before, from []plan.Change) {
	i := slices.IndexFunc(cs, func(c plan.Change) bool {
		_, ok := c.Desired.(*state.Attach)
		return ok && c.Action != plan.Delete
	})
	if i < 0 {
		return cs, nil
	}
	return cs[:i], cs[i:]
}

// runPods runs the changes of each pod, in owners' order, applyWorkers
// pods at a time, each worker with an applier of its own (its handles
// and ifindexes are reused from pod to pod). After a failure no pod
// starts; those in flight finish their current change. Every failure is
// returned.
func runPods(ctx context.Context, owners []string, groups map[string][]plan.Change, newWorker func() *applier,
	applied *atomic.Int64) error {
	return pool.Each(owners, applyWorkers, newWorker, func(w *applier) { w.h.Close() },
		func(w *applier, owner string) error { return w.run(ctx, groups[owner], applied) })
}

func newApplier(cfg *Config, log logr.Logger, dp *dpHolder, idx *ifindexes) *applier {
	return &applier{cfg: cfg, h: handles.New(cfg.NodeNetns), log: log, idx: idx, dp: dp}
}

// run executes changes in order, stopping at the first error. A run of
// at least minServiceBatch services is written at once (SetServices).
func (a *applier) run(ctx context.Context, cs []plan.Change, applied *atomic.Int64) error {
	for i := 0; i < len(cs); {
		c := cs[i]
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stopped before %s %s: %w", c.Action, describe(c), err)
		}
		if n := serviceRun(cs[i:]); n >= minServiceBatch {
			if err := a.setServices(cs[i : i+n]); err != nil {
				return fmt.Errorf("create or update %d services (%s to %s): %w", n, c.Key, cs[i+n-1].Key, err)
			}
			for _, c := range cs[i : i+n] {
				a.applied(c, applied)
			}
			i += n
			continue
		}
		if err := a.step(c); err != nil {
			return fmt.Errorf("%s %s: %w", c.Action, describe(c), err)
		}
		a.applied(c, applied)
		i++
	}
	return nil
}

// applied counts and logs change c once its last part is applied.
func (a *applier) applied(c plan.Change, applied *atomic.Int64) {
	if c.More() {
		return
	}
	afterChange(applied.Add(1))
	a.log.Info("applied", "action", string(c.Action), "kind", c.Kind, "key", c.Key, "owner", c.Owner)
}

// settle waits briefly for host veth ends whose peer namespace was
// deleted: the kernel removes them once the namespace is released, which
// is fast in bulk. A namespace that a process or socket still holds is
// not released, so what is left after the wait is deleted explicitly.
func (a *applier) settle(links []*state.Link) error {
	if len(links) == 0 {
		return nil
	}
	h, err := a.h.Get(state.NodeNS)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(time.Second)
	for {
		var left []*state.Link
		for _, l := range links {
			if _, err := h.LinkByName(l.Name); !nsutil.IsLinkNotFound(err) {
				left = append(left, l)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			for _, l := range left {
				if err := a.deleteLink(l); err != nil {
					return fmt.Errorf("delete %s: %w", l, err)
				}
				a.log.Info("applied", "action", "delete", "kind", "link", "key", l.Key(), "note", "its namespace is still held open")
			}
			return nil
		}
		links = left
		time.Sleep(10 * time.Millisecond)
	}
}

func describe(c plan.Change) string {
	if c.Desired != nil {
		return fmt.Sprint(c.Desired)
	}
	return fmt.Sprint(c.Observed)
}

func (a *applier) step(c plan.Change) error {
	obj := c.Desired
	if c.Action == plan.Delete {
		obj = c.Observed
	}
	switch o := obj.(type) {
	case *state.Datapath, *state.Service, *state.Endpoint, *state.Attach,
		*state.PolicyIdentity, *state.PodPolicy, *state.PolicyRevision:
		return a.datapathStep(c)
	case *state.Netns:
		if c.Action == plan.Delete {
			return a.deleteNetns(o)
		}
		return a.createNetns(o)
	case *state.Link:
		switch c.Action {
		case plan.Delete:
			return a.deleteLink(o)
		case plan.Update:
			return a.updateLink(o, c.Changes)
		default:
			return a.createLink(o)
		}
	case *state.Sysctl:
		if c.Action == plan.Delete {
			return a.restoreSysctl(o)
		}
		return a.setSysctl(o)
	case *state.Addr:
		return a.addr(o, c.Action == plan.Delete)
	case *state.Neigh:
		return a.neigh(o, c.Action == plan.Delete)
	case *state.Route:
		return a.route(o, c.Action == plan.Delete)
	case *state.Masquerade:
		if c.Action == plan.Delete {
			return masq.Remove(a.cfg.NodeNetns)
		}
		return masq.Apply(a.cfg.NodeNetns, o)
	}
	return fmt.Errorf("unknown object %T", obj)
}

func (a *applier) createNetns(n *state.Netns) error {
	if !n.Owned {
		return fmt.Errorf("netns path %s does not exist (a path is used, never created)", n.Ref)
	}
	// Record before creating, so a crash in between leaves a record of
	// an absent namespace rather than an unrecorded one.
	if err := a.cfg.Records.RecordNetns(n.Ref, n.Owner()); err != nil {
		return err
	}
	if !nsutil.Exists(n.Ref) {
		// Marked before it is named: a crash never leaves a namespace
		// of ours that does not show it (see records.go).
		if err := nsutil.CreateMarked(n.Ref, state.Alias(a.cfg.Node, n.Owner())); err != nil {
			return err
		}
	}
	h, err := a.h.Get(n.Ref)
	if err != nil {
		return err
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("loopback: LinkByName: %w", err)
	}
	return called("loopback: LinkSetUp", h.LinkSetUp(lo))
}

func (a *applier) deleteNetns(n *state.Netns) error {
	a.h.Forget(n.Ref)
	prefix := state.LinkKey(n.Ref, "")
	a.idx.dropPrefix(prefix)
	if n.Owned {
		if err := nsutil.Delete(n.Ref); err != nil {
			return err
		}
	}
	return a.cfg.Records.ForgetNetns(n.Ref)
}

// createLink creates l, marks it (and a veth's pod end) as
// netreconcile's and sets it up as l says. The kernel ignores an alias in
// the create request, so the link exists unmarked until LinkSetAlias: a
// pending record written first lets observe claim such a link after a
// crash in between.
func (a *applier) createLink(l *state.Link) error {
	h, err := a.h.Get(l.NS)
	if err != nil {
		return err
	}
	if err := a.cfg.Records.SetPending(l.Key(), l.Owner()); err != nil {
		return err
	}
	if err := a.addLink(h, l); err != nil {
		_ = a.cfg.Records.ClearPending(l.Key())
		return err
	}
	created, err := h.LinkByName(l.Name)
	if err != nil {
		return fmt.Errorf("LinkByName %s after LinkAdd: %w", l.Name, err)
	}
	a.idx.set(l.Key(), created.Attrs().Index)
	if err := h.LinkSetAlias(created, l.Alias); err != nil {
		return fmt.Errorf("LinkSetAlias: %w", err)
	}
	if err := a.configureLink(h, created, l); err != nil {
		return err
	}
	if l.Type == state.LinkVeth {
		if err := a.markPeer(l); err != nil {
			return err
		}
	}
	if l.Up {
		if err := h.LinkSetUp(created); err != nil {
			return fmt.Errorf("LinkSetUp: %w", err)
		}
	}
	return a.cfg.Records.ClearPending(l.Key())
}

// addLink asks the kernel for l, as its kind builds the request. A child
// of a node device in a pod namespace (macvlan, ipvlan) is created there
// directly, through the node namespace's handle (where its parent is)
// with the pod's namespace as its target, so it never exists under its
// name in the node namespace.
func (a *applier) addLink(h *netlink.Handle, l *state.Link) error {
	kind := kinds.Of(l.Type)
	if kind == nil {
		return fmt.Errorf("link type %q is not supported", l.Type)
	}
	la := netlink.NewLinkAttrs()
	la.Name, la.MTU = l.Name, l.MTU
	if l.HWAddr != "" {
		mac, err := net.ParseMAC(l.HWAddr)
		if err != nil {
			return fmt.Errorf("MAC: %w", err)
		}
		la.HardwareAddr = mac
	}
	var refs drivers.LinkRefs
	if kind.Parent {
		_, parent, err := a.linkIndex(state.NodeNS, l.Parent)
		if err != nil {
			return fmt.Errorf("parent: %w", err)
		}
		refs.Parent = parent
	}
	if l.Type == state.LinkVeth {
		fd, err := a.h.FD(l.PeerNS)
		if err != nil {
			return fmt.Errorf("peer namespace: %w", err)
		}
		refs.PeerNS = netlink.NsFd(int(fd))
	}
	link, err := kind.New(l, la, refs)
	if err != nil {
		return err
	}
	if kind.Child && l.NS != state.NodeNS {
		fd, err := a.h.FD(l.NS)
		if err != nil {
			return err
		}
		link.Attrs().Namespace = netlink.NsFd(int(fd))
		if h, err = a.h.Get(state.NodeNS); err != nil {
			return err
		}
	}
	if err := h.LinkAdd(link); err != nil {
		return fmt.Errorf("LinkAdd: %w", err)
	}
	return nil
}

// configureLink sets what l says of the created link beyond its create
// request: its master, proxy ARP and per-interface sysctls.
func (a *applier) configureLink(h *netlink.Handle, created netlink.Link, l *state.Link) error {
	if l.Master != "" {
		if err := a.setMaster(h, created, l.Master); err != nil {
			return err
		}
	}
	if l.ProxyARP {
		if err := a.proxyARP(l, true); err != nil {
			return err
		}
	}
	if l.NoARP {
		if err := h.LinkSetARPOff(created); err != nil {
			return fmt.Errorf("LinkSetARPOff: %w", err)
		}
	}
	if len(l.Sysctls) > 0 {
		keys := make([]string, 0, len(l.Sysctls))
		for k := range l.Sysctls {
			keys = append(keys, k)
		}
		return a.linkSysctls(l, keys...)
	}
	return nil
}

// markPeer marks the pod end of veth l as netreconcile's, and sets it up
// with l.
func (a *applier) markPeer(l *state.Link) error {
	ph, err := a.h.Get(l.PeerNS)
	if err != nil {
		return fmt.Errorf("peer %s: %w", l.PeerName, err)
	}
	peer, err := ph.LinkByName(l.PeerName)
	if err != nil {
		return fmt.Errorf("peer %s: LinkByName: %w", l.PeerName, err)
	}
	a.idx.set(state.LinkKey(l.PeerNS, l.PeerName), peer.Attrs().Index)
	if err := ph.LinkSetAlias(peer, l.Alias); err != nil {
		return fmt.Errorf("peer %s: LinkSetAlias: %w", l.PeerName, err)
	}
	if l.NoARP {
		if err := ph.LinkSetARPOff(peer); err != nil {
			return fmt.Errorf("peer %s: LinkSetARPOff: %w", l.PeerName, err)
		}
	}
	if l.Up {
		if err := ph.LinkSetUp(peer); err != nil {
			return fmt.Errorf("peer %s: LinkSetUp: %w", l.PeerName, err)
		}
	}
	return nil
}

// linkSysctls writes the per-interface sysctls keys of l (Link.Sysctls).
func (a *applier) linkSysctls(l *state.Link, keys ...string) error {
	return nsutil.Do(a.h.Ref(l.NS), func() error {
		for _, k := range keys {
			if err := os.WriteFile(state.SysctlPath(l.Name, k), []byte(l.Sysctls[k]), 0o644); err != nil {
				return fmt.Errorf("set %s: %w", k, err)
			}
		}
		return nil
	})
}

func (a *applier) setMaster(h *netlink.Handle, link netlink.Link, master string) error {
	if master == "" {
		return called("LinkSetNoMaster", h.LinkSetNoMaster(link))
	}
	m, err := h.LinkByName(master)
	if err != nil {
		return fmt.Errorf("master %s: LinkByName: %w", master, err)
	}
	return called("LinkSetMaster "+master, h.LinkSetMaster(link, m))
}

func (a *applier) proxyARP(l *state.Link, on bool) error {
	arp, delay := "0", "80" // the kernel's defaults
	if on {
		arp, delay = "1", "0"
	}
	err := nsutil.Do(a.h.Ref(l.NS), func() error {
		if err := os.WriteFile("/proc/sys/net/ipv4/neigh/"+l.Name+"/proxy_delay", []byte(delay), 0o644); err != nil {
			return err
		}
		return os.WriteFile("/proc/sys/net/ipv4/conf/"+l.Name+"/proxy_arp", []byte(arp), 0o644)
	})
	return called("set proxy ARP", err)
}

func (a *applier) updateLink(l *state.Link, changes []state.Change) error {
	h, err := a.h.Get(l.NS)
	if err != nil {
		return err
	}
	link, err := h.LinkByName(l.Name)
	if err != nil {
		return fmt.Errorf("LinkByName: %w", err)
	}
	var peer netlink.Link
	var ph *netlink.Handle
	if l.Type == state.LinkVeth {
		if ph, err = a.h.Get(l.PeerNS); err != nil {
			return fmt.Errorf("peer %s: %w", l.PeerName, err)
		}
		if peer, err = ph.LinkByName(l.PeerName); err != nil {
			return fmt.Errorf("peer %s: LinkByName: %w", l.PeerName, err)
		}
	}
	for _, c := range changes {
		switch c.Name {
		case "mtu":
			err = called("LinkSetMTU", h.LinkSetMTU(link, l.MTU))
			if err == nil && peer != nil {
				err = called("peer: LinkSetMTU", ph.LinkSetMTU(peer, l.MTU))
			}
		case "up":
			if l.Up {
				err = called("LinkSetUp", h.LinkSetUp(link))
				if err == nil && peer != nil {
					err = called("peer: LinkSetUp", ph.LinkSetUp(peer))
				}
			} else {
				err = called("LinkSetDown", h.LinkSetDown(link))
			}
		case "mac":
			var mac net.HardwareAddr
			if mac, err = net.ParseMAC(l.HWAddr); err == nil {
				err = called("LinkSetHardwareAddr", h.LinkSetHardwareAddr(link, mac))
			}
		case "peer_mac":
			var mac net.HardwareAddr
			if mac, err = net.ParseMAC(l.PeerMAC); err == nil {
				err = called("peer: LinkSetHardwareAddr", ph.LinkSetHardwareAddr(peer, mac))
			}
		case "master":
			err = a.setMaster(h, link, l.Master)
		case "alias":
			err = called("LinkSetAlias", h.LinkSetAlias(link, l.Alias))
			if err == nil && peer != nil {
				err = called("peer: LinkSetAlias", ph.LinkSetAlias(peer, l.Alias))
			}
		case "proxy_arp":
			err = a.proxyARP(l, l.ProxyARP)
		case "noarp":
			err = setNoARP(h, link, l.NoARP)
			if err == nil && peer != nil {
				err = setNoARP(ph, peer, l.NoARP)
			}
		default:
			if _, ok := l.Sysctls[c.Name]; ok {
				err = a.linkSysctls(l, c.Name)
				break
			}
			err = fmt.Errorf("attribute %s cannot change in place", c.Name)
		}
		if err != nil {
			return fmt.Errorf("set %s: %w", c.Name, err)
		}
	}
	return nil
}

// setNoARP sets or clears IFF_NOARP on link.
func setNoARP(h *netlink.Handle, link netlink.Link, on bool) error {
	if on {
		return called("LinkSetARPOff", h.LinkSetARPOff(link))
	}
	return called("LinkSetARPOn", h.LinkSetARPOn(link))
}

func (a *applier) deleteLink(l *state.Link) error {
	a.idx.drop(l.Key())
	if l.Type == state.LinkVeth {
		a.idx.drop(state.LinkKey(l.PeerNS, l.PeerName))
	}
	h, err := a.h.Get(l.NS)
	if err != nil {
		if l.NS != state.NodeNS && !nsutil.Exists(l.NS) {
			return nil
		}
		return err
	}
	link, err := h.LinkByName(l.Name)
	if nsutil.IsLinkNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("LinkByName: %w", err)
	}
	return called("LinkDel", h.LinkDel(link))
}

func (a *applier) setSysctl(s *state.Sysctl) error {
	err := a.cfg.Records.RecordSysctl(s.Name, func() (string, error) { return nsutil.ReadSysctl(a.cfg.NodeNetns, s.Name) })
	if err != nil {
		return err
	}
	return nsutil.WriteSysctl(a.cfg.NodeNetns, s.Name, s.Value)
}

func (a *applier) restoreSysctl(s *state.Sysctl) error {
	orig, err := a.cfg.Records.SysctlOriginal(s.Name)
	if err != nil {
		return err
	}
	if err := nsutil.WriteSysctl(a.cfg.NodeNetns, s.Name, orig); err != nil {
		return err
	}
	return a.cfg.Records.ForgetSysctl(s.Name)
}

func (a *applier) linkIndex(ns, name string) (*netlink.Handle, int, error) {
	h, err := a.h.Get(ns)
	if err != nil {
		return nil, 0, err
	}
	if idx, ok := a.idx.get(state.LinkKey(ns, name)); ok {
		return h, idx, nil
	}
	l, err := h.LinkByName(name)
	if err != nil {
		return nil, 0, fmt.Errorf("link %s: LinkByName: %w", name, err)
	}
	a.idx.set(state.LinkKey(ns, name), l.Attrs().Index)
	return h, l.Attrs().Index, nil
}

// ifindexes maps link keys to ifindexes, for concurrent workers.
type ifindexes struct {
	mu sync.Mutex
	m  map[string]int
}

func (x *ifindexes) get(key string) (int, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	idx, ok := x.m[key]
	return idx, ok
}

func (x *ifindexes) set(key string, idx int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.m[key] = idx
}

func (x *ifindexes) drop(key string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.m, key)
}

// dropPrefix forgets every link whose key starts with prefix (those of a
// namespace).
func (x *ifindexes) dropPrefix(prefix string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for k := range x.m {
		if strings.HasPrefix(k, prefix) {
			delete(x.m, k)
		}
	}
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func (a *applier) addr(ad *state.Addr, del bool) error {
	h, idx, err := a.linkIndex(ad.NS, ad.Link)
	if err != nil {
		if del {
			return nil // the link is gone, and its addresses with it
		}
		return err
	}
	nl := &netlink.Addr{IPNet: ipNet(ad.Prefix), LinkIndex: idx}
	if del {
		if err := h.AddrDel(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: idx}}, nl); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("AddrDel: %w", err)
		}
		return nil
	}
	return called("AddrReplace", h.AddrReplace(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: idx}}, nl))
}

func (a *applier) neigh(n *state.Neigh, del bool) error {
	h, idx, err := a.linkIndex(n.NS, n.Link)
	if err != nil {
		if del {
			return nil
		}
		return err
	}
	if n.Proxy {
		nl := &netlink.Neigh{LinkIndex: idx, IP: n.IP.AsSlice(), Family: netlink.FAMILY_V4, Flags: netlink.NTF_PROXY}
		if del {
			if err := h.NeighDel(nl); err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("NeighDel: %w", err)
			}
			return nil
		}
		return called("NeighSet", h.NeighSet(nl))
	}
	mac, err := net.ParseMAC(n.MAC)
	if err != nil {
		return fmt.Errorf("MAC: %w", err)
	}
	nl := &netlink.Neigh{LinkIndex: idx, IP: n.IP.AsSlice(), HardwareAddr: mac, State: netlink.NUD_PERMANENT,
		Family: netlink.FAMILY_V4}
	if n.Bridge {
		nl.Family, nl.Flags = unix.AF_BRIDGE, netlink.NTF_SELF
	}
	if del {
		if err := h.NeighDel(nl); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("NeighDel: %w", err)
		}
		return nil
	}
	if n.Bridge {
		return called("NeighAppend", h.NeighAppend(nl))
	}
	return called("NeighSet", h.NeighSet(nl))
}

func (a *applier) route(r *state.Route, del bool) error {
	h, idx, err := a.linkIndex(r.NS, r.Dev)
	if err != nil {
		if del {
			return nil
		}
		return err
	}
	nl := &netlink.Route{Dst: ipNet(r.Dst), LinkIndex: idx, Protocol: state.RouteProtocol, Table: unix.RT_TABLE_MAIN,
		Scope: netlink.SCOPE_UNIVERSE, MTU: r.MTU}
	if r.Scope == "link" {
		nl.Scope = netlink.SCOPE_LINK
	}
	if r.Gw.IsValid() {
		nl.Gw = r.Gw.AsSlice()
	}
	if r.Src.IsValid() {
		nl.Src = r.Src.AsSlice()
	}
	if r.OnLink {
		nl.Flags = int(netlink.FLAG_ONLINK)
	}
	if del {
		if err := h.RouteDel(nl); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("RouteDel: %w", err)
		}
		return nil
	}
	return called("RouteReplace", h.RouteReplace(nl))
}

// called names the kernel call that returned err (nil: none).
func called(call string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", call, err)
}
