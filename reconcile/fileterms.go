package reconcile

import (
	"slices"
	"strings"

	"github.com/netreconcile/netreconcile/policy"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// describe puts p in the file's terms: deletions whose owner the file no
// longer has are marked so (OwnerRemoved), and a change to a pod's
// policy side says which policies of the file select the pod now. The
// old file is not known here: what no longer selects the pod is for diff.
func describe(p *Plan, r *spec.Resolved, desired *state.State) {
	var owners map[string]bool
	for i := range p.Changes {
		c := &p.Changes[i]
		if c.Action == Delete && c.Owner != "" {
			if owners == nil {
				owners = desiredOwners(desired)
			}
			c.OwnerRemoved = !owners[c.Owner]
		}
		if c.Kind == state.KindPodPolicy.String() && c.Reason == "" {
			c.Reason = selectedBy(r, c)
		}
	}
}

// desiredOwners is the set of owners of desired's objects.
func desiredOwners(desired *state.State) map[string]bool {
	owners := map[string]bool{}
	for _, k := range state.Kinds() {
		for _, o := range desired.All(k) {
			owners[o.Owner()] = true
		}
	}
	return owners
}

// selectedBy names the policies that select the pod of a change to one
// of its policy sides, for that side ("ingress selected by policies
// x/front-only, x/deny-all"), or says that none does.
func selectedBy(r *spec.Resolved, c *Change) string {
	key, ok := strings.CutPrefix(c.Owner, "pod/")
	if !ok {
		return ""
	}
	i, found := slices.BinarySearchFunc(r.Pods, key, func(p spec.ResolvedPod, k string) int { return strings.Compare(p.Key, k) })
	if !found {
		return ""
	}
	pod := &r.Pods[i]
	_, dir, _ := strings.Cut(c.Key, "/")
	want := "Ingress"
	if dir == "egress" {
		want = "Egress"
	}
	var names []string
	// Policies are sorted by key: the namespace's are one run of them.
	from, _ := slices.BinarySearchFunc(r.Policies, pod.Namespace+"/", func(p spec.ResolvedPolicy, prefix string) int {
		return strings.Compare(p.Key, prefix)
	})
	for j := from; j < len(r.Policies) && r.Policies[j].Namespace == pod.Namespace; j++ {
		pol := &r.Policies[j]
		if slices.Contains(pol.Spec.PolicyTypes, want) && policy.Matches(&pol.Spec.PodSelector, pod.Labels) {
			names = append(names, pol.Key+" ("+policy.FormatSelector(&pol.Spec.PodSelector)+")")
		}
	}
	if len(names) == 0 {
		return "pod " + key + ": no policy selects it for " + dir + " now"
	}
	return "pod " + key + ": " + dir + " selected by " + strings.Join(names, ", ")
}
