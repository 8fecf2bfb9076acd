package spec

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/internal/scaletopo"
)

// world is a topology being edited, kept as the lines of its lists so
// that edits change items as a user would.
type world struct {
	head             string   // apiVersion to nodes
	pods, svcs, pols []string // list items, "  - {...}"
	split            int      // > 0: pods from split on are in a second source
	nodeIP           func(node, host int) string
	nodes            int
}

// parseWorld cuts a file written as scaletopo writes it into a world.
func parseWorld(text string, nodes int, nodeIP func(node, host int) string) *world {
	w := &world{nodeIP: nodeIP, nodes: nodes}
	head, rest, _ := strings.Cut(text, "pods:\n")
	w.head = head
	podText, rest, _ := strings.Cut(rest, "services:\n")
	svcText, polText, _ := strings.Cut(rest, "policies:\n")
	lines := func(s string) []string {
		return slices.DeleteFunc(strings.Split(s, "\n"), func(l string) bool { return l == "" })
	}
	w.pods, w.svcs, w.pols = lines(podText), lines(svcText), lines(polText)
	return w
}

func (w *world) clone() *world {
	c := *w
	c.pods, c.svcs, c.pols = slices.Clone(w.pods), slices.Clone(w.svcs), slices.Clone(w.pols)
	return &c
}

// sources renders the world: one file, or two when split.
func (w *world) sources() []Source {
	var a, b strings.Builder
	a.WriteString(w.head)
	pods := w.pods
	if w.split > 0 && w.split < len(pods) {
		b.WriteString("apiVersion: netreconcile/v1\nkind: Topology\npods:\n")
		for _, l := range pods[w.split:] {
			b.WriteString(l + "\n")
		}
		pods = pods[:w.split]
	}
	list := func(key string, items []string) {
		if len(items) == 0 {
			return
		}
		a.WriteString(key + ":\n")
		for _, l := range items {
			a.WriteString(l + "\n")
		}
	}
	list("pods", pods)
	list("services", w.svcs)
	list("policies", w.pols)
	srcs := []Source{{Name: "a.yaml", Data: []byte(a.String())}}
	if b.Len() > 0 {
		srcs = append(srcs, Source{Name: "b.yaml", Data: []byte(b.String())})
	}
	return srcs
}

var (
	reLabels   = regexp.MustCompile(`labels: \{[^}]*\}`)
	reNode     = regexp.MustCompile(`node: [a-zA-Z0-9]+`)
	reIP       = regexp.MustCompile(`ip: [0-9.]+, `)
	reSelector = regexp.MustCompile(`selector: \{app: a[0-9]+\}`)
	reMatch    = regexp.MustCompile(`podSelector: \{matchLabels: \{app: a[0-9]+\}\}`)
)

// newPod writes a random pod: names, namespaces, netns and addresses
// drawn from small pools so that they collide now and then.
func (w *world) newPod(pick func(int) int) string {
	var f []string
	f = append(f, fmt.Sprintf("name: q%d", pick(40)))
	if ns := []string{"", "ns0", "ns1", "extra"}[pick(4)]; ns != "" {
		f = append(f, "namespace: "+ns)
	}
	node := pick(w.nodes)
	if pick(30) == 0 {
		f = append(f, "node: nowhere")
	} else {
		f = append(f, fmt.Sprintf("node: n%d", node))
	}
	switch pick(10) {
	case 0, 1, 2:
		f = append(f, "ip: "+w.nodeIP(node, 1+pick(14)))
	case 3:
		if pick(4) == 0 {
			f = append(f, "ip: 10.1.0.300")
		}
	}
	if pick(6) == 0 {
		f = append(f, fmt.Sprintf("netns: nsx%d", pick(6)))
	}
	f = append(f, fmt.Sprintf("labels: {app: a%d}", pick(10)))
	if pick(40) == 0 {
		f = append(f, "ports: [{port: 0}]") // a written zero: invalid
	}
	return "  - {" + strings.Join(f, ", ") + "}"
}

// edit changes w at random, as a user editing the file would; it returns
// what it did, for messages.
func (w *world) edit(pick func(int) int) string {
	at := func(n int) int { return pick(max(n, 1)) }
	insert := func(l string) { i := at(len(w.pods) + 1); w.pods = slices.Insert(w.pods, i, l) }
	n := len(w.pods)
	switch op := pick(16); {
	case op <= 2:
		l := w.newPod(pick)
		insert(l)
		return "add " + l
	case op == 3 && n > 0:
		i := at(n)
		w.pods = slices.Delete(w.pods, i, i+1)
		return fmt.Sprintf("remove pods[%d]", i)
	case op == 4 && n > 0:
		i := at(n)
		w.pods[i] = reLabels.ReplaceAllString(w.pods[i], fmt.Sprintf("labels: {app: a%d}", pick(10)))
		return fmt.Sprintf("relabel pods[%d]", i)
	case op == 5 && n > 0:
		i := at(n)
		w.pods[i] = reNode.ReplaceAllString(w.pods[i], fmt.Sprintf("node: n%d", pick(w.nodes)))
		if pick(3) > 0 {
			w.pods[i] = reIP.ReplaceAllString(w.pods[i], "")
		}
		return fmt.Sprintf("move pods[%d]", i)
	case op == 6 && n > 0:
		i := at(n)
		w.pods[i] = reIP.ReplaceAllString(w.pods[i], "")
		return fmt.Sprintf("drop the ip of pods[%d]", i)
	case op == 7 && n > 0:
		l := w.pods[at(n)]
		insert(l)
		return "duplicate " + l
	case op == 8 && n > 0:
		i := at(n)
		l := w.pods[i]
		w.pods = slices.Delete(w.pods, i, i+1)
		insert(l)
		return "move in the file " + l
	case op == 9 && len(w.svcs) > 0:
		i := at(len(w.svcs))
		w.svcs[i] = reSelector.ReplaceAllString(w.svcs[i], fmt.Sprintf("selector: {app: a%d}", pick(10)))
		// targetPort: web, then absent (defaulted), then 0: a written
		// zero that decodes as absent does, and is invalid.
		switch l := w.svcs[i]; {
		case pick(3) > 0:
		case strings.Contains(l, ", targetPort: web"):
			w.svcs[i] = strings.Replace(l, ", targetPort: web", "", 1)
		case !strings.Contains(l, "targetPort"):
			w.svcs[i] = strings.Replace(l, "port: 80", "port: 80, targetPort: 0", 1)
		}
		return fmt.Sprintf("edit services[%d]", i)
	case op == 10 && len(w.svcs) > 0:
		i := at(len(w.svcs))
		w.svcs = slices.Delete(w.svcs, i, i+1)
		return fmt.Sprintf("remove services[%d]", i)
	case op == 11 && len(w.pols) > 0:
		i := at(len(w.pols))
		w.pols[i] = reMatch.ReplaceAllString(w.pols[i], fmt.Sprintf("podSelector: {matchLabels: {app: a%d}}", pick(10)))
		if pick(3) == 0 {
			w.pols[i] = strings.Replace(w.pols[i], "namespace: ns", "namespace: other", 1)
		}
		return fmt.Sprintf("edit policies[%d]", i)
	case op == 12:
		w.split = at(len(w.pods))
		return fmt.Sprintf("split at %d", w.split)
	case op == 13 && pick(4) == 0:
		w.head = strings.Replace(w.head, "cluster: {", "cluster: {mode: veth, ", 1)
		return "cluster mode"
	case op == 14 && pick(4) == 0:
		w.head = strings.Replace(w.head, "cluster: {", "cluster: {routing: {vxlan: {vni: 0}}, ", 1) // a written zero
		return "cluster vni 0"
	default:
		l := w.newPod(pick)
		w.pods = append(w.pods, l)
		return "append " + l
	}
}

// smallWorld has pods without ip on /28 nodes (13 addresses each), so
// that allocation collides, probes and runs out.
func smallWorld() *world {
	var s strings.Builder
	s.WriteString("apiVersion: netreconcile/v1\nkind: Topology\ncluster: {podCIDR: 10.0.0.0/8, serviceCIDR: 172.16.0.0/12}\nnamespaces:\n")
	s.WriteString("  - {name: ns0, labels: {team: a}}\n  - {name: ns1}\nnodes:\n")
	for i := range 3 {
		fmt.Fprintf(&s, "  - {name: n%d, address: 192.168.0.%d/16, podCIDR: 10.1.0.%d/28}\n", i, i+1, 16*i)
	}
	s.WriteString("pods:\n")
	for j := range 24 {
		ns := []string{"", "namespace: ns0, ", "namespace: ns1, ", "namespace: loose, "}[j%4]
		fmt.Fprintf(&s, "  - {name: a%d, %snode: n%d, labels: {app: a%d}}\n", j, ns, j%3, j%10)
	}
	s.WriteString("services:\n")
	for k := range 4 {
		fmt.Fprintf(&s, "  - {name: s%d, namespace: ns%d, clusterIP: 172.16.0.%d, selector: {app: a%d}, ports: [{port: 80, targetPort: web}]}\n", k, k%2, k+1, k)
	}
	s.WriteString("policies:\n")
	for k := range 3 {
		fmt.Fprintf(&s, "  - {name: pol%d, namespace: ns%d, spec: {podSelector: {matchLabels: {app: a%d}}}}\n", k, k%2, k)
	}
	return parseWorld(s.String(), 3, func(node, host int) string { return fmt.Sprintf("10.1.0.%d", 16*node+host) })
}

func scaleWorld(nodes int) *world {
	return parseWorld(string(scaletopo.Nodes(nodes)), nodes, func(node, host int) string {
		return fmt.Sprintf("10.%d.%d.%d", 1+node/250, node%250, host)
	})
}

// checkEdits edits w step by step, loading each version through one
// Parser and through Load, which must agree exactly; an invalid version
// is often undone, as a user would. It returns how many loads were
// resolved by difference.
func checkEdits(t *testing.T, w *world, steps int, pick func(int) int) int {
	var p Parser
	var prev, prevWant *Resolved
	good := w
	for step := range steps {
		what := "start"
		if step > 0 {
			w = w.clone()
			what = w.edit(pick)
		}
		srcs := w.sources()
		got, _, gotErr := p.Load(srcs)
		want, _, wantErr := Load(srcs)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("step %d (%s): Parser.Load error:\n%v\nLoad error:\n%v", step, what, gotErr, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d (%s): Parser.Load and Load differ:\n%s", step, what, resolvedDiff(got, want))
		}
		if prev != nil && !reflect.DeepEqual(prev, prevWant) {
			t.Fatalf("step %d (%s): the previous model was changed", step, what)
		}
		if gotErr == nil {
			prev, prevWant, good = got, want, w
		} else if pick(5) < 3 {
			w = good // undo
		}
	}
	return p.deltas
}

// resolvedDiff says where two models differ first.
func resolvedDiff(a, b *Resolved) string {
	if a == nil || b == nil {
		return fmt.Sprintf("%v vs %v", a == nil, b == nil)
	}
	if len(a.Pods) != len(b.Pods) {
		return fmt.Sprintf("%d pods vs %d", len(a.Pods), len(b.Pods))
	}
	for i := range a.Pods {
		if !reflect.DeepEqual(a.Pods[i], b.Pods[i]) {
			return fmt.Sprintf("pods[%d]: %+v vs %+v", i, a.Pods[i], b.Pods[i])
		}
	}
	if !reflect.DeepEqual(a.Namespaces, b.Namespaces) {
		return fmt.Sprintf("namespaces: %v vs %v", a.Namespaces, b.Namespaces)
	}
	return fmt.Sprintf("%+v\nvs\n%+v", *a, *b)
}

// TestParserDelta holds the incremental resolve equal to Resolve over
// random edits of generated and hand-written topologies.
func TestParserDelta(t *testing.T) {
	for _, tc := range []struct {
		name  string
		world func() *world
		steps int
	}{
		{"small", smallWorld, 600},
		{"scale3", func() *world { return scaleWorld(3) }, 400},
		{"scale20", func() *world { return scaleWorld(20) }, 150},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
			deltas := checkEdits(t, tc.world(), tc.steps, rng.IntN)
			// Most edits are valid and local: the test is worth little
			// when they all fall back.
			if deltas < tc.steps/4 {
				t.Fatalf("%d of %d loads resolved by difference", deltas, tc.steps)
			}
			t.Logf("%d of %d loads resolved by difference", deltas, tc.steps)
		})
	}
}

// FuzzParserDelta is TestParserDelta with the edits chosen by the input.
func FuzzParserDelta(f *testing.F) {
	f.Add([]byte{0, 3, 1, 7, 2, 9, 4, 4, 5, 1, 6, 2, 8, 0})
	f.Add([]byte("a pod here, another there"))
	f.Fuzz(func(t *testing.T, choices []byte) {
		pick := func(n int) int {
			if len(choices) == 0 {
				return 0
			}
			v := int(choices[0])
			choices = choices[1:]
			return v % n
		}
		checkEdits(t, smallWorld(), 12, pick)
	})
}

// TestParserDeltaCases are edits random ones reach seldom: each list of
// versions is loaded in turn through one Parser and through Load.
func TestParserDeltaCases(t *testing.T) {
	svc := "  - {name: s0, namespace: ns0, clusterIP: 172.16.0.1, selector: {app: a0}, ports: [{port: 80%s}]}"
	pol := "  - {name: pol0, namespace: ns0, spec: {podSelector: {}, ingress: [{ports: [{port: 80%s}]}]}}"
	for _, tc := range []struct {
		name  string
		edits []func(w *world)
	}{
		{"targetPort absent, then written 0", []func(w *world){
			func(w *world) { w.svcs[0] = fmt.Sprintf(svc, "") },
			func(w *world) { w.svcs[0] = fmt.Sprintf(svc, ", targetPort: 0") },
		}},
		{"endPort absent, then written 0", []func(w *world){
			func(w *world) { w.pols[0] = fmt.Sprintf(pol, "") },
			func(w *world) { w.pols[0] = fmt.Sprintf(pol, ", endPort: 0") },
		}},
		{"a pod's explicit ip, then the same ip allocated to another", []func(w *world){
			func(w *world) { w.pods = append(w.pods, "  - {name: x, node: n0, ip: 10.1.0.5}") },
			func(w *world) { w.pods = w.pods[:len(w.pods)-1] },
			func(w *world) { w.pods = append(w.pods, "  - {name: x, node: n0, ip: 10.1.0.5}") },
		}},
		{"a node full, then freed", []func(w *world){
			func(w *world) {
				for i := range 6 {
					w.pods = append(w.pods, fmt.Sprintf("  - {name: f%d, node: n1}", i))
				}
			},
			func(w *world) { w.pods = w.pods[:len(w.pods)-1] },
		}},
		{"the last pod of a namespace goes, and comes back", []func(w *world){
			func(w *world) { w.pods = append(w.pods, "  - {name: x, namespace: lonely, node: n2}") },
			func(w *world) { w.pods = w.pods[:len(w.pods)-1] },
			func(w *world) { w.pods = append(w.pods, "  - {name: x, namespace: lonely, node: n2}") },
		}},
		{"a default netns taken by an explicit one", []func(w *world){
			func(w *world) { w.pods = append(w.pods, "  - {name: x, node: n2, netns: /run/netns/default-zz}") },
			func(w *world) { w.pods = append(w.pods, "  - {name: zz, node: n1}") },
			func(w *world) { w.pods[len(w.pods)-2] = "  - {name: x, node: n2, netns: default-zz}" },
			func(w *world) { w.pods[len(w.pods)-2] = "  - {name: x, node: n2}" },
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p Parser
			w := smallWorld()
			for step, edit := range append([]func(*world){func(*world) {}}, tc.edits...) {
				edit(w)
				got, _, gotErr := p.Load(w.sources())
				want, _, wantErr := Load(w.sources())
				if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
					t.Fatalf("step %d: Parser.Load gives %v, Load %v; models equal: %v", step, gotErr, wantErr, reflect.DeepEqual(got, want))
				}
			}
			if p.deltas == 0 {
				t.Fatal("no load was resolved by difference")
			}
		})
	}
}
