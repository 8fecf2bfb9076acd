package policy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/netreconcile/netreconcile/spec"
)

// String prints the rule the way explain shows it:
// `y/allow-web ingress[0] (from[0]: namespaceSelector ns=x; ports[0]: 80/TCP)`.
func (r RuleRef) String() string {
	dir := strings.ToLower(r.Direction)
	peers := "from"
	if r.Direction == spec.PolicyEgress {
		peers = "to"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s[%d] (", r.Policy, dir, r.Rule)
	if r.Peer < 0 {
		b.WriteString(peers + ": any")
	} else {
		fmt.Fprintf(&b, "%s[%d]: %s", peers, r.Peer, r.PeerText)
	}
	if r.Port < 0 {
		b.WriteString("; ports: any)")
	} else {
		fmt.Fprintf(&b, "; ports[%d]: %s)", r.Port, r.PortText)
	}
	return b.String()
}

// String prints `y/allow-web ingress[0]: ports do not match 81/TCP`.
func (m RuleMiss) String() string {
	if m.Rule < 0 {
		return m.Policy + ": " + m.Reason
	}
	return fmt.Sprintf("%s %s[%d]: %s", m.Policy, strings.ToLower(m.Direction), m.Rule, m.Reason)
}

// String prints the side on one line, e.g. `egress of x/a: not isolated
// (no policy selects it)` or `ingress of y/b: isolated by y/allow-web,
// y/deny-all; allowed by y/allow-web ingress[0] (...)`. Misses are left
// to Verdict.String, which puts one per line.
func (s Side) String() string {
	head := strings.ToLower(s.Direction) + " of " + s.Endpoint.String() + ": "
	switch {
	case !s.Enforced:
		return head + "outside the cluster (no policy applies)"
	case !s.Isolated:
		return head + "not isolated (no policy selects it)"
	}
	head += "isolated by " + strings.Join(s.IsolatedBy, ", ") + "; "
	switch {
	case len(s.AllowedBy) > 0:
		refs := make([]string, len(s.AllowedBy))
		for i, r := range s.AllowedBy {
			refs[i] = r.String()
		}
		return head + "allowed by " + strings.Join(refs, " and ")
	case s.Node:
		return head + "no rule allows it, but traffic between a pod and its own node is always allowed"
	default:
		return head + "denied (no rule allows it)"
	}
}

// String prints the verdict as explain does: ALLOWED or DENIED with the
// connection, then one line per side, then for a denying side the rules
// that did not match and why.
func (v Verdict) String() string {
	if v.Err != nil {
		return "ERROR " + v.Err.Error()
	}
	var b strings.Builder
	word := "DENIED"
	if v.Allowed {
		word = "ALLOWED"
	}
	if Portless(v.Protocol) {
		fmt.Fprintf(&b, "%s %s -> %s %s\n  %s\n", word, describeEnd(v.Src), describeEnd(v.Dst), v.Protocol,
			portlessReason(v.Protocol))
	} else {
		fmt.Fprintf(&b, "%s %s -> %s %d/%s\n", word, describeEnd(v.Src), describeEnd(v.Dst), v.Port, v.Protocol)
	}
	if v.Self {
		b.WriteString("  a pod can always reach itself (Kubernetes: a pod cannot block access to itself)")
		if !v.Egress.Allowed || !v.Ingress.Allowed {
			b.WriteString("; the policies alone would deny it")
		}
		b.WriteString("\n")
	}
	for _, s := range []Side{v.Egress, v.Ingress} {
		b.WriteString("  " + s.String() + "\n")
		if s.Isolated && len(s.AllowedBy) == 0 {
			for _, m := range s.Misses {
				b.WriteString("    " + m.String() + "\n")
			}
		}
	}
	return b.String()
}

func describeEnd(e Endpoint) string {
	switch {
	case e.Pod != "" && e.IP.IsValid():
		return e.Pod + " (" + e.IP.String() + ")"
	case e.Pod != "":
		return e.Pod
	default:
		return e.IP.String()
	}
}

// describePeer prints a peer with kubectl-style selectors.
func describePeer(p spec.PolicyPeer) string {
	switch {
	case p.IPBlock != nil:
		s := "ipBlock " + p.IPBlock.CIDR
		if len(p.IPBlock.Except) > 0 {
			s += " except " + strings.Join(p.IPBlock.Except, ", ")
		}
		return s
	case p.NamespaceSelector != nil && p.PodSelector != nil:
		return "namespaceSelector " + FormatSelector(p.NamespaceSelector) + " and podSelector " + FormatSelector(p.PodSelector)
	case p.NamespaceSelector != nil:
		return "namespaceSelector " + FormatSelector(p.NamespaceSelector)
	case p.PodSelector != nil:
		return "podSelector " + FormatSelector(p.PodSelector)
	default:
		return "<empty peer>"
	}
}

// describePort prints 80/TCP, 8000-8080/TCP, any UDP port, or a named port
// with the number it resolved to on the destination pod.
func describePort(pp spec.PolicyPort, dstPod *spec.ResolvedPod) string {
	proto := protocolOf(pp.Protocol)
	switch {
	case pp.Port == nil:
		return "any " + proto + " port"
	case pp.Port.IsString:
		s := pp.Port.StrVal + "/" + proto
		if n, ok := namedPort(dstPod, pp.Port.StrVal, proto); ok {
			s += " (" + strconv.Itoa(n) + " on " + dstPod.Key + ")"
		}
		return s
	case pp.EndPort > 0:
		return strconv.Itoa(pp.Port.IntVal) + "-" + strconv.Itoa(pp.EndPort) + "/" + proto
	default:
		return strconv.Itoa(pp.Port.IntVal) + "/" + proto
	}
}
