package compile

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/netreconcile/netreconcile/internal/scaletopo"
	"github.com/netreconcile/netreconcile/spec"
)

// editFile is a topology whose pods a test edits: the text around the
// pods list, kept as is, and the pods, written out again for each
// version through one spec.Parser (as the daemon reads a file: unchanged
// items keep their decoded labels).
type editFile struct {
	head, tail string
	pods       []spec.ResolvedPod
	nodes      []spec.ResolvedNode
	nss        []string
	// toggles are texts of head or tail that an edit swaps one for the
	// other: a namespace's labels, a policy's ports or blocks.
	toggles [][2]string
	parser  spec.Parser
	rng     *rand.Rand
	serial  int
}

// newEditFile splits text (a file whose pods are one list, "pods:" to
// the next top-level key) and reads its pods.
func newEditFile(t *testing.T, text string, seed uint64) *editFile {
	t.Helper()
	start := strings.Index(text, "\npods:\n") + 1
	end := start + len("pods:\n")
	for end < len(text) && (text[end] == ' ' || text[end] == '\n') {
		end += strings.IndexByte(text[end:], '\n') + 1
	}
	f := &editFile{head: text[:start], tail: text[end:], rng: rand.New(rand.NewPCG(seed, 1))}
	r := f.load(t, text)
	f.pods, f.nodes = slices.Clone(r.Pods), r.Nodes
	for ns := range r.Namespaces {
		f.nss = append(f.nss, ns)
	}
	slices.Sort(f.nss)
	return f
}

func (f *editFile) load(t *testing.T, text string) *spec.Resolved {
	t.Helper()
	r, _, err := f.parser.Load([]spec.Source{{Name: "edit.yaml", Data: []byte(text)}})
	if err != nil {
		t.Fatalf("load: %v\n%s", err, text)
	}
	return r
}

// text writes the file with the pods as they are now.
func (f *editFile) text() string {
	var b strings.Builder
	b.WriteString(f.head)
	b.WriteString("pods:\n")
	for _, p := range f.pods {
		fmt.Fprintf(&b, "  - {name: %s, namespace: %s, node: %s, ip: %s, mode: veth, labels: {", p.Name, p.Namespace, p.Node, p.IP)
		for i, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range p.Labels {
				if !yield(k) {
					return
				}
			}
		}) {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s: %s", k, p.Labels[k])
		}
		b.WriteString("}, ports: [")
		for i, cp := range p.Ports {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "{name: %s, port: %d, protocol: %s}", cp.Name, cp.Port, cp.Protocol)
		}
		b.WriteString("]}\n")
	}
	b.WriteString(f.tail)
	return b.String()
}

// freeIP picks an address of node's podCIDR no pod has.
func (f *editFile) freeIP(node string) netip.Addr {
	n := f.nodes[slices.IndexFunc(f.nodes, func(n spec.ResolvedNode) bool { return n.Name == node })]
	for {
		a := n.PodCIDR.Addr().As4()
		a[3] = byte(2 + f.rng.IntN(250))
		ip := netip.AddrFrom4(a)
		if !slices.ContainsFunc(f.pods, func(p spec.ResolvedPod) bool { return p.IP == ip }) {
			return ip
		}
	}
}

// labelPool and portPool are what edits draw from: few values, so that
// pods often land in existing classes as well as new ones.
var (
	labelPool = [][2]string{{"app", "a0"}, {"app", "a1"}, {"app", "a2"}, {"app", "web"}, {"tier", "db"}, {"tier", "front"},
		{"instance", "x1"}, {"instance", "x2"}, {"pod", "a"}, {"pod", "b"}}
	portPool = []spec.ContainerPort{{Name: "web", Port: 8080, Protocol: "TCP"}, {Name: "web", Port: 81, Protocol: "TCP"},
		{Name: "metrics", Port: 9090, Protocol: "TCP"}, {Name: "dns", Port: 53, Protocol: "UDP"}}
)

func (f *editFile) randomLabels() map[string]string {
	l := map[string]string{}
	for range 1 + f.rng.IntN(3) {
		kv := labelPool[f.rng.IntN(len(labelPool))]
		l[kv[0]] = kv[1]
	}
	return l
}

func (f *editFile) randomPorts() []spec.ContainerPort {
	var ports []spec.ContainerPort
	for _, cp := range portPool {
		if f.rng.IntN(3) == 0 && !slices.ContainsFunc(ports, func(o spec.ContainerPort) bool { return o.Name == cp.Name }) {
			ports = append(ports, cp)
		}
	}
	return ports
}

// edit changes one pod at random and names the change.
func (f *editFile) edit() string {
	i := f.rng.IntN(len(f.pods))
	p := &f.pods[i]
	op := f.rng.IntN(7)
	if len(f.pods) < 4 {
		op = 0 // never empty
	}
	if op == 6 && len(f.toggles) > 0 {
		tg := f.toggles[f.rng.IntN(len(f.toggles))]
		if !strings.Contains(f.head+f.tail, tg[0]) {
			tg[0], tg[1] = tg[1], tg[0]
		}
		f.head, f.tail = strings.Replace(f.head, tg[0], tg[1], 1), strings.Replace(f.tail, tg[0], tg[1], 1)
		return "swap " + tg[0] + " for " + tg[1]
	}
	switch op {
	case 0:
		f.serial++
		node := f.nodes[f.rng.IntN(len(f.nodes))].Name
		np := spec.ResolvedPod{Name: fmt.Sprintf("e%d", f.serial), Namespace: f.nss[f.rng.IntN(len(f.nss))], Node: node,
			IP: f.freeIP(node), Labels: f.randomLabels(), Ports: f.randomPorts()}
		f.pods = append(f.pods, np)
		return "add " + np.Namespace + "/" + np.Name
	case 1:
		name := p.Key
		f.pods = slices.Delete(f.pods, i, i+1)
		return "remove " + name
	case 2:
		p.Labels = f.randomLabels()
		return "relabel " + p.Key
	case 3:
		p.Ports = f.randomPorts()
		return "ports of " + p.Key
	case 4:
		p.Node = f.nodes[f.rng.IntN(len(f.nodes))].Name
		p.IP = f.freeIP(p.Node)
		return "move " + p.Key
	default:
		p.IP = f.freeIP(p.Node)
		return "readdress " + p.Key
	}
}

// changedNamespaces are the namespaces of the pods a and b do not hold
// alike, found the slow way.
func changedNamespaces(a, b *spec.Resolved) map[string]bool {
	out := map[string]bool{}
	byKey := func(r *spec.Resolved) map[string]spec.ResolvedPod {
		m := map[string]spec.ResolvedPod{}
		for _, p := range r.Pods {
			m[p.Key] = p
		}
		return m
	}
	pa, pb := byKey(a), byKey(b)
	for key, p := range pa {
		if q, ok := pb[key]; !ok || !reflect.DeepEqual(p.Labels, q.Labels) || !reflect.DeepEqual(p.Ports, q.Ports) ||
			p.IP != q.IP || p.Node != q.Node {
			out[p.Namespace] = true
		}
	}
	for key, q := range pb {
		if _, ok := pa[key]; !ok {
			out[q.Namespace] = true
		}
	}
	return out
}

// checkCompact checks that a compacted cl keeps no pod class's
// description.
func checkCompact(t *testing.T, cl *Cluster) {
	t.Helper()
	for _, tb := range cl.tables {
		for _, k := range tb.classes {
			if len(k.members) > 0 && k.desc != nil {
				t.Fatalf("compacted, class %q kept its description", *k.desc)
			}
		}
	}
}

// checkSame compares cl's programs for nodes with a fresh compile of r.
func checkSame(t *testing.T, cl *Cluster, r *spec.Resolved, nodes []string, step string) {
	t.Helper()
	fresh := NewCluster(r)
	for _, n := range nodes {
		got, err := cl.Node(n)
		if err != nil {
			t.Fatal(err)
		}
		want, err := fresh.Node(n)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("after %s: node %s: carried\n%s\nfresh\n%s", step, n, dumpProgram(got), dumpProgram(want))
		}
	}
}

// deltaTopology has what a class table holds beyond labels: ipBlocks
// with excepts (one a pod's /32), named ports both ways, namespace
// selectors and expressions, egress to any peer by port name.
const deltaTopology = `apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16}
namespaces:
  - {name: x, labels: {team: a}}
  - {name: y, labels: {team: b}}
  - {name: z, labels: {team: a, env: prod}}
nodes:
  - {name: n0, address: 172.31.1.1/24, podCIDR: 10.244.0.0/24}
  - {name: n1, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}
  - {name: n2, address: 172.31.1.3/24, podCIDR: 10.244.2.0/24}
pods:
  - {name: a, namespace: x, node: n0, ip: 10.244.0.10, labels: {pod: a, app: a0}, ports: [{name: web, port: 8080}]}
  - {name: b, namespace: y, node: n1, ip: 10.244.1.33, labels: {pod: b, app: a1}, ports: [{name: web, port: 81}]}
  - {name: c, namespace: z, node: n2, ip: 10.244.2.5, labels: {app: a2, tier: db}, ports: [{name: dns, port: 53, protocol: UDP}]}
  - {name: d, namespace: x, node: n1, ip: 10.244.1.20, labels: {app: a1, tier: front}}
  - {name: e, namespace: z, node: n0, ip: 10.244.0.11, labels: {app: web}, ports: [{name: metrics, port: 9090}]}
  - {name: f, namespace: y, node: n2, ip: 10.244.2.6, labels: {app: a0, instance: x1}}
policies:
  - name: blocks
    namespace: x
    spec:
      podSelector: {matchLabels: {app: a0}}
      ingress: [{from: [{ipBlock: {cidr: 10.244.1.0/24, except: [10.244.1.32/30, 10.244.1.20/32]}}, {ipBlock: {cidr: 10.244.2.5/32}}], ports: [{port: web}]}]
  - name: teams
    namespace: y
    spec:
      podSelector: {matchExpressions: [{key: app, operator: In, values: [a1, a0]}]}
      policyTypes: [Ingress, Egress]
      ingress: [{from: [{namespaceSelector: {matchLabels: {team: a}}, podSelector: {matchLabels: {app: web}}}], ports: [{port: metrics}, {port: 80}]}]
      egress: [{to: [{namespaceSelector: {matchLabels: {env: prod}}}], ports: [{port: dns, protocol: UDP}]}, {ports: [{port: web}]}]
  - name: local
    namespace: z
    spec:
      podSelector: {}
      ingress: [{from: [{podSelector: {matchExpressions: [{key: tier, operator: Exists}]}}, {ipBlock: {cidr: 10.244.0.0/23, except: [10.244.0.10/32]}}]}]
`

// TestNewClusterFrom: after each random pod edit, the programs of a
// carried Cluster are those of one compiled from scratch, and most edits
// are carried rather than built again.
func TestNewClusterFrom(t *testing.T) {
	for name, c := range map[string]struct {
		text    string
		toggles [][2]string
	}{
		"hand-written": {deltaTopology, [][2]string{{"env: prod", "env: dev"}, {"{port: 80}", "{port: 88}"},
			{"cidr: 10.244.2.5/32", "cidr: 10.244.2.0/28"}, {"team: b}", "team: a}"},
			{"matchLabels: {app: web}}", "matchLabels: {app: a2}}"}, {"to: [{namespaceSelector: {matchLabels: {env: prod}}}]", "to: [{namespaceSelector: {matchLabels: {team: b}}}]"}}},
		"scaletopo": {string(scaletopo.Nodes(4)), [][2]string{{"team: t1, role: infra", "team: t1, role: app"},
			{"ports: [{port: 8080}]}]}}", "ports: [{port: 8081}]}]}}"}, {"matchLabels: {app: a1}}", "matchLabels: {app: a3}}"},
			{"from: [{podSelector: {matchLabels: {app: a1}}}", "from: [{podSelector: {matchLabels: {app: a4}}}"}}},
	} {
		t.Run(name, func(t *testing.T) {
			f := newEditFile(t, c.text, 7)
			f.toggles = c.toggles
			for _, tg := range c.toggles {
				if !strings.Contains(c.text, tg[0]) {
					t.Fatalf("toggle %q: not in the file", tg[0])
				}
			}
			f.nss = append(f.nss, "w") // a namespace only pods name
			r := f.load(t, f.text())
			cl := NewCluster(r)
			var nodes []string
			for _, n := range f.nodes {
				nodes = append(nodes, n.Name)
			}
			checkSame(t, cl, r, nodes, "nothing")
			carried, steps := 0, 300
			for step := range steps {
				var what []string
				for range 1 + f.rng.IntN(2) {
					what = append(what, f.edit())
				}
				last := r
				r = f.load(t, f.text())
				f.pods = slices.Clone(r.Pods) // edits must not change r
				if f.rng.IntN(2) == 0 {
					cl.Compact() // as a daemon keeps it
					checkCompact(t, cl)
				}
				cl = NewClusterFrom(cl, r)
				if got, ok := cl.ChangedNamespaces(); !ok || !maps.Equal(got, changedNamespaces(last, r)) {
					t.Fatalf("step %d: changed namespaces %v, want %v", step, got, changedNamespaces(last, r))
				}
				if len(cl.tables) > 0 {
					carried++
				}
				// Some nodes only: a table no node asked for is not carried.
				some := slices.DeleteFunc(slices.Clone(nodes), func(string) bool { return f.rng.IntN(3) == 0 })
				checkSame(t, cl, r, some, fmt.Sprintf("step %d (%s)", step, strings.Join(what, ", ")))
			}
			if carried < steps/2 {
				t.Errorf("%d of %d edits carried a table, want most", carried, steps)
			}
		})
	}
}

// TestNewClusterFromScope: a file whose policies or namespaces changed
// is carried (what the table caches of them is made again), one most of
// whose pods changed is built again; the same file is kept.
func TestNewClusterFromScope(t *testing.T) {
	base := deltaTopology
	for name, c := range map[string]struct {
		text  string
		carry bool
	}{
		"same pods":       {base, true},
		"policy port":     {strings.Replace(base, "{port: 80}", "{port: 88}", 1), true},
		"policy block":    {strings.Replace(base, "cidr: 10.244.2.5/32", "cidr: 10.244.2.0/28", 1), true},
		"namespace label": {strings.Replace(base, "env: prod", "env: dev", 1), true},
		"every pod":       {strings.ReplaceAll(base, "labels: {", "labels: {extra: v, "), false},
	} {
		t.Run(name, func(t *testing.T) {
			f := newEditFile(t, base, 1)
			r := f.load(t, base)
			cl := NewCluster(r)
			checkSame(t, cl, r, []string{"n0", "n1"}, "nothing")
			r2 := f.load(t, c.text)
			cl2 := NewClusterFrom(cl, r2)
			if got := len(cl2.tables) > 0; got != c.carry {
				t.Errorf("carried tables: %v, want %v", got, c.carry)
			}
			checkSame(t, cl2, r2, []string{"n0", "n1", "n2"}, name)
		})
	}
	r, err := spec.LoadBytes("same.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	cl := NewCluster(r)
	if NewClusterFrom(cl, r) != cl {
		t.Error("the same file made a new Cluster")
	}
}

// collidingApps returns two values of label app whose pod classes in
// namespace x (no ports, no blocks) have descriptions of the same hash,
// the first sorting first.
func collidingApps() (string, string) {
	seen := map[uint32]string{}
	for i := 0; ; i++ {
		v := fmt.Sprintf("c%d", i)
		h := fnv.New32a()
		h.Write([]byte("pods in x with labels {app=" + v + "}"))
		if o, ok := seen[h.Sum32()]; ok {
			return min(o, v), max(o, v)
		}
		seen[h.Sum32()] = v
	}
}

// TestNewClusterFromCollision: where two classes' descriptions hash
// alike, the one sorting second is rehashed; an edit that would number
// them otherwise from scratch is built again, any other is carried, and
// both give what a fresh compile does.
func TestNewClusterFromCollision(t *testing.T) {
	lo, hi := collidingApps()
	file := func(apps ...string) string {
		var b bytes.Buffer
		b.WriteString("apiVersion: netreconcile/v1\nkind: Topology\ncluster: {podCIDR: 10.244.0.0/16}\n" +
			"nodes:\n  - {name: n0, address: 172.31.1.1/24, podCIDR: 10.244.0.0/24}\npods:\n")
		for i, app := range apps {
			fmt.Fprintf(&b, "  - {name: p%d, namespace: x, node: n0, ip: 10.244.0.%d, labels: {app: %s}}\n", i, 10+i, app)
		}
		b.WriteString("policies:\n  - {name: all, namespace: x, spec: {podSelector: {}, ingress: [{from: [{podSelector: {}}]}]}}\n")
		return b.String()
	}
	for name, c := range map[string]struct {
		from, to []string
		carry    bool
	}{
		"drop the class holding the hash": {[]string{lo, hi, "o"}, []string{"o", hi, "o"}, false},
		"add a class taking the hash":     {[]string{"o", hi, "o"}, []string{lo, hi, "o"}, false},
		"add a class after the holder":    {[]string{lo, "o", "o"}, []string{lo, hi, "o"}, false},
		"drop the rehashed class":         {[]string{lo, hi, "o"}, []string{lo, "o", "o"}, true},
		"another pod beside a collision":  {[]string{lo, hi, "o"}, []string{lo, hi, "p"}, true},
	} {
		t.Run(name, func(t *testing.T) {
			var p spec.Parser
			r, _, err := p.Load([]spec.Source{{Name: "a.yaml", Data: []byte(file(c.from...))}})
			if err != nil {
				t.Fatal(err)
			}
			cl := NewCluster(r)
			checkSame(t, cl, r, []string{"n0"}, "nothing")
			if tb := cl.tables[""]; len(tb.rehashed) != 1 && slices.Contains(c.from, lo) && slices.Contains(c.from, hi) {
				t.Fatalf("rehashed classes %d, want 1", len(tb.rehashed))
			}
			r2, _, err := p.Load([]spec.Source{{Name: "a.yaml", Data: []byte(file(c.to...))}})
			if err != nil {
				t.Fatal(err)
			}
			cl2 := NewClusterFrom(cl, r2)
			if got := len(cl2.tables) > 0; got != c.carry {
				t.Errorf("carried tables: %v, want %v", got, c.carry)
			}
			checkSame(t, cl2, r2, []string{"n0"}, name)
		})
	}
}

// TestClassSize: a daemon keeps a class per pod class between passes
// (50,000 at 1000 nodes); a field more moves it to the next size class.
func TestClassSize(t *testing.T) {
	if size := unsafe.Sizeof(class{}); size > 48 {
		t.Errorf("class is %d bytes, want at most 48", size)
	}
}

// TestDiffPods: a file large enough to be compared in halves gives what
// one pass over it does, for edits on both sides of the split and at it.
func TestDiffPods(t *testing.T) {
	r, err := spec.LoadBytes("big.yaml", scaletopo.Nodes(100)) // 5000 pods
	if err != nil {
		t.Fatal(err)
	}
	old := r.Pods
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 20 {
		pods := slices.Clone(old)
		mid := len(pods) / 2
		for _, i := range []int{rng.IntN(len(pods)), mid, mid - 1, rng.IntN(len(pods))} {
			switch rng.IntN(3) {
			case 0:
				pods[i].Labels = map[string]string{"app": "changed"}
			case 1:
				pods[i].Key += "-moved" // as if removed, and one added beside it
			default:
				pods[i].Ports = nil
			}
		}
		at := rng.IntN(len(pods) - 10)
		pods = slices.Delete(pods, at, at+1+rng.IntN(5))
		slices.SortFunc(pods, func(a, b spec.ResolvedPod) int { return strings.Compare(a.Key, b.Key) })
		got := diffPods(old, pods)
		want := &podDelta{remap: make([]int32, len(old))}
		want.removed, want.added = diffRange(old, pods, 0, 0, want.remap)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: in halves removed %d added %d, in one pass removed %d added %d",
				round, len(got.removed), len(got.added), len(want.removed), len(want.added))
		}
		if len(want.removed)+len(want.added) == 0 {
			t.Fatalf("round %d: no change to find", round)
		}
	}
}
