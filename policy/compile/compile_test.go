package compile

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/internal/policymodel"
	"github.com/netreconcile/netreconcile/policy"
	"github.com/netreconcile/netreconcile/spec"
)

// datapath answers connection attempts from compiled programs the way
// bpf/policy.h does (pol_judge): each node judges its own pods' sides,
// the identity map is longest-prefix, rules are port blocks.
type datapath struct {
	r     *spec.Resolved
	progs map[string]*Program // by node
}

func build(t *testing.T, r *spec.Resolved) *datapath {
	t.Helper()
	d := &datapath{r: r, progs: map[string]*Program{}}
	for _, n := range r.Nodes {
		p, err := Node(r, n.Name)
		if err != nil {
			t.Fatal(err)
		}
		d.progs[n.Name] = p
	}
	return d
}

func (d *datapath) podAt(ip netip.Addr) *spec.ResolvedPod {
	for i := range d.r.Pods {
		if d.r.Pods[i].IP == ip {
			return &d.r.Pods[i]
		}
	}
	return nil
}

func lookupID(p *Program, ip netip.Addr) uint32 {
	best, id := -1, World
	for _, e := range p.Identities {
		if e.Prefix.Contains(ip) && e.Prefix.Bits() > best {
			best, id = e.Prefix.Bits(), e.ID
		}
	}
	return id
}

// judge is one side: local is the pod whose side it is, remote the other
// end, port the destination port.
func (d *datapath) judge(local, remote netip.Addr, dir string, port int, proto string) bool {
	pod := d.podAt(local)
	if pod == nil {
		return true // not a pod: nobody judges this side
	}
	p := d.progs[pod.Node]
	var side *Side
	for i := range p.Sides {
		if p.Sides[i].IP == local && p.Sides[i].Dir == dir {
			side = &p.Sides[i]
		}
	}
	if side == nil {
		return true
	}
	id := lookupID(p, remote)
	if id == Host {
		return true
	}
	for _, r := range side.Rules {
		if (r.Remote == id || r.Remote == Any) && r.Proto == proto {
			size := 1 << (16 - int(r.PortBits))
			if port >= int(r.Port) && port < int(r.Port)+size {
				return true
			}
		}
	}
	return false
}

func (d *datapath) allowed(src, dst netip.Addr, port int, proto string) bool {
	if src == dst {
		return true
	}
	return d.judge(src, dst, Egress, port, proto) && d.judge(dst, src, Ingress, port, proto)
}

func load(t *testing.T, sc policymodel.Scenario) *spec.Resolved {
	t.Helper()
	src := policymodel.YAML(sc, policymodel.Options{})
	r, err := spec.LoadBytes("model.yaml", []byte(src))
	if err != nil {
		t.Fatalf("load: %v\n%s", err, src)
	}
	return r
}

// endpoints are the pods plus addresses outside them: both nodes'
// underlay addresses and gateways, an address in a pod CIDR that no pod
// has, and one outside the cluster.
func endpoints(r *spec.Resolved) []netip.Addr {
	var out []netip.Addr
	for _, p := range r.Pods {
		out = append(out, p.IP)
	}
	for _, n := range r.Nodes {
		out = append(out, n.Address.Addr(), n.Gateway)
	}
	return append(out, netip.MustParseAddr("10.244.2.99"), netip.MustParseAddr("192.0.2.7"))
}

// TestScenariosAgainstEvaluator compiles every scenario of the standard
// model for both nodes and compares the datapath's answer (simulated) with
// the evaluator's for every pair of endpoints, pods and other addresses,
// on ports in and around the ones the scenarios use, for every protocol.
func TestScenariosAgainstEvaluator(t *testing.T) {
	ports := []int{1, 79, 80, 81, 82, 90, 91, 65535}
	for _, sc := range append(slices.Clone(policymodel.Scenarios), extraScenarios...) {
		t.Run(sc.Name, func(t *testing.T) {
			r := load(t, sc)
			d := build(t, r)
			eps := endpoints(r)
			bad := 0
			for _, proto := range spec.Protocols {
				for _, port := range ports {
					for _, s := range eps {
						for _, dd := range eps {
							want := policy.Evaluate(r, policy.AddrEndpoint(s), policy.AddrEndpoint(dd), port, proto)
							if want.Err != nil {
								t.Fatal(want.Err)
							}
							got := d.allowed(s, dd, port, proto)
							if got != want.Allowed && bad < 10 {
								bad++
								t.Errorf("%s -> %s %d/%s: compiled %v, evaluator %v\n%s", s, dd, port, proto, got, want.Allowed, want)
							}
						}
					}
				}
			}
			if t.Failed() {
				for _, p := range d.progs {
					t.Logf("%s", dumpProgram(p))
				}
			}
		})
	}
}

// extraScenarios cover what the standard scenarios leave out: addresses
// outside the pods in ipBlocks (nodes, the world), excepts that are pods,
// IPv6 blocks, named egress ports through ipBlocks, wide port ranges.
var extraScenarios = []policymodel.Scenario{
	{
		Name: "ipBlock everything but the pod CIDR, both ways",
		Policies: `
  - name: outside-only
    namespace: x
    spec:
      podSelector: {}
      policyTypes: [Ingress, Egress]
      ingress: [{from: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.244.0.0/16]}}]}]
      egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.244.0.0/16, 172.31.1.3/32]}}]}]
`,
	},
	{
		Name: "excepts that are pods, nested blocks in two policies",
		Policies: `
  - name: a
    namespace: y
    spec:
      podSelector: {}
      ingress: [{from: [{ipBlock: {cidr: 10.244.1.0/24, except: [10.244.1.22/32, 10.244.1.32/30]}}]}]
  - name: b
    namespace: y
    spec:
      podSelector: {matchLabels: {pod: b}}
      ingress: [{from: [{ipBlock: {cidr: 10.244.1.32/31}}, {ipBlock: {cidr: 10.244.2.0/23}}], ports: [{port: 81, protocol: UDP}]}]
  - name: v6
    namespace: y
    spec:
      podSelector: {matchLabels: {pod: c}}
      ingress: [{from: [{ipBlock: {cidr: "fd00::/8"}}]}]
`,
	},
	{
		Name:    "named egress ports through ipBlocks and to any peer",
		WebPort: map[string]int{"y/b": 81, "z/c": 90},
		Policies: `
  - name: out
    namespace: z
    spec:
      podSelector: {}
      policyTypes: [Egress]
      egress:
        - to: [{ipBlock: {cidr: 10.244.1.0/24}}, {ipBlock: {cidr: 192.0.2.0/24}}]
          ports: [{port: web}]
        - ports: [{port: serve-81-udp, protocol: UDP}, {port: nope}]
`,
	},
	{
		Name: "wide port ranges and protocol-only ports",
		Policies: `
  - name: ranges
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      policyTypes: [Ingress, Egress]
      ingress: [{ports: [{port: 1, endPort: 80}, {protocol: SCTP}]}]
      egress: [{to: [{namespaceSelector: {}}], ports: [{port: 81, endPort: 65535, protocol: UDP}]}]
`,
	},
	{
		Name: "node addresses in a block and selectors matching nothing",
		Policies: `
  - name: nodes
    namespace: z
    spec:
      podSelector: {}
      policyTypes: [Ingress, Egress]
      ingress: [{from: [{ipBlock: {cidr: 172.31.1.0/24}}, {podSelector: {matchLabels: {pod: nobody}}}]}]
      egress: [{to: [{ipBlock: {cidr: 172.31.0.0/16, except: [172.31.1.2/32]}}, {namespaceSelector: {matchLabels: {ns: none}}}]}]
`,
	},
}

func dumpProgram(p *Program) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node %s revision %08x\n", p.Node, p.Revision)
	for _, id := range p.Identities {
		fmt.Fprintf(&b, "  id %-18s %08x %s\n", id.Prefix, id.ID, id.Class)
	}
	for _, s := range p.Sides {
		fmt.Fprintf(&b, "  %s %s %s:", s.Pod, s.IP, s.Dir)
		for _, r := range s.Rules {
			fmt.Fprintf(&b, " %s", r)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestPortBlocks(t *testing.T) {
	for _, c := range []struct {
		first, last int
		want        string
	}{
		{80, 80, "80"},
		{80, 81, "80-81"},
		{79, 80, "79 80"},
		{81, 90, "81 82-83 84-87 88-89 90"},
		{1, 65535, "1 2-3 4-7 8-15 16-31 32-63 64-127 128-255 256-511 512-1023 1024-2047 2048-4095 4096-8191 8192-16383 16384-32767 32768-65535"},
		{0, 65535, "all"},
	} {
		var got []string
		for _, b := range PortBlocks(c.first, c.last) {
			got = append(got, PortsText(uint16(b[0]), uint8(b[1])))
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("PortBlocks(%d, %d) = %v, want %s", c.first, c.last, got, c.want)
		}
	}
}

func TestRuleText(t *testing.T) {
	for _, r := range []Rule{
		{Remote: Any, Proto: "TCP"},
		{Remote: 0x1f2e3d4c, Proto: "UDP", Port: 80, PortBits: 16},
		{Remote: 7, Proto: "SCTP", Port: 64, PortBits: 10},
		{Remote: Any, Proto: "TCP", Port: 32768, PortBits: 1},
	} {
		got, err := ParseRule(r.String())
		if err != nil || got != r {
			t.Errorf("ParseRule(%q) = %+v, %v; want %+v", r.String(), got, err, r)
		}
	}
	for _, s := range []string{"", "any/TCP", "zz/TCP/80", "any/ICMP/80", "any/TCP/80-82", "any/TCP/81-82", "any/TCP/x"} {
		if _, err := ParseRule(s); err == nil {
			t.Errorf("ParseRule(%q): no error", s)
		}
	}
}

// TestStability: identities depend on a class alone, so a policy change
// rewrites only the entries it is about, and the revision follows.
func TestStability(t *testing.T) {
	base := policymodel.Scenario{Policies: `
  - name: a-from-y
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]
`}
	changed := base
	changed.Policies = strings.Replace(base.Policies, "ns: y", "ns: z", 1)
	p1, err := Node(load(t, base), "node-1")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := Node(load(t, changed), "node-1")
	if err != nil {
		t.Fatal(err)
	}
	// The entries of the pods both name (the node's own) keep their
	// identities; the others follow the peers named.
	ids1, ids2 := identityMap(p1), identityMap(p2)
	for prefix, id := range ids1 {
		if other, ok := ids2[prefix]; ok && other != id {
			t.Errorf("%s: identity %08x became %08x with a label-only policy change", prefix, id, other)
		}
	}
	for _, c := range []struct {
		ids       map[netip.Prefix]uint32
		has, lack string
	}{{ids1, "10.244.2.21/32", "10.244.2.32/32"}, {ids2, "10.244.2.32/32", "10.244.2.21/32"}} {
		if _, ok := c.ids[netip.MustParsePrefix(c.has)]; !ok {
			t.Errorf("%s (a named peer) has no entry", c.has)
		}
		if _, ok := c.ids[netip.MustParsePrefix(c.lack)]; ok {
			t.Errorf("%s (a remote pod no rule names) has an entry", c.lack)
		}
	}
	if p1.Revision == p2.Revision {
		t.Error("revision did not change with the rules")
	}
	again, _ := Node(load(t, base), "node-1")
	if again.Revision != p1.Revision {
		t.Error("revision is not deterministic")
	}
	if len(p1.Sides) != 1 || p1.Sides[0].Pod != "x/a" || p1.Sides[0].Dir != Ingress || len(p1.Sides[0].Rules) != 3*3 {
		t.Errorf("sides: want x/a ingress with 3 peers x 3 protocols:\n%s", dumpProgram(p1))
	}
	// node-2 hosts no pod the policy selects: nothing to hold.
	other, _ := Node(load(t, base), "node-2")
	if len(other.Sides) != 0 || len(other.Identities) != 0 {
		t.Errorf("node-2 got entries:\n%s", dumpProgram(other))
	}
	if _, err := Node(load(t, base), "nope"); err == nil {
		t.Error("unknown node: no error")
	}
}

func identityMap(p *Program) map[netip.Prefix]uint32 {
	out := map[netip.Prefix]uint32{}
	for _, id := range p.Identities {
		out[id.Prefix] = id.ID
	}
	return out
}

// TestClusterSharesAcrossNodes: a Cluster compiling every node, in any
// order and again, gives each node what compiling it alone gives, also
// when the nodes' rules name different ipBlocks (separate tables) and
// their host addresses replace a pod or block entry of the shared table.
func TestClusterSharesAcrossNodes(t *testing.T) {
	tables := 0
	for _, sc := range append(slices.Clone(policymodel.Scenarios), extraScenarios...) {
		r := load(t, sc)
		cl := NewCluster(r)
		for _, node := range []string{"node-2", "node-1", "node-2", "node-1"} {
			got, err := cl.Node(node)
			if err != nil {
				t.Fatal(err)
			}
			want, err := Node(r, node)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := dumpProgram(got), dumpProgram(want); g != w {
				t.Errorf("%s: %s shared:\n%s\nalone:\n%s", sc.Name, node, g, w)
			}
		}
		tables = max(tables, len(cl.tables))
	}
	if tables < 2 {
		t.Errorf("no scenario gives the nodes different blocks (at most %d table): the test misses that case", tables)
	}
}

// TestIdentitiesFollowRules: a node holds a pod's address only for its own
// pods and for the pods whose class one of its rules names (and where the
// address is an ipBlock prefix): other nodes' pods that its rules cannot
// tell apart from the world are left out, and the scenarios above show
// the verdicts stay the same.
func TestIdentitiesFollowRules(t *testing.T) {
	left := 0
	for _, sc := range append(slices.Clone(policymodel.Scenarios), extraScenarios...) {
		r := load(t, sc)
		d := build(t, r)
		for node, p := range d.progs {
			named := map[uint32]bool{}
			for _, s := range p.Sides {
				for _, ru := range s.Rules {
					named[ru.Remote] = true
				}
			}
			blockPrefix := map[netip.Prefix]bool{}
			for _, pol := range r.Policies {
				for _, peer := range allPeers(pol.Spec) {
					if peer.IPBlock == nil {
						continue
					}
					if b, ok := parseBlock(peer.IPBlock); ok {
						blockPrefix[b.cidr] = true
						for _, e := range b.except {
							blockPrefix[e] = true
						}
					}
				}
			}
			ids := identityMap(p)
			for _, pod := range r.Pods {
				pfx := netip.PrefixFrom(pod.IP, 32)
				id, held := ids[pfx]
				if len(p.Sides) == 0 || id == Host || blockPrefix[pfx] {
					continue
				}
				if want := pod.Node == node || named[id]; held != want {
					t.Errorf("%s: node %s: pod %s at %s held %v, want %v\n%s", sc.Name, node, pod.Key, pod.IP, held, want, dumpProgram(p))
				}
				if !held {
					left++
				}
			}
		}
	}
	if left == 0 {
		t.Error("no scenario leaves a remote pod out: the test misses that case")
	}
}

func allPeers(s spec.PolicySpec) []spec.PolicyPeer {
	var out []spec.PolicyPeer
	for _, r := range s.Ingress {
		out = append(out, r.From...)
	}
	for _, r := range s.Egress {
		out = append(out, r.To...)
	}
	return out
}

// TestSidesOfOneKind: sides selected by the same policies share their
// rules (compiled once), unless their pods' ports differ: a named
// ingress port is each selected pod's own number.
func TestSidesOfOneKind(t *testing.T) {
	r, err := spec.LoadBytes("kinds.yaml", []byte(`apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16}
nodes:
  - {name: a, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}
  - {name: b, address: 172.31.1.3/24, podCIDR: 10.244.2.0/24}
pods:
  - {name: a1, namespace: x, node: a, ip: 10.244.1.11, labels: {app: web}, ports: [{name: web, port: 8080}]}
  - {name: a2, namespace: x, node: a, ip: 10.244.1.12, labels: {app: web}, ports: [{name: web, port: 8081}]}
  - {name: b1, namespace: x, node: b, ip: 10.244.2.11, labels: {app: web}, ports: [{name: web, port: 8080}]}
  - {name: b2, namespace: x, node: b, ip: 10.244.2.12, labels: {app: web}, ports: [{name: web, port: 8081, protocol: UDP}]}
policies:
  - {name: web, namespace: x, spec: {podSelector: {matchLabels: {app: web}}, ingress: [{ports: [{port: web}]}]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	cl := NewCluster(r)
	got := map[string]string{}
	for _, node := range []string{"a", "b"} {
		prog, err := cl.Node(node)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range prog.Sides {
			var rules []string
			for _, ru := range s.Rules {
				rules = append(rules, ru.String())
			}
			got[s.Pod] = strings.Join(rules, " ")
		}
	}
	want := map[string]string{"x/a1": "any/TCP/8080", "x/a2": "any/TCP/8081", "x/b1": "any/TCP/8080", "x/b2": ""}
	if !maps.Equal(got, want) {
		t.Errorf("rules by pod: %v, want %v", got, want)
	}
}
