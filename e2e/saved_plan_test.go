package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/internal/nstest"
)

// TestSavedPlan: on a lab node, apply of a saved plan (plan --out) applies
// it when the node is unchanged; on a node drifted since the plan (a route
// deleted by hand) it is refused, exit 1, naming the route, and changes
// nothing; destroy --dry-run previews and changes nothing; destroy's
// summary counts what it says.
func TestSavedPlan(t *testing.T) {
	nstest.RequireRoot(t)
	bin, id, stateDir := BuildBinary(t), UniqueName("sp"), t.TempDir()
	pins := "/sys/fs/bpf/netreconcile-test-" + id
	t.Cleanup(func() { _ = os.Remove(pins) })
	file := WriteFile(t, "topo.yaml", offlineTopo(id, false))
	if out, errOut, code := Run(t, bin, "lab", "up", "-f", file, "--state-dir", stateDir, "--bpffs", pins); code != 0 {
		t.Fatalf("lab up: exit %d\n%s%s", code, out, errOut)
	}
	LabDown(t, bin, file, "--state-dir", stateDir, "--bpffs", pins)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", id+"-new").Run() })
	node, nodeNS := id+"a", "nrlab-"+id+"a"
	DumpOnFailure(t, nodeNS)
	edited := WriteFile(t, "edited.yaml", offlineTopo(id, true))
	nodeArgs := []string{"--node", node, "--node-netns", nodeNS, "--state-dir", stateDir, "--bpffs", filepath.Join(pins, node)}
	run := func(args ...string) (string, string, int) { return Run(t, bin, append(args, nodeArgs...)...) }
	planJSON := func(f string) string {
		out, errOut, code := run("plan", "-o", "json", "-f", f)
		if code != 0 {
			t.Fatalf("plan: exit %d\n%s", code, errOut)
		}
		return out
	}

	// Unchanged node: the saved plan applies, and the node then matches.
	saved := filepath.Join(t.TempDir(), "edited.plan")
	if out, errOut, code := run("plan", "-f", edited, "--out", saved); code != 0 || !strings.Contains(out, "Saved the plan to") {
		t.Fatalf("plan --out: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := Run(t, bin, "apply", saved, "--state-dir", stateDir); code != 0 || !strings.Contains(out, "applied") {
		t.Fatalf("apply of the saved plan: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := run("plan", "-f", edited, "--detailed-exitcode"); code != 0 {
		t.Fatalf("plan after apply of the saved plan: exit %d, want 0 (no changes)\n%s", code, errOut)
	}

	// Drifted node: a plan back to the original file, then a route of
	// netreconcile's deleted by hand.
	back := filepath.Join(t.TempDir(), "back.plan")
	if _, errOut, code := run("plan", "-f", file, "--out", back); code != 0 {
		t.Fatalf("plan --out: exit %d\n%s", code, errOut)
	}
	routes, err := exec.Command("ip", "-n", nodeNS, "route", "show", "proto", "154").Output()
	if err != nil {
		t.Fatal(err)
	}
	route := strings.Fields(strings.SplitN(string(routes), "\n", 2)[0])
	if len(route) == 0 {
		t.Fatalf("no route of protocol 154 in %s", nodeNS)
	}
	if out, err := exec.Command("ip", append([]string{"-n", nodeNS, "route", "del", "proto", "154"}, route...)...).CombinedOutput(); err != nil {
		t.Fatalf("ip route del %v: %v: %s", route, err, out)
	}
	before := planJSON(file)
	out, errOut, code := Run(t, bin, "apply", back, "--state-dir", stateDir)
	if code != 1 || !strings.Contains(errOut, "saved plan is stale") || !strings.Contains(errOut, route[0]) {
		t.Fatalf("apply of a saved plan on a drifted node: exit %d, want 1 naming route %s\n%s%s", code, route[0], out, errOut)
	}
	t.Logf("refused: %s", errOut)
	if after := planJSON(file); after != before {
		t.Errorf("the refused apply changed the node: plan before\n%s\nafter\n%s", before, after)
	}

	// destroy --dry-run lists everything and removes nothing.
	out, errOut, code = run("destroy", "--dry-run", "-f", edited)
	m := regexp.MustCompile(`Plan: 0 to add, 0 to change, (\d+) to destroy\.`).FindStringSubmatch(out)
	if code != 0 || m == nil || m[1] == "0" {
		t.Fatalf("destroy --dry-run: exit %d\n%s%s", code, out, errOut)
	}
	if after := planJSON(file); after != before {
		t.Errorf("destroy --dry-run changed the node: plan before\n%s\nafter\n%s", before, after)
	}

	// destroy's summary adds up, and says as many as the preview.
	out, errOut, code = run("destroy", "-f", edited)
	s := regexp.MustCompile(`applied (\d+) changes \((\d+) added, (\d+) changed, (\d+) destroyed`).FindStringSubmatch(out)
	if code != 0 || s == nil {
		t.Fatalf("destroy: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("destroy: %s", out)
	n, add, chg, del := atoi(t, s[1]), atoi(t, s[2]), atoi(t, s[3]), atoi(t, s[4])
	if n != add+chg+del || del != atoi(t, m[1]) {
		t.Errorf("destroy summary %q: counts do not add up, or differ from the preview's %s", s[0], m[1])
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
