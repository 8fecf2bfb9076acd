package desired

import (
	"maps"
	"strings"

	"github.com/netreconcile/netreconcile/policy/compile"
	"github.com/netreconcile/netreconcile/spec"
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
// other namespaces' pods are indexed. prev may be nil.
func NewSharedFrom(prev *Shared, r *spec.Resolved) *Shared {
	if prev == nil || prev.policies == nil {
		return NewShared(r)
	}
	sh := &Shared{r: r, policies: compile.NewClusterFrom(prev.policies, r), backends: map[string][]string{},
		byPort: map[*spec.ResolvedService][]portBackends{}}
	// The policies compared the pods already (once for both: 50,000 at
	// 1000 nodes). The same file (a drift pass): every list holds.
	changed, ok := sh.policies.ChangedNamespaces()
	if !ok {
		return NewShared(r)
	}
	dirty := maps.Clone(changed)
	prev.mu.Lock()
	for key, list := range prev.backends {
		if ns, _, _ := strings.Cut(key, "\x00"); !dirty[ns] {
			sh.backends[key] = list
		}
	}
	prev.mu.Unlock()
	// A list not kept (a service new or changed, in any namespace) is
	// computed from the index: its namespace is indexed too.
	for i := range r.Services {
		svc := &r.Services[i]
		for _, port := range svc.Ports {
			if _, ok := sh.backends[backendsKey(svc, port)]; !ok {
				dirty[svc.Namespace] = true
			}
		}
	}
	sh.indexed = dirty
	return sh
}

// Carried is what a later NewSharedFrom needs of sh: its file, its
// backend lists and its compiled policies, whose class table a one-pod
// edit patches rather than builds again. A daemon keeps it between
// passes: sh must not be used once a NewSharedFrom took it over.
func (sh *Shared) Carried() *Shared {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.policies.Compact()
	return &Shared{r: sh.r, policies: sh.policies, backends: maps.Clone(sh.backends)}
}
