package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"

	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/reconcile/plan"
	"github.com/netreconcile/netreconcile/spec"
)

func TestSummaryTable(t *testing.T) {
	plans := []*reconcile.Plan{
		{Node: "a", Summary: plan.Summary{Add: 12, Change: 0, Destroy: 3}},
		{Node: "long-node-name", Summary: plan.Summary{Add: 0, Change: 145, Destroy: 0}},
		{Node: "c"},
	}
	var b bytes.Buffer
	if err := writeSummaryTable(&b, plans); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"node            add  change  destroy\n" +
		"a               12   0       3\n" +
		"long-node-name  0    145     0\n" +
		"c               0    0       0\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

const topoTwoNodes = `apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16, mode: veth}
nodes:
  - {name: n1, address: 172.31.1.2/24, uplink: eth0, podCIDR: 10.244.1.0/24}
  - {name: n2, address: 172.31.1.3/24, uplink: ens3, podCIDR: 10.244.2.0/24}
pods:
  - {name: a, namespace: t, node: n1, ip: 10.244.1.10}
`

// TestPlanAllNodesObservedDir: each node is planned against its own
// <node>.json; the table counts what each plan says; one node with
// changes make --detailed-exitcode exit 2; a missing file names the node.
func TestPlanAllNodesObservedDir(t *testing.T) {
	file := writeFile(t, "topo.yaml", topoTwoNodes)
	dir := t.TempDir()
	// n1: an old-format file (no node_facts) of the right uplink; n2: the
	// node_facts of a node whose uplink ens3 has MTU 9000 and a default route.
	n2 := `{"node": "n2", "uplink": {"name": ""}, "owned": {}, "node_facts": {"links": {"ens3": {"index": 3,
	 "mtu": 9000, "addresses": ["172.31.1.3/24"]}}, "routes": ["0.0.0.0/0"], "link_types": {"macvlan": true}}}`
	for name, content := range map[string]string{"n1.json": emptyNode, "n2.json": n2} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, code, msg := run(t, "plan", "--all-nodes", "-f", file, "--observed", dir, "--detailed-exitcode")
	if code != 2 {
		t.Fatalf("exit %d (%s), want 2\n%s", code, msg, out)
	}
	if !strings.HasPrefix(out, "node  add  change  destroy\nn1    9    0       0\nn2    1    0       0\n\n") {
		t.Errorf("summary table:\n%s", out)
	}
	// n2's only change is its route to n1, through the uplink its facts have.
	if !strings.Contains(out, "on node n1:") || !strings.Contains(out, "route node/10.244.1.0/24 (dev=ens3 via=172.31.1.2") {
		t.Errorf("plans below the table:\n%s", out)
	}
	out, code, msg = run(t, "plan", "--all-nodes", "-o", "json", "-f", file, "--observed", dir)
	var all struct {
		FormatVersion string            `json:"format_version"`
		Plans         []*reconcile.Plan `json:"plans"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &all) != nil || all.FormatVersion != AllNodesFormatVersion ||
		len(all.Plans) != 2 || all.Plans[0].Node != "n1" || all.Plans[0].Summary.Add != 9 || all.Plans[1].Summary.Add != 1 {
		t.Errorf("json: exit %d (%s)\n%s", code, msg, out)
	}

	if err := os.Remove(filepath.Join(dir, "n2.json")); err != nil {
		t.Fatal(err)
	}
	_, code, msg = run(t, "plan", "--all-nodes", "-f", file, "--observed", dir)
	if code != 1 || !strings.Contains(msg, `node "n2"`) || !strings.Contains(msg, "n2.json") {
		t.Errorf("missing n2.json: exit %d: %s", code, msg)
	}
}

// TestPlanObservedFacts: node_facts answer for the uplink the file
// names; an old file that cannot answer names the missing facts.
func TestPlanObservedFacts(t *testing.T) {
	file := writeFile(t, "topo.yaml", topoTwoNodes)
	cases := []struct{ name, observed, want string }{
		{"old file, other uplink", `{"node": "n2", "uplink": {"name": "eth0", "found": true, "mtu": 1500}, "owned": {}}`,
			`node "n2": the observed state has no node_facts (the node's links with their addresses and MTU, its routes, ` +
				`its kernel's link types) and records uplink "eth0", not "ens3"`},
		{"facts without the uplink", `{"node": "n2", "owned": {}, "node_facts": {"links": {"eth0": {"index": 2, "mtu": 1500}}}}`,
			`node "n2": uplink "ens3" not found in the node namespace`},
		{"no route to the peer", `{"node": "n2", "owned": {}, "node_facts": {"links": {"ens3": {"index": 2, "mtu": 1500,
			"addresses": ["172.31.1.3/24"]}}, "routes": ["10.0.0.0/8"]}}`,
			`node "n2": peer node "n1" (172.31.1.2) is unreachable`},
	}
	for _, c := range cases {
		observed := writeFile(t, "observed.json", c.observed)
		_, code, msg := run(t, "plan", "-f", file, "--node", "n2", "--observed", observed)
		if code != 1 || !strings.Contains(msg, c.want) {
			t.Errorf("%s: exit %d: %s\nwant %s", c.name, code, msg, c.want)
		}
	}
}

// TestPlanAllNodesAsPlannedAlone: plan --all-nodes prints, byte for byte,
// the table and plans, or the JSON, that the nodes' plans made one by one
// (without shared work) give, though it renders each plan once made.
func TestPlanAllNodesAsPlannedAlone(t *testing.T) {
	file := writeFile(t, "topo.yaml", `apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/16}
nodes:
  - {name: n1, address: 172.31.1.2/24, uplink: eth0, podCIDR: 10.244.1.0/24}
  - {name: n2, address: 172.31.1.3/24, uplink: eth0, podCIDR: 10.244.2.0/24}
pods:
  - {name: a, namespace: t, node: n1, ip: 10.244.1.10, labels: {app: a}}
  - {name: b, namespace: t, node: n2, ip: 10.244.2.10, labels: {app: web}}
services:
  - {name: web, namespace: t, clusterIP: 10.96.0.10, selector: {app: web}, ports: [{port: 80}]}
policies:
  - {name: only-a, namespace: t, spec: {podSelector: {matchLabels: {app: web}}, ingress: [{from: [{ipBlock: {cidr: 10.244.1.0/24}}]}]}}
`)
	g := &globals{log: logr.Discard(), maxFileSize: spec.DefaultMaxFileSize}
	r, _, err := g.load([]string{file}, false)
	if err != nil {
		t.Fatal(err)
	}
	var alone []*reconcile.Plan
	for _, n := range r.Nodes {
		p, err := planOf(g, r, nil, n.Name, observedEmpty)
		if err != nil {
			t.Fatal(err)
		}
		alone = append(alone, p)
	}
	var want bytes.Buffer
	if err := writeSummaryTable(&want, alone); err != nil {
		t.Fatal(err)
	}
	for _, p := range alone {
		fmt.Fprintln(&want)
		p.WriteText(&want)
	}
	var wantJSON bytes.Buffer
	if err := writeJSON(&wantJSON, allNodesPlan{FormatVersion: AllNodesFormatVersion, Plans: alone}); err != nil {
		t.Fatal(err)
	}
	for output, want := range map[string]string{"text": want.String(), "json": wantJSON.String()} {
		out, code, msg := run(t, "plan", "--all-nodes", "-o", output, "-f", file, "--observed", "empty")
		if code != 0 || out != want {
			t.Errorf("-o %s: exit %d (%s)\n%s\nwant\n%s", output, code, msg, out, want)
		}
	}
}
