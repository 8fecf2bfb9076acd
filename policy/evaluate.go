package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/netreconcile/netreconcile/spec"
)

// Verdict is the answer for one connection attempt (the first packet; the
// replies of an allowed connection always pass), with enough detail to say
// why on both ends.
type Verdict struct {
	// Src and Dst are the endpoints as judged: a pod's address is filled
	// in, and an address that belongs to a pod names that pod.
	Src      Endpoint `json:"from"`
	Dst      Endpoint `json:"to"`
	Port     int      `json:"port,omitempty"`
	Protocol string   `json:"protocol"`

	// Allowed is the answer: Self, or both Egress and Ingress allow it.
	Allowed bool `json:"allowed"`
	// Self is set when a pod talks to itself, which Kubernetes always
	// allows; Egress and Ingress still say what the policies alone decide.
	Self bool `json:"self,omitempty"`
	// Egress is the source's side, Ingress the destination's.
	Egress  Side `json:"egress"`
	Ingress Side `json:"ingress"`

	// Err is set when the question cannot be answered (a pod key the
	// model lacks, a bad port or protocol); Allowed is then false.
	Err error `json:"-"`
}

// Side is how the policies of one end judged the connection: the source's
// egress or the destination's ingress.
type Side struct {
	// Direction is spec.PolicyEgress or spec.PolicyIngress.
	Direction string `json:"direction"`
	// Endpoint is the end this side belongs to.
	Endpoint Endpoint `json:"endpoint"`
	// Enforced is false for an address outside the cluster: no policy can
	// select it, so its side always allows.
	Enforced bool `json:"enforced"`
	// Isolated is set when at least one policy selects the pod for this
	// direction; IsolatedBy lists those policies' keys.
	Isolated   bool     `json:"isolated"`
	IsolatedBy []string `json:"isolated_by,omitempty"`
	// Allowed is this side's answer.
	Allowed bool `json:"allowed"`
	// AllowedBy lists every rule that allows the connection, in policy
	// and rule order.
	AllowedBy []RuleRef `json:"allowed_by,omitempty"`
	// Misses lists, for the isolating policies, the rules that did not
	// allow it and why: what a user reads when a connection is denied.
	Misses []RuleMiss `json:"misses,omitempty"`
	// Node is set when the other end is this pod's own node, which
	// Kubernetes always lets through whatever the policies say.
	Node bool `json:"node,omitempty"`
}

// RuleRef names one rule of one policy that allowed a connection, and the
// peer and port entries that matched.
type RuleRef struct {
	Policy    string `json:"policy"`    // policy key, namespace/name
	Direction string `json:"direction"` // spec.PolicyIngress or spec.PolicyEgress
	Rule      int    `json:"rule"`      // index in ingress[] or egress[]
	// Peer is the index in from[]/to[] of the first peer that matched, or
	// -1 when the rule lists no peers and so allows all of them.
	Peer     int    `json:"peer"`
	PeerText string `json:"peer_text,omitempty"`
	// Port is the index in ports[] of the first entry that matched, or -1
	// when the rule lists no ports and so allows all of them.
	Port     int    `json:"port"`
	PortText string `json:"port_text,omitempty"`
}

// RuleMiss is a rule of an isolating policy that did not allow the
// connection. Rule is -1 when the policy has no rule for the direction at
// all, which is how a deny-all policy reads.
type RuleMiss struct {
	Policy    string `json:"policy"`
	Direction string `json:"direction"`
	Rule      int    `json:"rule"`
	Reason    string `json:"reason"`
}

// Evaluate decides whether src may open a connection to dst on port/proto
// under r's policies, and says why on both ends. Port must be 1-65535 and
// proto TCP, UDP or SCTP (case does not matter), or port 0 and a protocol
// without ports (Portless: ICMP, PROTO/N), which is denied wherever a side
// is isolated, as the datapath does; otherwise, or when a pod key is not
// in r, the verdict carries Err.
func Evaluate(r *spec.Resolved, src, dst Endpoint, port int, proto string) Verdict {
	return newEvaluator(r).evaluate(src, dst, port, proto)
}

// PodKeys returns the keys of every pod in r, in r's (key) order: the rows
// and columns of a full reachability matrix.
func PodKeys(r *spec.Resolved) []string {
	keys := make([]string, len(r.Pods))
	for i, p := range r.Pods {
		keys[i] = p.Key
	}
	return keys
}

// evaluator indexes a model once so that a matrix of n pods costs n² rule
// walks, not n² scans of every pod and policy.
type evaluator struct {
	r        *spec.Resolved
	pods     map[string]*spec.ResolvedPod
	byIP     map[netip.Addr]*spec.ResolvedPod
	policies map[string][]*spec.ResolvedPolicy // by namespace
	prefixes map[string]netip.Prefix           // parsed ipBlock CIDRs
	// quiet decides alone, leaving out the texts that say why (rule
	// descriptions, misses): Judge.Allowed asks millions of questions.
	quiet bool
}

func newEvaluator(r *spec.Resolved) *evaluator {
	e := &evaluator{
		r:        r,
		pods:     make(map[string]*spec.ResolvedPod, len(r.Pods)),
		byIP:     make(map[netip.Addr]*spec.ResolvedPod, len(r.Pods)),
		policies: map[string][]*spec.ResolvedPolicy{},
		prefixes: map[string]netip.Prefix{},
	}
	for i := range r.Pods {
		p := &r.Pods[i]
		e.pods[p.Key] = p
		if p.IP.IsValid() {
			e.byIP[p.IP] = p
		}
	}
	for i := range r.Policies {
		p := &r.Policies[i]
		e.policies[p.Namespace] = append(e.policies[p.Namespace], p)
	}
	return e
}

// end is an endpoint resolved against the model; pod is nil outside the
// cluster.
type end struct {
	ep  Endpoint
	pod *spec.ResolvedPod
}

func (e *evaluator) resolve(ep Endpoint) (end, error) {
	if ep.Pod != "" {
		p, ok := e.pods[ep.Pod]
		if !ok {
			return end{}, fmt.Errorf("find pod %q: %w", ep.Pod, ErrUnknownPod)
		}
		return end{ep: Endpoint{Pod: p.Key, IP: p.IP}, pod: p}, nil
	}
	if !ep.IP.IsValid() {
		return end{}, fmt.Errorf("resolve endpoint: %w", ErrBadEndpoint)
	}
	ip := ep.IP.Unmap()
	if p, ok := e.byIP[ip]; ok {
		return end{ep: Endpoint{Pod: p.Key, IP: ip}, pod: p}, nil
	}
	return end{ep: Endpoint{IP: ip}}, nil
}

func (e *evaluator) evaluate(src, dst Endpoint, port int, proto string) Verdict {
	proto = strings.ToUpper(proto)
	v := Verdict{Src: src, Dst: dst, Port: port, Protocol: proto}
	proto, err := target(port, proto)
	if err != nil {
		v.Err = fmt.Errorf("evaluate: %w", err)
		return v
	}
	v.Protocol = proto
	s, err := e.resolve(src)
	if err != nil {
		v.Err = fmt.Errorf("evaluate source: %w", err)
		return v
	}
	d, err := e.resolve(dst)
	if err != nil {
		v.Err = fmt.Errorf("evaluate destination: %w", err)
		return v
	}
	v.Src, v.Dst = s.ep, d.ep
	v.Self = s.pod != nil && s.pod == d.pod
	v.Egress = e.side(spec.PolicyEgress, s, d, port, proto)
	v.Ingress = e.side(spec.PolicyIngress, d, s, port, proto)
	v.Allowed = v.Self || (v.Egress.Allowed && v.Ingress.Allowed)
	return v
}

// rule is an ingress or egress rule seen the same way: its peers (from or
// to) and its ports.
type rule struct {
	peers []spec.PolicyPeer
	ports []spec.PolicyPort
}

func rulesOf(p *spec.ResolvedPolicy, dir string) []rule {
	var out []rule
	if dir == spec.PolicyIngress {
		for _, r := range p.Spec.Ingress {
			out = append(out, rule{peers: r.From, ports: r.Ports})
		}
	} else {
		for _, r := range p.Spec.Egress {
			out = append(out, rule{peers: r.To, ports: r.Ports})
		}
	}
	return out
}

// side judges one end: self is the pod whose policies apply, peer the
// other end.
func (e *evaluator) side(dir string, self, peer end, port int, proto string) Side {
	s := Side{Direction: dir, Endpoint: self.ep}
	if self.pod == nil {
		s.Allowed = true
		return s
	}
	s.Enforced = true
	// Named ports are the destination's: the selected pod for ingress,
	// the peer for egress.
	dstPod := self.pod
	if dir == spec.PolicyEgress {
		dstPod = peer.pod
	}
	for _, pol := range e.policies[self.pod.Namespace] {
		if !slices.Contains(pol.Spec.PolicyTypes, dir) || !Matches(&pol.Spec.PodSelector, self.pod.Labels) {
			continue
		}
		s.IsolatedBy = append(s.IsolatedBy, pol.Key)
		rules := rulesOf(pol, dir)
		if Portless(proto) {
			// No rule can name it: ports are TCP, UDP or SCTP only.
			s.Misses = append(s.Misses, RuleMiss{Policy: pol.Key, Direction: dir, Rule: -1,
				Reason: "no rule can allow " + proto + " (it has no ports)"})
			continue
		}
		if len(rules) == 0 {
			s.Misses = append(s.Misses, RuleMiss{Policy: pol.Key, Direction: dir, Rule: -1,
				Reason: "no " + strings.ToLower(dir) + " rules: denies all " + strings.ToLower(dir)})
			continue
		}
		for i, r := range rules {
			pi, peerOK := e.matchPeers(pol.Namespace, r.peers, peer)
			ki, portOK := matchPorts(r.ports, port, proto, dstPod)
			if peerOK && portOK {
				ref := RuleRef{Policy: pol.Key, Direction: dir, Rule: i, Peer: pi, Port: ki}
				if pi >= 0 && !e.quiet {
					ref.PeerText = describePeer(r.peers[pi])
				}
				if ki >= 0 && !e.quiet {
					ref.PortText = describePort(r.ports[ki], dstPod)
				}
				s.AllowedBy = append(s.AllowedBy, ref)
				continue
			}
			if e.quiet {
				continue
			}
			var why []string
			if !peerOK {
				why = append(why, e.peersMiss(dir, pol.Namespace, r.peers, peer))
			}
			if !portOK {
				why = append(why, "ports do not match "+strconv.Itoa(port)+"/"+proto)
			}
			s.Misses = append(s.Misses, RuleMiss{Policy: pol.Key, Direction: dir, Rule: i, Reason: strings.Join(why, "; ")})
		}
	}
	s.Isolated = len(s.IsolatedBy) > 0
	s.Allowed = !s.Isolated || len(s.AllowedBy) > 0
	if peer.pod == nil && e.onOwnNode(self.pod, peer.ep.IP) {
		s.Node = true
		s.Allowed = true
	}
	return s
}

// onOwnNode reports whether ip is one of the addresses by which pod's node
// talks to it: its underlay address or the pod CIDR gateway it carries.
func (e *evaluator) onOwnNode(pod *spec.ResolvedPod, ip netip.Addr) bool {
	n := e.r.Node(pod.Node)
	if n == nil || !ip.IsValid() {
		return false
	}
	return ip == n.Address.Addr() || ip == n.Gateway
}

// matchPeers returns the index of the first peer that matches, -1 when
// the list is empty (every peer matches), and whether any matched.
func (e *evaluator) matchPeers(policyNS string, peers []spec.PolicyPeer, other end) (int, bool) {
	if len(peers) == 0 {
		return -1, true
	}
	for i, p := range peers {
		if e.matchPeer(policyNS, p, other) {
			return i, true
		}
	}
	return 0, false
}

func (e *evaluator) matchPeer(policyNS string, p spec.PolicyPeer, other end) bool {
	if p.IPBlock != nil {
		// Pod addresses are matched too; see the package documentation.
		return e.inBlock(p.IPBlock, other.ep.IP)
	}
	if other.pod == nil {
		// Selectors only ever select pods.
		return false
	}
	if p.NamespaceSelector == nil {
		if other.pod.Namespace != policyNS {
			return false
		}
	} else if !Matches(p.NamespaceSelector, e.namespaceLabels(other.pod.Namespace)) {
		return false
	}
	// A peer with only a namespaceSelector takes every pod there.
	return p.PodSelector == nil || Matches(p.PodSelector, other.pod.Labels)
}

// namespaceLabels returns a namespace's labels. spec lists every namespace
// it saw; the fallback keeps a hand-built model honest about the label
// Kubernetes always sets.
func (e *evaluator) namespaceLabels(ns string) map[string]string {
	if l, ok := e.r.Namespaces[ns]; ok {
		return l
	}
	return map[string]string{spec.MetadataNameLabel: ns}
}

func (e *evaluator) inBlock(b *spec.IPBlock, ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	cidr, ok := e.prefix(b.CIDR)
	if !ok || !cidr.Contains(ip) {
		return false
	}
	for _, x := range b.Except {
		if p, ok := e.prefix(x); ok && p.Contains(ip) {
			return false
		}
	}
	return true
}

// prefix parses a CIDR once. spec has validated it; one that does not parse
// matches nothing, so a bad block can only narrow a rule.
func (e *evaluator) prefix(s string) (netip.Prefix, bool) {
	if p, ok := e.prefixes[s]; ok {
		return p, p.IsValid()
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		p = netip.Prefix{}
	}
	e.prefixes[s] = p
	return p, p.IsValid()
}

// matchPorts returns the index of the first port entry that matches, -1
// when the list is empty (every port matches), and whether any matched.
func matchPorts(ports []spec.PolicyPort, port int, proto string, dstPod *spec.ResolvedPod) (int, bool) {
	if len(ports) == 0 {
		return -1, true
	}
	for i, pp := range ports {
		if matchPort(pp, port, proto, dstPod) {
			return i, true
		}
	}
	return 0, false
}

func matchPort(pp spec.PolicyPort, port int, proto string, dstPod *spec.ResolvedPod) bool {
	if protocolOf(pp.Protocol) != proto {
		return false
	}
	switch {
	case pp.Port == nil:
		return true
	case pp.Port.IsString:
		n, ok := namedPort(dstPod, pp.Port.StrVal, proto)
		return ok && n == port
	case pp.EndPort > 0:
		return pp.Port.IntVal <= port && port <= pp.EndPort
	default:
		return pp.Port.IntVal == port
	}
}

// namedPort looks a port name up in the pod's declared ports. The declared
// protocol must be the rule's: a name for 80/TCP does not open 80/UDP.
// There is nothing to look up outside the cluster.
func namedPort(pod *spec.ResolvedPod, name, proto string) (int, bool) {
	if pod == nil {
		return 0, false
	}
	for _, cp := range pod.Ports {
		if cp.Name == name && protocolOf(cp.Protocol) == proto {
			return cp.Port, true
		}
	}
	return 0, false
}

// protocolOf applies the Kubernetes default; spec has already done so for
// files, but a hand-built model may leave it empty.
func protocolOf(p string) string {
	if p == "" {
		return spec.ProtocolTCP
	}
	return p
}

func peerField(dir string) string {
	if dir == spec.PolicyIngress {
		return "from"
	}
	return "to"
}
