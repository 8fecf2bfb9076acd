package reach

import (
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/netreconcile/netreconcile/policy"
	"github.com/netreconcile/netreconcile/spec"
)

// class is a set of pods the policies cannot tell apart in either file:
// same namespace, labels, declared ports and ipBlock membership in the old
// file and in the new one (or absent from the same file). Every member
// gets the same verdict to and from every other pod, its own self aside.
type class struct {
	id           int
	ns           string
	members      []string // pod keys, in key order
	inOld, inNew bool
	// row: verdicts from the members may change, whatever the peer (their
	// labels, ports or ipBlock membership changed, or a changed policy
	// selects them for egress); col: verdicts to them (the same, or a
	// changed policy selects them for ingress).
	row, col bool
	// nsChanged: their namespace's labels changed, which only the rules of
	// other pods' policies see, and only through a namespaceSelector.
	nsChanged bool
	// sensitive: their namespace's policies see such a change (see
	// markSensitive).
	sensitive bool
	// ports are the ports and protocols both files declare for the members.
	ports          []portProto
	oldPod, newPod *spec.ResolvedPod // a member as each file has it
}

type portProto struct {
	port  int
	proto string
}

// side is one file with what the diff asks of it.
type side struct {
	r        *spec.Resolved
	judge    *policy.Judge
	backends map[portKey][]backend
}

// block is an ipBlock peer, parsed.
type block struct {
	cidr   netip.Prefix
	except []netip.Prefix
}

func (b block) contains(ip netip.Addr) bool {
	if !ip.IsValid() || !b.cidr.Contains(ip) {
		return false
	}
	return !slices.ContainsFunc(b.except, func(x netip.Prefix) bool { return x.Contains(ip) })
}

// blocks lists the distinct ipBlocks the policies of either file name:
// a pod's address matters to the policies only through them.
func blocks(files ...*spec.Resolved) []block {
	seen := map[string]bool{}
	var out []block
	add := func(peers []spec.PolicyPeer) {
		for _, p := range peers {
			if p.IPBlock == nil {
				continue
			}
			k := p.IPBlock.CIDR + " " + strings.Join(p.IPBlock.Except, " ")
			if seen[k] {
				continue
			}
			seen[k] = true
			b := block{}
			b.cidr, _ = netip.ParsePrefix(p.IPBlock.CIDR) // a bad CIDR matches nothing, as in the evaluator
			for _, x := range p.IPBlock.Except {
				if px, err := netip.ParsePrefix(x); err == nil {
					b.except = append(b.except, px)
				}
			}
			out = append(out, b)
		}
	}
	for _, r := range files {
		for _, pol := range r.Policies {
			for _, in := range pol.Spec.Ingress {
				add(in.From)
			}
			for _, eg := range pol.Spec.Egress {
				add(eg.To)
			}
		}
	}
	return out
}

// selectorKeys lists the label keys the policies' pod selectors of either
// file name, in order: no other pod label can change a verdict, so pods
// that differ only by others (a pod-template hash, a pod name) share a
// class.
func selectorKeys(files ...*spec.Resolved) []string {
	seen := map[string]bool{}
	add := func(sel *spec.LabelSelector) {
		if sel == nil {
			return
		}
		for k := range sel.MatchLabels {
			seen[k] = true
		}
		for _, e := range sel.MatchExpressions {
			seen[e.Key] = true
		}
	}
	peers := func(ps []spec.PolicyPeer) {
		for _, p := range ps {
			add(p.PodSelector)
		}
	}
	for _, r := range files {
		for _, pol := range r.Policies {
			add(&pol.Spec.PodSelector)
			for _, in := range pol.Spec.Ingress {
				peers(in.From)
			}
			for _, eg := range pol.Spec.Egress {
				peers(eg.To)
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// attrs spells everything the evaluator reads of a pod, its key, node
// and own address aside: the labels the selectors name, the declared
// ports and ipBlock membership; "-" for a pod the file lacks.
func attrs(p *spec.ResolvedPod, keys []string, bl []block) string {
	if p == nil {
		return "-"
	}
	var b strings.Builder
	for _, k := range keys {
		if v, ok := p.Labels[k]; ok {
			b.WriteString(k + "=" + v + "\x01")
		}
	}
	b.WriteByte('|')
	for _, cp := range p.Ports {
		b.WriteString(cp.Name + "/" + strconv.Itoa(cp.Port) + "/" + protocolOr(cp.Protocol) + "\x01")
	}
	b.WriteByte('|')
	for _, x := range bl {
		if x.contains(p.IP) {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	}
	return b.String()
}

// buildClasses puts every pod of either file in its class.
func (m *model) buildClasses() {
	bl := blocks(m.old.r, m.new.r)
	keys := selectorKeys(m.old.r, m.new.r)
	oldPods, newPods := podMap(m.old.r), podMap(m.new.r)
	pods := slices.Collect(maps.Keys(oldPods))
	for k := range newPods {
		if oldPods[k] == nil {
			pods = append(pods, k)
		}
	}
	slices.Sort(pods)
	byKey := map[string]*class{}
	m.classOf = make(map[string]*class, len(pods))
	for _, k := range pods {
		op, np := oldPods[k], newPods[k]
		ns := k[:strings.IndexByte(k, '/')]
		ao, an := attrs(op, keys, bl), attrs(np, keys, bl)
		ck := ns + "\x00" + ao + "\x00" + an
		c := byKey[ck]
		if c == nil {
			c = &class{id: len(m.classes), ns: ns, inOld: op != nil, inNew: np != nil, oldPod: op, newPod: np}
			c.row, c.col = ao != an, ao != an
			c.nsChanged = !maps.Equal(m.old.r.Namespaces[ns], m.new.r.Namespaces[ns])
			if op != nil && np != nil {
				c.ports = commonPorts(op.Ports, np.Ports)
			}
			byKey[ck] = c
			m.classes = append(m.classes, c)
		}
		c.members = append(c.members, k)
		m.classOf[k] = c
	}
}

func podMap(r *spec.Resolved) map[string]*spec.ResolvedPod {
	m := make(map[string]*spec.ResolvedPod, len(r.Pods))
	for i := range r.Pods {
		m[r.Pods[i].Key] = &r.Pods[i]
	}
	return m
}

// commonPorts lists the ports and protocols declared in both lists, in
// port order.
func commonPorts(a, b []spec.ContainerPort) []portProto {
	var out []portProto
	for _, x := range a {
		pp := portProto{x.Port, protocolOr(x.Protocol)}
		if slices.Contains(out, pp) {
			continue
		}
		if slices.ContainsFunc(b, func(y spec.ContainerPort) bool { return y.Port == pp.port && protocolOr(y.Protocol) == pp.proto }) {
			out = append(out, pp)
		}
	}
	slices.SortFunc(out, func(x, y portProto) int {
		if x.port != y.port {
			return x.port - y.port
		}
		return strings.Compare(x.proto, y.proto)
	})
	return out
}

// markPolicies flags the classes a policy that differs between the files
// selects, in either version: rows for egress, columns for ingress.
func (m *model) markPolicies() {
	byNS := map[string][]*class{}
	for _, c := range m.classes {
		byNS[c.ns] = append(byNS[c.ns], c)
	}
	oldPol, newPol := byKey(m.old.r.Policies, polKey), byKey(m.new.r.Policies, polKey)
	mark := func(p spec.ResolvedPolicy, pod func(*class) *spec.ResolvedPod) {
		egress := slices.Contains(p.Spec.PolicyTypes, spec.PolicyEgress)
		ingress := slices.Contains(p.Spec.PolicyTypes, spec.PolicyIngress)
		for _, c := range byNS[p.Namespace] {
			if rp := pod(c); rp != nil && policy.Matches(&p.Spec.PodSelector, rp.Labels) {
				c.row = c.row || egress
				c.col = c.col || ingress
			}
		}
	}
	for k, op := range oldPol {
		np, ok := newPol[k]
		if ok && reflect.DeepEqual(op.Spec, np.Spec) {
			continue
		}
		mark(*op, func(c *class) *spec.ResolvedPod { return c.oldPod })
		if ok {
			mark(*np, func(c *class) *spec.ResolvedPod { return c.newPod })
		}
	}
	for k, np := range newPol {
		if _, ok := oldPol[k]; !ok {
			mark(*np, func(c *class) *spec.ResolvedPod { return c.newPod })
		}
	}
}

// markSensitive finds the namespaces whose policies, in either file, have
// a peer namespaceSelector that matches a namespace whose labels changed
// in one file and not in the other: only verdicts between a pod of a
// changed namespace and a pod of such a namespace can change through it.
func (m *model) markSensitive() {
	sensitive := map[string]bool{}
	defer func() {
		for _, c := range m.classes {
			c.sensitive = sensitive[c.ns]
		}
	}()
	var changed []string
	for ns, l := range m.old.r.Namespaces {
		if nl, ok := m.new.r.Namespaces[ns]; ok && !maps.Equal(l, nl) {
			changed = append(changed, ns)
		}
	}
	if len(changed) == 0 {
		return
	}
	sees := func(peers []spec.PolicyPeer) bool {
		return slices.ContainsFunc(peers, func(p spec.PolicyPeer) bool {
			return p.NamespaceSelector != nil && slices.ContainsFunc(changed, func(ns string) bool {
				return policy.Matches(p.NamespaceSelector, m.old.r.Namespaces[ns]) != policy.Matches(p.NamespaceSelector, m.new.r.Namespaces[ns])
			})
		})
	}
	for _, r := range []*spec.Resolved{m.old.r, m.new.r} {
		for _, pol := range r.Policies {
			if sensitive[pol.Namespace] {
				continue
			}
			for _, in := range pol.Spec.Ingress {
				sensitive[pol.Namespace] = sensitive[pol.Namespace] || sees(in.From)
			}
			for _, eg := range pol.Spec.Egress {
				sensitive[pol.Namespace] = sensitive[pol.Namespace] || sees(eg.To)
			}
		}
	}
}

// mayChange reports whether a verdict from a member of a to a member of b
// can differ between the files.
func (m *model) mayChange(a, b *class) bool {
	return a.row || b.col || (a.nsChanged && b.sensitive) || (b.nsChanged && a.sensitive)
}

// rowish reports whether some verdict from a's members may change.
func (m *model) rowish(a *class) bool { return a.row || a.nsChanged }
