package reach_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/reach"
)

const twoNodes = `apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16}
nodes:
  - {name: a, address: 172.31.1.2/24, uplink: eth0, podCIDR: 10.244.1.0/24}
  - {name: b, address: 172.31.1.3/24, uplink: eth0, podCIDR: 10.244.2.0/24}
pods:
  - {name: a1, node: a, ip: 10.244.1.10, mode: veth}
  - {name: b1, node: b, ip: 10.244.2.10, mode: veth}
`

// TestNodePlanPodAdded: a pod added on node a gives a's plan additions
// and nothing to change or destroy, and leaves b's plan empty, when no
// service or policy changed.
func TestNodePlanPodAdded(t *testing.T) {
	newText := twoNodes + "  - {name: a2, node: a, ip: 10.244.1.11, mode: veth}\n"
	d := mustCompute(t, load(t, "old.yaml", twoNodes), load(t, "new.yaml", newText))
	plans := map[string]reach.NodePlan{}
	for _, p := range d.NodePlans {
		plans[p.Node] = p
	}
	if len(d.NodePlans) != 2 || d.NodePlansSkipped != "" {
		t.Fatalf("node plans %+v (skipped %q), want nodes a and b", d.NodePlans, d.NodePlansSkipped)
	}
	if a := plans["a"].Summary; a.Add < 1 || a.Change != 0 || a.Destroy != 0 {
		t.Errorf("node a: %+v, want 1+ to add, nothing else", a)
	}
	if b := plans["b"]; !b.Empty() {
		t.Errorf("node b: %+v, want unchanged", b.Summary)
	}
	var text bytes.Buffer
	if err := d.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\n  a     ", "  1 node unchanged\n", "plans change on 1 node."} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, text.String())
		}
	}
	if strings.Contains(text.String(), "\n  b ") {
		t.Errorf("text output lists unchanged node b:\n%s", text.String())
	}
}

// TestNodePlansSame: identical files plan no node and the diff is empty.
func TestNodePlansSame(t *testing.T) {
	d := mustCompute(t, load(t, "old.yaml", twoNodes), load(t, "new.yaml", twoNodes))
	if !d.Empty() || d.ChangedNodes() != 0 || len(d.NodePlans) != 2 {
		t.Errorf("same file: empty %v, changed nodes %d, plans %+v", d.Empty(), d.ChangedNodes(), d.NodePlans)
	}
}
