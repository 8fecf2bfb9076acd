package policy

import (
	"fmt"
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
	for i := range r.Services {
		svc := &r.Services[i]
		where := "service " + svc.Key + " selector"
		if len(svc.Selector) == 0 {
			out = append(out, Warning{where, "none: the service has no backends and refuses every connection"})
			continue
		}
		if !anyPod(r, func(p *spec.ResolvedPod) bool { return svc.Selects(p) }) {
			out = append(out, Warning{where, fmt.Sprintf("%s matches no pod in namespace %s: the service has no backends and refuses every connection",
				labelsText(svc.Selector), svc.Namespace)})
		}
	}
	for i := range r.Policies {
		out = append(out, lintPolicy(r, &r.Policies[i], "policy "+r.Policies[i].Key)...)
	}
	return out
}

func lintPolicy(r *spec.Resolved, pol *spec.ResolvedPolicy, path string) []Warning {
	var out []Warning
	sel := pol.Spec.PodSelector
	if !anyPod(r, func(p *spec.ResolvedPod) bool { return p.Namespace == pol.Namespace && Matches(&sel, p.Labels) }) {
		out = append(out, Warning{path + " podSelector", fmt.Sprintf("selects no pod in namespace %s: the policy changes nothing", pol.Namespace)})
	}
	peers := func(dir string, i int, list []spec.PolicyPeer) {
		for j, peer := range list {
			p := fmt.Sprintf("%s %s[%d].%s[%d]", path, strings.ToLower(dir), i, peerField(dir), j)
			out = append(out, lintPeer(r, pol, peer, p)...)
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

func lintPeer(r *spec.Resolved, pol *spec.ResolvedPolicy, peer spec.PolicyPeer, path string) []Warning {
	if peer.IPBlock != nil {
		return nil
	}
	var namespaces []string
	if peer.NamespaceSelector == nil {
		namespaces = []string{pol.Namespace}
	} else {
		for ns, labels := range r.Namespaces {
			if Matches(peer.NamespaceSelector, labels) {
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
	in := map[string]bool{}
	for _, ns := range namespaces {
		in[ns] = true
	}
	if !anyPod(r, func(p *spec.ResolvedPod) bool { return in[p.Namespace] && Matches(peer.PodSelector, p.Labels) }) {
		sort.Strings(namespaces)
		return []Warning{{path + ".podSelector", fmt.Sprintf("matches no pod in namespace %s: this peer allows nobody", strings.Join(namespaces, ", "))}}
	}
	return nil
}

func anyPod(r *spec.Resolved, fn func(*spec.ResolvedPod) bool) bool {
	for i := range r.Pods {
		if fn(&r.Pods[i]) {
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
