package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/internal/nstest"
)

// TestLabPrefix: the same file brought up twice with two --prefix values
// gives two labs side by side (their node and pod namespaces carry the
// prefix), each converged and reachable; taking one down leaves the other.
func TestLabPrefix(t *testing.T) {
	nstest.RequireRoot(t)
	bin := BuildBinary(t)
	id := UniqueName("px")
	file := WriteFile(t, id+".yaml", fmt.Sprintf(`apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16}
nodes:
  - {name: %[1]sa, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}
  - {name: %[1]sb, address: 172.31.1.3/24, podCIDR: 10.244.2.0/24}
pods:
  - {name: web, namespace: %[1]s, node: %[1]sa, ip: 10.244.1.10}
  - {name: api, namespace: %[1]s, node: %[1]sb, ip: 10.244.2.10, mode: bridge}
`, id))
	state := t.TempDir()
	prefixes := []string{id + "-1", id + "-2"}
	for _, p := range prefixes {
		t.Cleanup(func() {
			Run(t, bin, "lab", "down", "-f", file, "--prefix", p, "--state-dir", state)
			for _, ns := range []string{p + "-" + id + "-web", p + "-" + id + "-api"} {
				_ = exec.Command("ip", "netns", "del", ns).Run()
			}
		})
		out, errOut, code := Run(t, bin, "lab", "up", "-f", file, "--prefix", p, "--state-dir", state)
		if code != 0 || !strings.Contains(out, "--prefix "+p) {
			t.Fatalf("lab up --prefix %s: exit %d\n%s%s", p, code, out, errOut)
		}
	}
	for _, p := range prefixes {
		if out, errOut, code := Run(t, bin, "status", "-f", file, "--lab", "--prefix", p, "--state-dir", state, "--detailed-exitcode"); code != 0 {
			t.Errorf("status of lab %s: exit %d\n%s%s", p, code, out, errOut)
		}
		nstest.StartEchoTCP(t, p+"-"+id+"-api", "10.244.2.10:7100", p)
		if got := nstest.CheckTCP(t, p+"-"+id+"-web", "10.244.2.10:7100"); got != p {
			t.Errorf("lab %s: web reached %q", p, got)
		}
	}
	if out, errOut, code := Run(t, bin, "lab", "down", "-f", file, "--prefix", prefixes[0], "--state-dir", state); code != 0 {
		t.Fatalf("lab down: exit %d\n%s%s", code, out, errOut)
	}
	for _, ns := range []string{prefixes[0] + "-" + id + "a", prefixes[0] + "-" + id + "-web"} {
		if netnsExists(ns) {
			t.Errorf("%s left after lab down", ns)
		}
	}
	for _, ns := range []string{prefixes[1] + "-" + id + "a", prefixes[1] + "-" + id + "-api"} {
		if !netnsExists(ns) {
			t.Errorf("%s of the other lab is gone", ns)
		}
	}
}
