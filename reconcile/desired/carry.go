package desired

import (
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/netreconcile/netreconcile/spec"
)

// A watch pass plans a file that differs from the last one in an item or
// two. The services' backend lists are most of what every node computes
// from the whole file (10,000 services over 50,000 pods at 1000 nodes);
// NewSharedFrom keeps the lists that cannot have changed.

// NewSharedFrom is NewShared for r that keeps prev's backend lists of
// the namespaces where no pod changed between prev's file and r (a list
// depends only on its namespace's pods: their labels, addresses and
// ports). Only the other namespaces' pods are indexed. prev may be nil.
func NewSharedFrom(prev *Shared, r *spec.Resolved) *Shared {
	sh := NewShared(r)
	if prev == nil {
		return sh
	}
	if prev.r == r && prev.policies != nil {
		sh.policies = prev.policies // the same file: everything holds
	}
	dirty := map[string]bool{} // the same file (a drift pass): every list holds
	if prev.r != r {
		dirty = changedNamespaces(prev.r.Pods, r.Pods)
	}
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

// Carried is what a later NewSharedFrom needs of sh: its file and its
// backend lists, without the compiled policies (a daemon keeps it between
// passes, and the policies' classes are the larger part).
func (sh *Shared) Carried() *Shared {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return &Shared{r: sh.r, backends: maps.Clone(sh.backends)}
}

// changedNamespaces returns the namespaces of the pods that old and new
// (each sorted by key, as Resolve leaves them) do not hold alike, as far
// as backends go: added, removed, or with other labels, address or ports.
func changedNamespaces(old, new []spec.ResolvedPod) map[string]bool {
	dirty := map[string]bool{}
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		switch {
		case j == len(new) || i < len(old) && old[i].Key < new[j].Key:
			dirty[old[i].Namespace] = true
			i++
		case i == len(old) || new[j].Key < old[i].Key:
			dirty[new[j].Namespace] = true
			j++
		default:
			a, b := &old[i], &new[j]
			if a.IP != b.IP || !sameLabels(a.Labels, b.Labels) || !slices.Equal(a.Ports, b.Ports) {
				dirty[b.Namespace] = true
			}
			i, j = i+1, j+1
		}
	}
	return dirty
}

// sameLabels is maps.Equal, at once for the one map: a pod the file did
// not change keeps its decoded labels from one pass to the next.
func sameLabels(a, b map[string]string) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer() || maps.Equal(a, b)
}
