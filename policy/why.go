package policy

import (
	"sort"
	"strconv"
	"strings"

	"github.com/netreconcile/netreconcile/spec"
)

// peersMiss says why none of a rule's peers matched other: one clause per
// peer, naming the selector and the labels it was held against.
func (e *evaluator) peersMiss(dir, policyNS string, peers []spec.PolicyPeer, other end) string {
	parts := make([]string, 0, len(peers))
	for _, p := range peers {
		parts = append(parts, e.peerMiss(policyNS, p, other))
	}
	s := peerField(dir) + " does not match " + other.ep.String()
	if len(parts) == 1 {
		return s + " (" + parts[0] + ")"
	}
	for i := range parts {
		parts[i] = peerField(dir) + "[" + itoa(i) + "] " + parts[i]
	}
	return s + " (" + strings.Join(parts, "; ") + ")"
}

// peerMiss says why one peer does not match other (matchPeer's reasons).
func (e *evaluator) peerMiss(policyNS string, p spec.PolicyPeer, other end) string {
	switch {
	case p.IPBlock != nil:
		if cidr, ok := e.prefix(p.IPBlock.CIDR); ok && cidr.Contains(other.ep.IP) {
			return "ipBlock " + p.IPBlock.CIDR + " contains " + other.ep.IP.String() + " but an except excludes it"
		}
		return "ipBlock " + p.IPBlock.CIDR + " does not contain " + other.ep.IP.String()
	case other.pod == nil:
		return describePeer(p) + ": selectors select pods only, and " + other.ep.String() + " is no pod of the file"
	case p.NamespaceSelector == nil && other.pod.Namespace != policyNS:
		return describePeer(p) + " selects in namespace " + policyNS + " only; " + other.pod.Key + " is in " + other.pod.Namespace
	case p.NamespaceSelector != nil && !Matches(p.NamespaceSelector, e.namespaceLabels(other.pod.Namespace)):
		return "namespaceSelector " + FormatSelector(p.NamespaceSelector) + " does not match namespace " +
			other.pod.Namespace + " (labels " + labelText(e.namespaceLabels(other.pod.Namespace)) + ")"
	default:
		return "podSelector " + FormatSelector(p.PodSelector) + " does not match " + other.pod.Key +
			" (labels " + labelText(other.pod.Labels) + ")"
	}
}

func labelText(m map[string]string) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k+"="+m[k])
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

func itoa(i int) string { return strconv.Itoa(i) }
