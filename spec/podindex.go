package spec

import (
	"slices"
	"strings"
)

// PodIndex finds pods by namespace and label, so that a selector is
// checked against the pods carrying its rarest pair rather than every pod:
// services select backends and policies select the pods they isolate
// this way.
type PodIndex struct {
	byNS    map[string][]int // namespace -> indexes in the pods indexed
	byLabel map[nsLabel][]int
	keys    map[string]bool // the label keys indexed; nil: all
}

// nsLabel is a namespace's label pair, a key made without concatenating.
type nsLabel struct{ ns, k, v string }

// NewPodIndex indexes the pods for which keep (nil: all) is true.
func NewPodIndex(pods []ResolvedPod, keep func(*ResolvedPod) bool) *PodIndex {
	return newPodIndex(pods, keep, nil)
}

// NewSelectorIndex indexes the pods of namespaces (nil: all) by the
// label keys that selectors use, only: a label of each pod's own (a name,
// an instance) would double the index and never narrow a selector's
// candidates. pods are sorted by key, as Resolved holds them: a
// namespace's pods are one run of them, found by bisection (a watch pass
// indexes the namespace or two an edit touched, of 50,000 pods).
func NewSelectorIndex(pods []ResolvedPod, namespaces, keys map[string]bool) *PodIndex {
	if namespaces == nil {
		return newPodIndex(pods, nil, keys)
	}
	x := &PodIndex{byNS: map[string][]int{}, byLabel: map[nsLabel][]int{}, keys: keys}
	for ns := range namespaces {
		from, _ := slices.BinarySearchFunc(pods, ns+"/", func(p ResolvedPod, prefix string) int { return strings.Compare(p.Key, prefix) })
		for i := from; i < len(pods) && strings.HasPrefix(pods[i].Key, ns+"/"); i++ {
			x.add(&pods[i], i)
		}
	}
	return x
}

func newPodIndex(pods []ResolvedPod, keep func(*ResolvedPod) bool, keys map[string]bool) *PodIndex {
	x := &PodIndex{byNS: map[string][]int{}, byLabel: map[nsLabel][]int{}, keys: keys}
	for i := range pods {
		p := &pods[i]
		if keep != nil && !keep(p) {
			continue
		}
		x.add(p, i)
	}
	return x
}

// add indexes pods[i], p, after the pods before it.
func (x *PodIndex) add(p *ResolvedPod, i int) {
	x.byNS[p.Namespace] = append(x.byNS[p.Namespace], i)
	for k, v := range p.Labels {
		if x.keys != nil && !x.keys[k] {
			continue
		}
		key := nsLabel{p.Namespace, k, v}
		x.byLabel[key] = append(x.byLabel[key], i)
	}
}

// Candidates returns the indexes of the pods of namespace ns that carry
// the rarest pair of matchLabels (all of ns for none): the only pods the
// selector may match, in order.
func (x *PodIndex) Candidates(ns string, matchLabels map[string]string) []int {
	cands := x.byNS[ns]
	for k, v := range matchLabels {
		if x.keys != nil && !x.keys[k] {
			continue // not indexed
		}
		if l := x.byLabel[nsLabel{ns, k, v}]; len(l) < len(cands) {
			cands = l
		}
	}
	return cands
}

// NamespaceIndex finds namespaces by label, so that a namespaceSelector
// is checked against the namespaces carrying its rarest pair rather than
// every namespace of a cluster.
type NamespaceIndex struct {
	names  []string               // sorted
	byPair map[labelPair][]string // sorted
}

// labelPair is a label's key and value, a map key made without
// concatenating.
type labelPair struct{ k, v string }

// NewNamespaceIndex indexes the namespaces names by labels(ns).
func NewNamespaceIndex(names []string, labels func(ns string) map[string]string) *NamespaceIndex {
	x := &NamespaceIndex{names: slices.Sorted(slices.Values(names)), byPair: map[labelPair][]string{}}
	for _, ns := range x.names {
		for k, v := range labels(ns) {
			x.byPair[labelPair{k, v}] = append(x.byPair[labelPair{k, v}], ns)
		}
	}
	return x
}

// Candidates returns the namespaces, sorted, that carry the rarest pair
// of matchLabels (all of them for none): the only ones the selector may
// match.
func (x *NamespaceIndex) Candidates(matchLabels map[string]string) []string {
	best := x.names
	for k, v := range matchLabels {
		if l := x.byPair[labelPair{k, v}]; len(l) < len(best) {
			best = l
		}
	}
	return best
}
