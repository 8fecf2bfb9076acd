package reconcile

import (
	"github.com/netreconcile/netreconcile/reconcile/observe"
	"github.com/netreconcile/netreconcile/state"
)

// The observation lives in package observe; these keep the engine's
// callers working.
type (
	// Observed is what one observation pass saw on the node.
	Observed = state.Observed
	// Uplink describes the node's uplink as found in the node namespace.
	Uplink = state.Uplink
	// Foreign lists objects that are not netreconcile's.
	Foreign = state.Foreign
	// Cache carries observations from one pass to the next.
	Cache = observe.Cache
)

// NewCache returns an empty cache: the first pass reads everything.
func NewCache() *Cache { return observe.NewCache() }

// Observe reads the node's state: the node namespace and every pod
// namespace that the desired state names or that netreconcile recorded
// as its own.
func Observe(cfg *Config, desired *state.State) (*Observed, error) {
	return observeWith(cfg, desired, nil, nil)
}

// observeWith observes what desired scopes, reusing what cache holds and
// reading the datapath once dpReady (when not nil) is closed; the
// datapath's entries and the sysctls get their owners from desired.
func observeWith(cfg *Config, desired *state.State, cache *Cache, dpReady <-chan struct{}) (*Observed, error) {
	obs, err := observe.Node(cfg.observeConfig(), scopeOf(desired), cache, dpReady)
	if err != nil {
		return nil, err
	}
	setOwners(obs.Owned, desired)
	return obs, nil
}

func (c *Config) observeConfig() *observe.Config {
	return &observe.Config{Node: c.Node, NodeNetns: c.NodeNetns, BPFFS: c.BPFFS, Uplink: c.Uplink, Records: c.records()}
}

// scopeOf is what an observation reads for desired beyond what
// netreconcile owns: the pod namespaces it names, the node sysctls and
// per-interface sysctls it sets, and the datapath's map sizes.
func scopeOf(desired *state.State) *observe.Scope {
	sc := &observe.Scope{LinkSysctls: map[string][]string{}, MapSizes: map[string]string{}}
	for key := range desired.All(state.KindNetns) {
		sc.Netns = append(sc.Netns, key)
	}
	for _, obj := range desired.Of(state.KindLink) {
		if l := obj.(*state.Link); l.NS == state.NodeNS && len(l.Sysctls) > 0 {
			for k := range l.Sysctls {
				sc.LinkSysctls[l.Name] = append(sc.LinkSysctls[l.Name], k)
			}
		}
	}
	for _, obj := range desired.Of(state.KindSysctl) {
		sc.Sysctls = append(sc.Sysctls, obj.(*state.Sysctl).Name)
	}
	for _, obj := range desired.Of(state.KindDatapath) {
		d := obj.(*state.Datapath)
		sc.MapSizes[d.PinDir] = d.MapSizes
	}
	return sc
}

// ownedKinds are the observed objects whose owner the kernel does not
// hold: the datapath's map entries and attachments (no owner without a
// desired one) and the node sysctls ("node" without a desired one).
var ownedKinds = []state.Kind{state.KindService, state.KindEndpoint, state.KindAttach, state.KindPolicyIdentity,
	state.KindPodPolicy, state.KindPolicyRevision, state.KindSysctl}

// setOwners gives the objects of ownedKinds in owned their owner in
// desired.
func setOwners(owned, desired *state.State) {
	for _, k := range ownedKinds {
		for key, obj := range owned.All(k) {
			owner := ""
			if d := desired.Get(k, key); d != nil {
				owner = d.Owner()
				if s, ok := d.(*state.Service); ok {
					obj.(*state.Service).Frontend = s.Frontend
				}
			} else if k == state.KindSysctl {
				owner = state.NodeOwner
			}
			setOwner(obj, owner)
		}
	}
}

func setOwner(obj state.Object, owner string) {
	switch o := obj.(type) {
	case *state.Service:
		o.OwnerK = owner
	case *state.Endpoint:
		o.OwnerK = owner
	case *state.Attach:
		o.OwnerK = owner
	case *state.PolicyIdentity:
		o.OwnerK = owner
	case *state.PodPolicy:
		o.OwnerK = owner
	case *state.PolicyRevision:
		o.OwnerK = owner
	case *state.Sysctl:
		o.OwnerK = owner
	}
}
