package policy

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/netreconcile/netreconcile/spec"
)

// Warning is a part of a valid file that most likely does not do what
// its author meant: a selector that matches nothing.
type Warning struct {
	Where string // the object and field: "service x/web selector"
	Msg   string
}

func (w Warning) String() string { return w.Where + ": " + w.Msg }

// Lint returns the warnings of r: services whose selector matches no pod
// (they have no backends and refuse every connection), policies whose
// podSelector selects no pod, and peers whose namespaceSelector matches
// no namespace or whose podSelector matches no pod.
func Lint(r *spec.Resolved) []Warning {
	var out []Warning
	// Each selector looks at the pods of its namespace carrying its
	// rarest label: walking every pod for each cost seconds at 50,000.
	x := &linter{r: r, pods: spec.NewPodIndex(r.Pods, nil),
		nss: spec.NewNamespaceIndex(slices.Collect(maps.Keys(r.Namespaces)), func(ns string) map[string]string { return r.Namespaces[ns] })}
	for i := range r.Services {
		svc := &r.Services[i]
		where := "service " + svc.Key + " selector"
		if len(svc.Selector) == 0 {
			out = append(out, Warning{where, "none: the service has no backends and refuses every connection"})
			continue
		}
		if !x.anyPod(svc.Namespace, svc.Selector, svc.Selects) {
			out = append(out, Warning{where, fmt.Sprintf("%s matches no pod in namespace %s: the service has no backends and refuses every connection",
				labelsText(svc.Selector), svc.Namespace)})
		}
	}
	for i := range r.Policies {
		out = append(out, x.lintPolicy(&r.Policies[i], "policy "+r.Policies[i].Key)...)
	}
	return out
}

// linter holds what Lint's checks share.
type linter struct {
	r    *spec.Resolved
	pods *spec.PodIndex
	nss  *spec.NamespaceIndex // the file's namespaces
}

func (x *linter) lintPolicy(pol *spec.ResolvedPolicy, path string) []Warning {
	var out []Warning
	sel := pol.Spec.PodSelector
	if !x.anyPod(pol.Namespace, sel.MatchLabels, func(p *spec.ResolvedPod) bool { return Matches(&sel, p.Labels) }) {
		out = append(out, Warning{path + " podSelector", fmt.Sprintf("selects no pod in namespace %s: the policy changes nothing", pol.Namespace)})
	}
	peers := func(dir string, i int, list []spec.PolicyPeer) {
		for j, peer := range list {
			p := fmt.Sprintf("%s %s[%d].%s[%d]", path, strings.ToLower(dir), i, peerField(dir), j)
			out = append(out, x.lintPeer(pol, peer, p)...)
		}
	}
	for i, rule := range pol.Spec.Ingress {
		peers(spec.PolicyIngress, i, rule.From)
	}
	for i, rule := range pol.Spec.Egress {
		peers(spec.PolicyEgress, i, rule.To)
	}
	return out
}

func (x *linter) lintPeer(pol *spec.ResolvedPolicy, peer spec.PolicyPeer, path string) []Warning {
	if peer.IPBlock != nil {
		return nil
	}
	var namespaces []string
	if peer.NamespaceSelector == nil {
		namespaces = []string{pol.Namespace}
	} else {
		for _, ns := range x.nss.Candidates(peer.NamespaceSelector.MatchLabels) {
			if Matches(peer.NamespaceSelector, x.r.Namespaces[ns]) {
				namespaces = append(namespaces, ns)
			}
		}
		if len(namespaces) == 0 {
			return []Warning{{path + ".namespaceSelector", "matches no namespace of the file (namespaces: and those pods, services and policies use): this peer allows nobody"}}
		}
	}
	if peer.PodSelector == nil {
		return nil
	}
	matched := func(p *spec.ResolvedPod) bool { return Matches(peer.PodSelector, p.Labels) }
	if !slices.ContainsFunc(namespaces, func(ns string) bool { return x.anyPod(ns, peer.PodSelector.MatchLabels, matched) }) {
		sort.Strings(namespaces)
		return []Warning{{path + ".podSelector", fmt.Sprintf("matches no pod in namespace %s: this peer allows nobody", strings.Join(namespaces, ", "))}}
	}
	return nil
}

// anyPod reports whether fn holds for a pod of namespace ns; every pod it
// holds for carries matchLabels.
func (x *linter) anyPod(ns string, matchLabels map[string]string, fn func(*spec.ResolvedPod) bool) bool {
	for _, i := range x.pods.Candidates(ns, matchLabels) {
		if fn(&x.r.Pods[i]) {
			return true
		}
	}
	return false
}

func labelsText(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return strings.Join(keys, ",")
}
