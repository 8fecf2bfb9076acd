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
	recorded, warns, err := cfg.records().ServiceOwners()
	if err != nil {
		return nil, err
	}
	obs.Warnings = append(obs.Warnings, warns...)
	setOwners(obs.Owned, desired, recorded)
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
// desired. A service entry that desired lacks gets its owner from
// services (entry key -> owner: the services record, or a saved
// observation's owners), so that its deletion names the service it was.
func setOwners(owned, desired *state.State, services map[string]string) {
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
			} else if k == state.KindService {
				owner = services[key]
			}
			setOwner(obj, owner)
		}
	}
}

// serviceOwners are the owners the service entries of owned carry, by
// key: a saved observation's, from the file it was shown with.
func serviceOwners(owned *state.State) map[string]string {
	out := map[string]string{}
	for key, obj := range owned.All(state.KindService) {
		if owner := obj.Owner(); owner != "" {
			out[key] = owner
		}
	}
	return out
}

// recordServices writes the services record (records.Dir.ServiceOwners)
// before the datapath's entries are written: the owners of desired's
// service entries, and those of owned's (nil: none) that desired lacks,
// which the record names until they are gone.
func (c *Config) recordServices(desired, owned *state.State) error {
	owners := map[string]string{}
	if owned != nil {
		owners = serviceOwners(owned)
	}
	for key, obj := range desired.All(state.KindService) {
		owners[key] = obj.Owner()
	}
	return c.records().RecordServiceOwners(owners)
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
