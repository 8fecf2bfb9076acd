package graph

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func load(t *testing.T) *spec.Resolved {
	t.Helper()
	r, err := spec.LoadFiles(filepath.Join("..", "examples", "multitier.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestGolden keeps both renderings of the multi-tier example.
func TestGolden(t *testing.T) {
	g, err := Build(load(t))
	if err != nil {
		t.Fatal(err)
	}
	for name, render := range map[string]func(*bytes.Buffer) error{
		"multitier.dot": func(b *bytes.Buffer) error { return g.DOT(b) },
		"multitier.mmd": func(b *bytes.Buffer) error { return g.Mermaid(b) },
	} {
		var b bytes.Buffer
		if err := render(&b); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.Bytes(), want) {
			t.Errorf("%s differs from the golden file (go test ./graph -update):\n%s", name, b.String())
		}
	}
}

// TestFlowsFollowPolicies checks edges against what the example's policies
// say: granted flows are drawn with their ports, denied ones are not, and
// only pods without an ingress policy are open.
func TestFlowsFollowPolicies(t *testing.T) {
	g, err := Build(load(t))
	if err != nil {
		t.Fatal(err)
	}
	flows := map[string]string{}
	for _, f := range g.Flows {
		flows[f.From+" -> "+f.To] = strings.Join(f.Ports, ",")
	}
	for edge, ports := range map[string]string{
		"web/front1 -> api/api2": "8080/TCP",
		"api/api1 -> db/pg1":     "5432/TCP",
		"ops/prom -> db/pg1":     "9100/TCP",
	} {
		if flows[edge] != ports {
			t.Errorf("%s: ports %q, want %q", edge, flows[edge], ports)
		}
	}
	for _, edge := range []string{"web/front1 -> db/pg1", "db/pg1 -> api/api1", "ops/prom -> web/front1"} {
		if _, ok := flows[edge]; ok {
			t.Errorf("%s drawn, but the policies deny it (or decide nothing)", edge)
		}
	}
	open := map[string]bool{}
	for _, n := range g.Nodes {
		for _, b := range n.Boxes {
			open[b.ID] = b.Open
		}
	}
	if !open["web/front1"] || open["api/api1"] || open["db/pg1"] {
		t.Errorf("open boxes %v: want web and ops open, api and db not", open)
	}
}

// TestGrouped draws a large file by namespace, counting pod pairs.
func TestGrouped(t *testing.T) {
	r := load(t)
	base := r.Pods
	for len(r.Pods) <= PodLimit {
		for _, p := range base {
			p.Key += "x"
			p.Name += "x"
			r.Pods = append(r.Pods, p)
		}
		base = r.Pods[len(r.Pods)-len(base):]
	}
	g, err := Build(r)
	if err != nil {
		t.Fatal(err)
	}
	if !g.Grouped {
		t.Fatal("not grouped")
	}
	for _, f := range g.Flows {
		if f.From == "web@shop-a" && f.To == "api@shop-b" && f.Pairs > 1 {
			return
		}
	}
	t.Errorf("no web@shop-a -> api@shop-b flow with a pair count: %+v", g.Flows)
}
