package reach_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/internal/policymodel"
	"github.com/netreconcile/netreconcile/reach"
	"github.com/netreconcile/netreconcile/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// services are the model's services: x/web on x/a (a named target port),
// y/dns on y/b (a numbered one).
const services = `services:
  - {name: web, namespace: x, clusterIP: 10.96.0.10, selector: {pod: a}, ports: [{port: 8080, targetPort: serve-80-tcp}]}
  - {name: dns, namespace: y, clusterIP: 10.96.0.11, selector: {pod: b}, ports: [{port: 53, targetPort: 81, protocol: UDP}]}
`

// basePolicies: y/a and y/b take 80/TCP and 81/UDP from namespace x only.
const basePolicies = `  - name: from-x
    namespace: y
    spec:
      podSelector: {matchExpressions: [{key: pod, operator: In, values: [a, b]}]}
      ingress:
        - from: [{namespaceSelector: {matchLabels: {ns: x}}}]
          ports: [{port: 80}, {port: 81, protocol: UDP}]
`

func baseFile(policies string) string {
	return policymodel.YAML(policymodel.Scenario{Policies: policies}, policymodel.Options{ServiceCIDR: "10.96.0.0/16", Extra: services})
}

// edit is one change of the model, applied to the base file.
type edit struct {
	name string
	new  func(base string) string
}

func replace(old, new string) func(string) string {
	return func(s string) string {
		if !strings.Contains(s, old) {
			panic("edit: " + old + " not in the file")
		}
		return strings.Replace(s, old, new, 1)
	}
}

var edits = []edit{
	{"policy-added", func(string) string {
		return baseFile(basePolicies + `  - name: b-from-a
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: b}}
      policyTypes: [Ingress, Egress]
      ingress: [{from: [{podSelector: {matchLabels: {pod: a}}}]}]
      egress: [{to: [{namespaceSelector: {matchLabels: {ns: y}}}], ports: [{port: 80}]}]
`)
	}},
	{"pod-label-changed", replace("ip: 10.244.2.23, labels: {pod: c}", "ip: 10.244.2.23, labels: {pod: b}")},
	{"namespace-label-changed", replace("{name: z, labels: {ns: z}}", "{name: z, labels: {ns: x}}")},
	{"service-removed", replace("  - {name: dns, namespace: y", "  - {name: gone, namespace: q")},
}

func load(t *testing.T, name, text string) *spec.Resolved {
	t.Helper()
	r, err := spec.LoadBytes(name, []byte(text))
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return r
}

func models(t *testing.T, e edit) (*spec.Resolved, *spec.Resolved) {
	base := baseFile(basePolicies)
	return load(t, "old.yaml", base), load(t, "new.yaml", e.new(base))
}

// TestGolden keeps the four outputs of each edit under testdata/golden
// (go test -run TestGolden -update rewrites them).
func TestGolden(t *testing.T) {
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			o, n := models(t, e)
			d := mustCompute(t, o, n)
			for ext, write := range map[string]func(*bytes.Buffer) error{
				"txt":  func(b *bytes.Buffer) error { return d.WriteText(b) },
				"json": func(b *bytes.Buffer) error { return d.WriteJSON(b) },
				"md":   func(b *bytes.Buffer) error { return d.WriteMarkdown(b) },
				"dot":  func(b *bytes.Buffer) error { return d.WriteDOT(b) },
			} {
				var b bytes.Buffer
				if err := write(&b); err != nil {
					t.Fatal(err)
				}
				compareGolden(t, filepath.Join("testdata", "golden", e.name+"."+ext), b.String())
			}
		})
	}
}

func compareGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestAgreesWithExplain holds the diff to explain's answers on every pair
// of the model, every destination port and every service port, before
// and after each edit; and, so that every shortcut the diff takes is
// tried, between each policy scenario of the e2e corpus and the next, and
// on each scenario with a namespace's labels, a pod's labels or a pod's
// address changed.
func TestAgreesWithExplain(t *testing.T) {
	cases := map[string][2]string{}
	base := baseFile(basePolicies)
	for _, e := range edits {
		cases[e.name] = [2]string{base, e.new(base)}
	}
	file := func(sc policymodel.Scenario) string {
		return policymodel.YAML(sc, policymodel.Options{ServiceCIDR: "10.96.0.0/16", Extra: services})
	}
	scs := policymodel.Scenarios
	for i, sc := range scs {
		f := file(sc)
		cases[sc.Name+" then "+scs[(i+1)%len(scs)].Name] = [2]string{f, file(scs[(i+1)%len(scs)])}
		cases[sc.Name+" | namespace z relabelled"] = [2]string{f, replace("{name: z, labels: {ns: z}}", "{name: z, labels: {ns: y, extra: e}}")(f)}
		cases[sc.Name+" | pod y/c relabelled"] = [2]string{f, replace("ip: 10.244.2.23, labels: {pod: c}", "ip: 10.244.2.23, labels: {pod: b}")(f)}
		cases[sc.Name+" | pod x/b readdressed"] = [2]string{f, replace("node: node-2, ip: 10.244.2.12,", "node: node-1, ip: 10.244.1.40,")(f)}
	}
	changed := map[string]int{} // by the kind of edit
	kind := func(name string) string {
		if i := strings.LastIndex(name, " | "); i >= 0 {
			return name[i+3:]
		}
		return "policies"
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			old, new := load(t, "old.yaml", c[0]), load(t, "new.yaml", c[1])
			d := mustCompute(t, old, new)
			if !d.Complete {
				t.Fatalf("the list is not complete for %d connections", d.Connections)
			}
			want := explained(t, old, new)
			if !slices.Equal(d.Reachability, want) {
				t.Errorf("reachability differs from explain:\n--- diff\n%s--- explain\n%s", lines(d.Reachability), lines(want))
			}
			sum := 0
			for _, g := range d.Groups {
				sum += g.Count
			}
			if sum != d.Connections || d.Connections != len(d.Reachability) {
				t.Errorf("groups count %d, total %d, list %d", sum, d.Connections, len(d.Reachability))
			}
			if len(want) > 0 {
				changed[kind(name)]++
			}
		})
	}
	// Each kind of edit must change verdicts in several cases, or agreeing
	// proves little.
	for _, k := range []string{"policies", "namespace z relabelled", "pod y/c relabelled", "pod x/b readdressed"} {
		if changed[k] < 3 {
			t.Errorf("%s: only %d cases change a verdict", k, changed[k])
		}
	}
	t.Logf("cases changing verdicts, by edit: %v", changed)
}

func TestEditsChangeReachability(t *testing.T) {
	for _, e := range edits {
		o, n := models(t, e)
		d := mustCompute(t, o, n)
		if d.Connections == 0 {
			t.Errorf("%s: no connection changes verdict; the edit tests nothing", e.name)
		}
	}
}

func lines(cs []reach.Connection) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s -> %s %d/%s %s -> %s\n", c.From, c.To, c.Port, c.Protocol, c.Before, c.After)
	}
	return b.String()
}

// TestLargeDiffIsSummarised: beyond ListLimit changed connections the
// list holds the groups' examples only, and the groups still count every
// connection.
func TestLargeDiffIsSummarised(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: netreconcile/v1\nkind: Topology\ncluster: {podCIDR: 10.244.0.0/16}\n" +
		"nodes:\n  - {name: n1, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}\npods:\n")
	for i := range 60 {
		fmt.Fprintf(&b, "  - {name: p%d, namespace: ns%d, node: n1, labels: {app: a%d}, ports: [{port: 80}]}\n", i, i%2, i%4)
	}
	old := b.String()
	// Namespace ns1 denies all ingress: 60 sources x 30 pods of ns1, less
	// the 30 that talk to themselves.
	new := old + "policies:\n  - {name: deny, namespace: ns1, spec: {podSelector: {}}}\n"
	d := mustCompute(t, load(t, "old.yaml", old), load(t, "new.yaml", new))
	if d.Connections != 60*30-30 || d.Complete {
		t.Fatalf("total %d complete %v, want 1770 and not complete", d.Connections, d.Complete)
	}
	sum, examples := 0, 0
	for _, g := range d.Groups {
		sum += g.Count
		examples += len(g.Examples)
		if len(g.Examples) > reach.MaxExamples || g.To != "ns1" || g.After != reach.Denied {
			t.Errorf("group %+v", g)
		}
	}
	if sum != d.Connections || len(d.Reachability) != examples || len(d.Groups) != 2 {
		t.Errorf("groups count %d of %d; %d listed, %d examples, %d groups", sum, d.Connections, len(d.Reachability), examples, len(d.Groups))
	}
}

// TestMarkdownIsCapped: a pull-request comment shows MarkdownGroups groups
// and counts the others.
func TestMarkdownIsCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: netreconcile/v1\nkind: Topology\ncluster: {podCIDR: 10.244.0.0/16}\n" +
		"nodes:\n  - {name: n1, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}\npods:\n")
	for i := range 40 {
		fmt.Fprintf(&b, "  - {name: p%d, namespace: ns%d, node: n1, ports: [{port: 80}]}\n", i, i%20)
	}
	old := b.String()
	b.WriteString("policies:\n")
	for i := range 20 {
		fmt.Fprintf(&b, "  - {name: deny, namespace: ns%d, spec: {podSelector: {}}}\n", i)
	}
	d := mustCompute(t, load(t, "old.yaml", old), load(t, "new.yaml", b.String()))
	if len(d.Groups) != 400 {
		t.Fatalf("%d groups, want 400 (20 namespaces to 20)", len(d.Groups))
	}
	var md bytes.Buffer
	if err := d.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	rows := strings.Count(md.String(), " denied | ")
	if rows != reach.MarkdownGroups || !strings.Contains(md.String(), "and 200 more groups") {
		t.Errorf("markdown shows %d groups, want %d and the 200 others counted:\n%s", rows, reach.MarkdownGroups, md.String()[max(0, md.Len()-300):])
	}
}

// mustCompute is reach.Compute, failing the test on its error.
func mustCompute(t testing.TB, old, new *spec.Resolved) *reach.Diff {
	t.Helper()
	d, err := reach.Compute(old, new)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
