package desired

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/policy/compile"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// A watch pass plans a file that differs from the last one in an item or
// two. The services' backend lists and the policies' class table are most
// of what every node computes from the whole file (10,000 services and
// 50,000 pod classes at 1000 nodes); NewSharedFrom keeps the lists that
// cannot have changed and patches the table for the pods that did.

// NewSharedFrom is NewShared for r that keeps prev's backend lists of
// the namespaces where no pod changed between prev's file and r (a list
// depends only on its namespace's pods: their labels, addresses and
// ports), and takes over prev's compiled policies
// (compile.NewClusterFrom): prev must not be used afterwards. Only the
// other namespaces' pods are indexed. prev may be nil. The Shared it
// returns also carries its node's objects to the next pass (nodeCarry):
// it is for one node.
func NewSharedFrom(prev *Shared, r *spec.Resolved) *Shared {
	sh := NewShared(r)
	sh.carry = &nodeCarry{}
	if prev == nil {
		return sh
	}
	if prev.carry != nil {
		sh.carry.node, sh.carry.services, sh.carry.bySvc = prev.carry.node, prev.carry.services, prev.carry.bySvc
		if prev.r == r {
			sh.carry.last = prev.carry.last
		}
	}
	switch {
	case prev.policies == nil:
		return sh
	case prev.r == r:
		sh.policies, sh.dirty = prev.policies, map[string]bool{} // a drift pass: everything holds
	default:
		// The policies compare the pods (once for both: 50,000 at 1000
		// nodes).
		sh.policies = compile.NewClusterFrom(prev.policies, r)
		changed, ok := sh.policies.ChangedNamespaces()
		if !ok {
			return sh // built again: so is every list
		}
		sh.dirty = changed
	}
	prev.mu.Lock()
	sh.lists = prev.lists
	prev.mu.Unlock()
	if prev.r != r {
		for ns := range sh.dirty {
			delete(sh.lists, ns)
		}
		for _, n := range sh.lists {
			n.pods = nil // indexes in prev's pods
		}
	}
	return sh
}

// Carried is what a later NewSharedFrom needs of sh: its file, its
// backend lists, its compiled policies (whose class table a one-pod edit
// patches rather than builds again) and its node's objects, shared with
// sh, which is done with. A daemon keeps it between passes: it must not
// be used once a NewSharedFrom took it over.
func (sh *Shared) Carried() *Shared {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.policies.Compact()
	return &Shared{r: sh.r, policies: sh.policies, lists: sh.lists, carry: sh.carry}
}

// nodeCarry is what a daemon's passes hand on for its one node: the
// service entries built last, each kept by the next pass when all it
// holds is the same (a node holds every service of the cluster: a pass
// then allocates only the entries an edit changed), and the whole
// desired state with what it was built from (a pass that kernel events
// started, the file unchanged, builds nothing).
type nodeCarry struct {
	node     string
	services map[serviceRef]*state.Service
	bySvc    map[*spec.ResolvedService][]keyedService
	last     *built
}

// serviceRef is a service entry's key, without making its string.
type serviceRef struct {
	ip    netip.Addr
	port  uint16
	proto string
}

// built is a desired state and what Build made it from, besides the file.
type built struct {
	node, netns, bpffs string
	drivers            *drivers.Registry
	upIndex, upMTU     int
	s                  *state.State
}

// builtFor returns the state built last for the same node, places and
// uplink facts (the Shared being for the same file), or nil.
func (c *nodeCarry) builtFor(cfg *Config, up state.Uplink) *state.State {
	if c == nil || c.last == nil {
		return nil
	}
	b := c.last
	if b.node != cfg.Node || b.netns != cfg.NodeNetns || b.bpffs != cfg.BPFFS || b.drivers != cfg.Drivers ||
		b.upIndex != up.Index || b.upMTU != up.MTU {
		return nil
	}
	return b.s
}

// keep records s as built for cfg and up. Nobody changes a desired state
// once built, so the next pass may return it as it is.
func (c *nodeCarry) keep(cfg *Config, up state.Uplink, s *state.State) {
	if c != nil {
		c.last = &built{node: cfg.Node, netns: cfg.NodeNetns, bpffs: cfg.BPFFS, drivers: cfg.Drivers,
			upIndex: up.Index, upMTU: up.MTU, s: s}
	}
}

// serviceObjs are the service entries of one pass: those of the last
// pass to reuse, and those made now, by entry and by service.
type serviceObjs struct {
	c              *nodeCarry
	old, now       map[serviceRef]*state.Service
	oldSvc, nowSvc map[*spec.ResolvedService][]keyedService
	dirty          map[string]bool // namespaces whose pods changed; nil: unknown
}

// keyedService is a service entry with its key.
type keyedService struct {
	svc *state.Service
	key string
}

// serviceObjs returns node's entries kept from the last pass, nil when
// nothing is carried (a Shared of several nodes). dirty are the
// namespaces whose pods changed since (nil: not known).
func (c *nodeCarry) serviceObjs(node string, n int, dirty map[string]bool) *serviceObjs {
	if c == nil {
		return nil
	}
	if c.node != node {
		c.node, c.services, c.bySvc = node, nil, nil
	}
	return &serviceObjs{c: c, old: c.services, now: make(map[serviceRef]*state.Service, n), oldSvc: c.bySvc,
		nowSvc: make(map[*spec.ResolvedService][]keyedService, len(c.bySvc)), dirty: dirty}
}

// same returns the entries made last time for svc, when they hold: the
// file's services are the very ones of the last pass (the parser shares
// a list none of whose items changed, so an unchanged address means an
// unchanged service, its node address and cluster settings included),
// and no pod of its namespace changed (its backends, its Local ones too).
func (k *serviceObjs) same(svc *spec.ResolvedService) ([]keyedService, bool) {
	if k == nil || k.dirty == nil || k.dirty[svc.Namespace] {
		return nil, false
	}
	objs, ok := k.oldSvc[svc]
	return objs, ok
}

// keep records entry o of svc for the next pass.
func (k *serviceObjs) keep(svc *spec.ResolvedService, o keyedService) {
	if k != nil {
		k.now[serviceRef{ip: o.svc.IP, port: o.svc.Port, proto: o.svc.Proto}] = o.svc
		k.nowSvc[svc] = append(k.nowSvc[svc], o)
	}
}

// get returns the entry of frontend f of svc's port with backends bs:
// the last pass's when it is the same, else a new one.
func (k *serviceObjs) get(svc *spec.ResolvedService, port spec.ServicePort, f frontend, bs []string) *state.Service {
	affinity, timeout := svc.SessionAffinity == spec.AffinityClientIP, affinityTimeout(svc)
	ref := serviceRef{ip: f.ip, port: uint16(f.port), proto: port.Protocol}
	if k != nil {
		o := k.old[ref]
		if o != nil && o.Affinity == affinity && o.AffinityTimeout == timeout && o.SNAT == f.snat && o.Frontend == f.kind &&
			isOwner(o.OwnerK, svc.Key) && slices.Equal(o.Backends, bs) {
			return o
		}
	}
	// (each object gets its own copy of the shared list)
	return &state.Service{IP: f.ip, Port: ref.port, Proto: port.Protocol, Backends: slices.Clone(bs), Affinity: affinity,
		AffinityTimeout: timeout, SNAT: f.snat, Frontend: f.kind, OwnerK: "service/" + svc.Key}
}

// done hands this pass's entries on to the next.
func (k *serviceObjs) done() {
	if k != nil {
		k.c.services, k.c.bySvc = k.now, k.nowSvc
	}
}

// isOwner reports whether owner is "service/" + key, without making it.
func isOwner(owner, key string) bool {
	const prefix = "service/"
	return len(owner) == len(prefix)+len(key) && strings.HasPrefix(owner, prefix) && strings.HasSuffix(owner, key)
}

// sameSlice is slices.Equal, at once for the one slice (an item the file
// did not change keeps its resolved slices).
func sameSlice[T comparable](a, b []T) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0]) || slices.Equal(a, b)
}

