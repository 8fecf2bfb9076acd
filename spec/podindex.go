package spec

// PodIndex finds pods by namespace and label, so that a selector is
// checked against the pods carrying its rarest pair rather than every pod:
// services select backends and policies select the pods they isolate
// this way.
type PodIndex struct {
	byNS    map[string][]int // namespace -> indexes in the pods indexed
	byLabel map[string][]int // namespace, key and value -> indexes
}

// NewPodIndex indexes the pods for which keep (nil: all) is true.
func NewPodIndex(pods []ResolvedPod, keep func(*ResolvedPod) bool) *PodIndex {
	x := &PodIndex{byNS: map[string][]int{}, byLabel: map[string][]int{}}
	for i := range pods {
		p := &pods[i]
		if keep != nil && !keep(p) {
			continue
		}
		x.byNS[p.Namespace] = append(x.byNS[p.Namespace], i)
		for k, v := range p.Labels {
			key := labelKey(p.Namespace, k, v)
			x.byLabel[key] = append(x.byLabel[key], i)
		}
	}
	return x
}

// Candidates returns the indexes of the pods of namespace ns that carry
// the rarest pair of matchLabels (all of ns for none): the only pods the
// selector may match, in order.
func (x *PodIndex) Candidates(ns string, matchLabels map[string]string) []int {
	cands := x.byNS[ns]
	for k, v := range matchLabels {
		if l := x.byLabel[labelKey(ns, k, v)]; len(l) < len(cands) {
			cands = l
		}
	}
	return cands
}

func labelKey(ns, k, v string) string { return ns + "\x00" + k + "\x00" + v }
