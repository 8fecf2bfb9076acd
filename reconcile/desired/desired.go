// Package desired computes what the file wants of one node's kernel, as
// state objects: the drivers' links, addresses and routes, the routing
// between nodes, the eBPF datapath's services and endpoints, and the
// compiled network policy. It does no I/O.
package desired

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/drivers/svcdev"
	"github.com/netreconcile/netreconcile/masq"
	"github.com/netreconcile/netreconcile/policy/compile"
	"github.com/netreconcile/netreconcile/routing"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// Config says which node the desired state is for and where its
// namespaces and datapath are.
type Config struct {
	Node      string // node name in the file
	NodeNetns string // the node's host namespace: "" (current), a name, or a path
	BPFFS     string // pin directory of this node
	Drivers   *drivers.Registry
	// Shared, when made for the file built, carries what every node's
	// desired state of that file shares from one node to the next (a
	// cluster plan); nil computes it for this node alone.
	Shared *Shared
}

// Shared is what the desired states of one file's nodes share, computed
// once for all of them and read-only after: the compiled policies' pod
// classes and identities (compile.Cluster) and the services' backends.
// Safe for concurrent use.
type Shared struct {
	r        *spec.Resolved
	policies *compile.Cluster

	mu sync.Mutex
	// lists are the services' backend lists, by namespace: a list depends
	// only on its namespace's pods, so a daemon's next pass keeps or drops
	// a namespace's whole (NewSharedFrom).
	lists    map[string]*nsLists
	keysOnce sync.Once
	keys     map[string]bool // the label keys selectors use (spec.NewSelectorIndex)

	// A daemon's Shared (made by NewSharedFrom) also carries the node's
	// own objects from one pass to the next (see carry.go), and knows the
	// namespaces whose pods changed since the last (nil: not known).
	carry *nodeCarry
	dirty map[string]bool
}

// nsLists are one namespace's backend lists, by backendsKey and again by
// service key and port index: every node asks for every service's, and
// building the key cost more than the list once the cluster had
// thousands of nodes (validate counts them for each).
type nsLists struct {
	byKey map[string][]string
	bySvc map[string]*svcLists
	pods  *spec.PodIndex // the namespace's pods, indexed for the first list computed
}

// svcLists are the backend lists of one service's ports, for the
// service as it was when they were computed.
type svcLists struct {
	ns       string
	selector map[string]string
	ports    []spec.ServicePort
	lists    []portBackends
}

// of reports whether the lists were computed for svc as it is.
func (e *svcLists) of(svc *spec.ResolvedService) bool {
	return e.ns == svc.Namespace && spec.SameLabels(e.selector, svc.Selector) && sameSlice(e.ports, svc.Ports)
}

// portBackends is a port's backend list once computed.
type portBackends struct {
	list []string
	done bool
}

// NewShared prepares what the nodes of r share; each part is computed
// when a node first needs it.
func NewShared(r *spec.Resolved) *Shared {
	return &Shared{r: r, policies: compile.NewCluster(r), lists: map[string]*nsLists{}}
}

// shared is cfg.Shared when it was made for r, else a new one.
func (cfg *Config) shared(r *spec.Resolved) *Shared {
	if cfg.Shared != nil && cfg.Shared.r == r {
		return cfg.Shared
	}
	return NewShared(r)
}

// Backends lists "ip:port" of the pods that back port of svc (see
// Backends), computed once for services that share them (one per port of
// a workload, say). The list is shared: do not change it.
func (sh *Shared) Backends(svc *spec.ResolvedService, port spec.ServicePort) []string {
	j := slices.Index(svc.Ports, port)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	n := sh.lists[svc.Namespace]
	if n == nil {
		n = &nsLists{byKey: map[string][]string{}, bySvc: map[string]*svcLists{}}
		sh.lists[svc.Namespace] = n
	}
	e := n.bySvc[svc.Key]
	if j >= 0 && e != nil && e.of(svc) && e.lists[j].done {
		return e.lists[j].list
	}
	key := backendsKey(svc, port)
	bs, ok := n.byKey[key]
	if !ok {
		// Services select pods of their own namespace, on any node, by labels.
		if n.pods == nil {
			n.pods = spec.NewSelectorIndex(sh.r.Pods, map[string]bool{svc.Namespace: true}, sh.selectorKeys())
		}
		bs = addrPorts(sh.r.BackendsIn(n.pods, svc, port))
		n.byKey[key] = bs
	}
	if j >= 0 {
		if e == nil || !e.of(svc) {
			e = &svcLists{ns: svc.Namespace, selector: svc.Selector, ports: svc.Ports, lists: make([]portBackends, len(svc.Ports))}
			n.bySvc[svc.Key] = e
		}
		e.lists[j] = portBackends{list: bs, done: true}
	}
	return bs
}

// selectorKeys are the label keys the services' selectors use.
func (sh *Shared) selectorKeys() map[string]bool {
	sh.keysOnce.Do(func() {
		sh.keys = map[string]bool{}
		for i := range sh.r.Services {
			for k := range sh.r.Services[i].Selector {
				sh.keys[k] = true
			}
		}
	})
	return sh.keys
}

// Build builds the kernel objects node cfg.Node needs, from the file and
// the uplink facts. It does no I/O.
func Build(cfg *Config, r *spec.Resolved, up state.Uplink) (*state.State, error) {
	ns := r.Node(cfg.Node)
	if ns == nil {
		return nil, fmt.Errorf("node %q is not in the file", cfg.Node)
	}
	shared := cfg.shared(r)
	if s := shared.carry.builtFor(cfg, up); s != nil {
		return s, nil
	}
	n := &drivers.Node{Name: cfg.Node, Spec: ns, Cluster: r, MTU: routing.PodMTU(r, up.MTU), UplinkIndex: up.Index}
	// Policies compile beside the rest (they only read r): a third of
	// this function's time at scale.
	compiled := func() (*compile.Program, error) { return nil, nil }
	if WantsDatapath(r) {
		type result struct {
			prog *compile.Program
			err  error
		}
		ch := make(chan result, 1) // never blocks: Desired may return first
		go func() {
			prog, err := shared.policies.Node(cfg.Node)
			ch <- result{prog, err}
		}()
		compiled = func() (*compile.Program, error) { res := <-ch; return res.prog, res.err }
	}
	s := state.New()
	if err := routing.Desired(r, cfg.Node, up.MTU, s); err != nil {
		return nil, fmt.Errorf("routing of node %q: %w", cfg.Node, err)
	}
	if err := svcdev.Node(n, s); err != nil {
		return nil, fmt.Errorf("service device of node %q: %w", cfg.Node, err)
	}
	pods := r.PodsOn(cfg.Node)
	modes := map[string]bool{}
	for _, p := range pods {
		modes[p.Mode] = true
	}
	sorted := make([]string, 0, len(modes))
	for m := range modes {
		sorted = append(sorted, m)
	}
	sort.Strings(sorted)
	for _, m := range sorted {
		d, err := cfg.Drivers.Get(m)
		if err != nil {
			return nil, err
		}
		if err := d.Node(n, s); err != nil {
			return nil, fmt.Errorf("mode %s on node %q: %w", m, cfg.Node, err)
		}
	}
	for i := range pods {
		d, _ := cfg.Drivers.Get(pods[i].Mode)
		if err := d.Pod(n, &pods[i], s); err != nil {
			return nil, fmt.Errorf("pod %s: %w", pods[i].Key, err)
		}
	}
	if err := desiredDatapath(cfg, shared, n, pods, compiled, s); err != nil {
		return nil, err
	}
	if err := masq.Desired(r, cfg.Node, s); err != nil {
		return nil, fmt.Errorf("masquerade of node %q: %w", cfg.Node, err)
	}
	shared.carry.keep(cfg, up, s)
	return s, nil
}

// Preflight checks, before any change, what the file needs of this node:
// the uplink exists and carries the node address, every peer node's
// address is routable, cluster.mtu leaves room for VXLAN where it is used,
// and every mode in use runs on this kernel.
func Preflight(cfg *Config, r *spec.Resolved, up state.Uplink, k *drivers.Kernel) error {
	ns := r.Node(cfg.Node)
	if ns == nil {
		return fmt.Errorf("node %q is not in the file", cfg.Node)
	}
	if !up.Found {
		return fmt.Errorf("node %q: uplink %q not found in the node namespace", cfg.Node, ns.Uplink)
	}
	has := false
	for _, a := range up.Addrs {
		if a == ns.Address {
			has = true
		}
	}
	if !has {
		return fmt.Errorf("node %q: uplink %q does not carry the node address %s (has %v)", cfg.Node, ns.Uplink, ns.Address, up.Addrs)
	}
	var errs []error
	for _, p := range routing.Peers(r, cfg.Node) {
		if slices.Contains(up.Unreachable, p.Node.Address.Addr()) {
			errs = append(errs, fmt.Errorf("node %q: peer node %q (%s) is unreachable: the node namespace has no route to it",
				cfg.Node, p.Node.Name, p.Node.Address.Addr()))
		}
	}
	if err := routing.Check(r, cfg.Node, up.MTU); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	checked := map[string]bool{}
	for _, p := range r.PodsOn(cfg.Node) {
		d, err := cfg.Drivers.Get(p.Mode)
		if err != nil {
			return err
		}
		if checked[p.Mode] {
			continue
		}
		checked[p.Mode] = true
		if err := d.Check(k); err != nil {
			return fmt.Errorf("%w: pod %s", err, p.Key)
		}
	}
	return nil
}
