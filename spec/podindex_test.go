package spec

import (
	"slices"
	"testing"
)

// TestSelectorIndex: an index of some label keys gives every selector
// the pods it matches, also one naming a key left out (then the namespace
// is the candidates), and never more than the full index.
func TestSelectorIndex(t *testing.T) {
	pods := []ResolvedPod{
		{Namespace: "a", Labels: map[string]string{"app": "web", "instance": "1"}},
		{Namespace: "a", Labels: map[string]string{"app": "web", "instance": "2"}},
		{Namespace: "a", Labels: map[string]string{"app": "db", "instance": "3"}},
		{Namespace: "b", Labels: map[string]string{"app": "web", "instance": "4"}},
	}
	full := NewPodIndex(pods, nil)
	some := NewSelectorIndex(pods, nil, map[string]bool{"app": true})
	matches := func(cands []int, ns string, sel map[string]string) []int {
		var out []int
		for _, i := range cands {
			ok := pods[i].Namespace == ns
			for k, v := range sel {
				ok = ok && pods[i].Labels[k] == v
			}
			if ok {
				out = append(out, i)
			}
		}
		return out
	}
	for _, c := range []struct {
		ns   string
		sel  map[string]string
		want []int
	}{
		{"a", map[string]string{"app": "web"}, []int{0, 1}},
		{"a", map[string]string{"instance": "2"}, []int{1}},
		{"a", map[string]string{"app": "web", "instance": "2"}, []int{1}},
		{"b", map[string]string{"app": "web"}, []int{3}},
		{"a", nil, []int{0, 1, 2}},
		{"c", map[string]string{"app": "web"}, nil},
	} {
		for name, x := range map[string]*PodIndex{"full": full, "app only": some} {
			cands := x.Candidates(c.ns, c.sel)
			if got := matches(cands, c.ns, c.sel); !slices.Equal(got, c.want) {
				t.Errorf("%s: %s %v: matched %v, want %v", name, c.ns, c.sel, got, c.want)
			}
		}
		if len(some.Candidates(c.ns, c.sel)) < len(full.Candidates(c.ns, c.sel)) {
			t.Errorf("%s %v: the partial index found fewer candidates than the full one", c.ns, c.sel)
		}
	}
	if n := len(some.byLabel); n != 3 { // a/app=web, a/app=db, b/app=web
		t.Errorf("the app-only index holds %d pairs, want 3", n)
	}
}

// TestNamespaceIndex: a selector's candidates hold every namespace it
// matches, sorted, and a rare pair narrows them.
func TestNamespaceIndex(t *testing.T) {
	labels := map[string]map[string]string{
		"c": {"env": "prod", "team": "x"}, "a": {"env": "prod"}, "b": {"env": "dev"}, "d": nil,
	}
	x := NewNamespaceIndex([]string{"c", "a", "b", "d"}, func(ns string) map[string]string { return labels[ns] })
	for _, c := range []struct {
		sel  map[string]string
		want []string
	}{
		{nil, []string{"a", "b", "c", "d"}},
		{map[string]string{"env": "prod"}, []string{"a", "c"}},
		{map[string]string{"env": "prod", "team": "x"}, []string{"c"}},
		{map[string]string{"env": "test"}, nil},
	} {
		if got := x.Candidates(c.sel); !slices.Equal(got, c.want) {
			t.Errorf("%v: candidates %v, want %v", c.sel, got, c.want)
		}
	}
}

// TestSelectorIndexNamespaces: an index of some namespaces of a resolved
// file (sorted by key) holds exactly their pods, in order, also where one
// namespace's name begins another's.
func TestSelectorIndexNamespaces(t *testing.T) {
	r, err := LoadBytes("ns.yaml", []byte(`apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16}
nodes:
  - {name: n1, address: 192.168.1.1/24, podCIDR: 10.244.1.0/24}
pods:
  - {name: b, namespace: ns1, node: n1, labels: {app: web}}
  - {name: a, namespace: ns10, node: n1, labels: {app: web}}
  - {name: a, namespace: ns1, node: n1, labels: {app: db}}
  - {name: c, namespace: ns1-x, node: n1, labels: {app: web}}
  - {name: z, namespace: ns2, node: n1, labels: {app: web}}
  - {name: a, namespace: ns0, node: n1, labels: {app: web}}
`))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{"app": true}
	for _, nss := range []map[string]bool{{"ns1": true}, {"ns10": true, "ns0": true}, {"ns1-x": true, "ns3": true}, {}} {
		got := NewSelectorIndex(r.Pods, nss, keys)
		want := newPodIndex(r.Pods, func(p *ResolvedPod) bool { return nss[p.Namespace] }, keys)
		for _, ns := range []string{"ns0", "ns1", "ns10", "ns1-x", "ns2", "ns3"} {
			for _, sel := range []map[string]string{nil, {"app": "web"}, {"app": "db"}} {
				if g, w := got.Candidates(ns, sel), want.Candidates(ns, sel); !slices.Equal(g, w) {
					t.Errorf("namespaces %v: %s %v: candidates %v, want %v", nss, ns, sel, g, w)
				}
			}
		}
	}
}

// TestSameLabels: labels compare by content, the shared map at once.
func TestSameLabels(t *testing.T) {
	a := map[string]string{"app": "web"}
	for _, c := range []struct {
		x, y map[string]string
		want bool
	}{{a, a, true}, {a, map[string]string{"app": "web"}, true}, {a, map[string]string{"app": "db"}, false},
		{a, nil, false}, {nil, map[string]string{}, true}} {
		if got := SameLabels(c.x, c.y); got != c.want {
			t.Errorf("SameLabels(%v, %v) = %v, want %v", c.x, c.y, got, c.want)
		}
	}
}
