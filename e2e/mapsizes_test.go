package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/internal/nstest"
)

// TestMapSizes: a policy of 300 ipBlocks needs more rules than a
// policyRules size of 100, and validate refuses it naming the node, the
// pod, the map, the count and the size; with policyRules 1024 it applies,
// the map is made that size, and the rule of the last block lets its
// client in while a pod outside the blocks stays out; a new size replaces
// the datapath, visibly in the plan, and the policy holds after it.
func TestMapSizes(t *testing.T) {
	w := newWorld(t)
	topo := func(rules int) string {
		var b strings.Builder
		fmt.Fprintf(&b, `apiVersion: netreconcile/v1
kind: Topology
cluster:
  podCIDR: 10.244.0.0/16
  serviceCIDR: 10.96.0.0/16
  datapath: {maps: {policyRules: %d}}
nodes:
  - {name: %s, address: 172.31.1.2/24, uplink: eth0, podCIDR: 10.244.1.0/24}
pods:
  - {name: client, namespace: t, node: %[2]s, ip: 10.244.1.10, netns: %[3]s-c}
  - {name: server, namespace: t, node: %[2]s, ip: 10.244.1.20, netns: %[3]s-s, labels: {app: server}}
  - {name: other, namespace: t, node: %[2]s, ip: 10.244.1.30, netns: %[3]s-o}
policies:
  - name: blocks
    namespace: t
    spec:
      podSelector: {matchLabels: {app: server}}
      ingress:
        - ports: [{port: 7000}]
          from:
`, rules, w.node, w.id)
		for i := range 300 {
			fmt.Fprintf(&b, "            - ipBlock: {cidr: 192.168.%d.%d/32}\n", i/200, 1+i%200)
		}
		b.WriteString("            - ipBlock: {cidr: 10.244.1.10/32}\n")
		return b.String()
	}
	w.file = WriteFile(t, w.id+".yaml", topo(100))
	out, errOut, code := Run(t, w.bin, "validate", "-f", w.file)
	want := fmt.Sprintf(`%s:8:5: nodes[0]: node %q needs 302 entries in datapath map nr_pol_rules, over its size of 100 `+
		`(pod t/server needs the most: 302); raise cluster.datapath.maps.policyRules (at most 4194304)`, w.file, w.node)
	if code != 1 || !strings.Contains(errOut, want) {
		t.Fatalf("validate: exit %d, want 1 and\n%s\n%s%s", code, want, out, errOut)
	}

	w.file = WriteFile(t, w.id+".yaml", topo(1024))
	t.Cleanup(func() {
		if t.Failed() {
			DumpState(t, w.nodeNS, w.id+"-s")
		}
		w.labDown(w.file)
		for _, s := range []string{"-c", "-s", "-o"} {
			_ = exec.Command("ip", "netns", "del", w.id+s).Run()
		}
	})
	w.mustRun("lab", "up", "-f", w.file, "--state-dir", w.stateDir)
	pinned := filepath.Join(datapath.DefaultPinDir(w.node), "nr_pol_rules")
	if got := datapath.PinnedSizes(datapath.DefaultPinDir(w.node)).PolicyRules; got != 1024 {
		t.Fatalf("%s has %d entries, want 1024", pinned, got)
	}
	nstest.StartEchoTCP(t, w.id+"-s", "10.244.1.20:7000", "server")
	check := func(when string) {
		t.Helper()
		if got, err := nstest.TryTCP(w.id+"-c", "10.244.1.20:7000", 3*time.Second); err != nil || got != "server" {
			t.Errorf("%s: client in the last block -> server: %q, %v", when, got, err)
		}
		if _, err := nstest.TryTCP(w.id+"-o", "10.244.1.20:7000", time.Second); err == nil {
			t.Errorf("%s: a pod outside every block reached the server", when)
		}
	}
	check("policyRules 1024")

	w.file = WriteFile(t, w.id+".yaml", topo(2048))
	plan := w.mustRun(w.nodeArgs("plan")...)
	if !strings.Contains(plan, "-/+ datapath") || !strings.Contains(plan, "~ map_sizes: policyRules=1024 -> policyRules=2048 # forces replacement") {
		t.Fatalf("plan after a new size:\n%s", plan)
	}
	w.mustRun(w.nodeArgs("apply")...)
	if got := datapath.PinnedSizes(datapath.DefaultPinDir(w.node)).PolicyRules; got != 2048 {
		t.Fatalf("after the new size %s has %d entries, want 2048", pinned, got)
	}
	check("policyRules 2048")
	if out := w.mustRun(w.nodeArgs("plan")...); !strings.Contains(out, "No changes") {
		t.Errorf("plan after the replace:\n%s", out)
	}
}
