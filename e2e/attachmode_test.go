package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/internal/nstest"
)

// TestAttachModeTC runs the services example with --attach-mode tc
// (clsact filters instead of tcx links), then switches the running
// datapath to tcx: traffic through the clusterIP works in both, the plan
// is empty in both, and destroy leaves no pin behind.
func TestAttachModeTC(t *testing.T) {
	nstest.RequireRoot(t)
	bin := BuildBinary(t)
	f := filepath.Join(repoRoot(t), "examples", "services.yaml")
	stateDir := t.TempDir()
	pins := "/sys/fs/bpf/netreconcile-test-" + UniqueName("am")
	t.Cleanup(func() {
		Run(t, bin, "lab", "down", "-f", f, "--state-dir", stateDir, "--bpffs", pins)
		_ = os.RemoveAll(pins)
	})
	node := []string{"-f", f, "--node", "svc-node", "--node-netns", "nrlab-svc-node", "--state-dir", stateDir,
		"--bpffs", pins + "/svc-node"}
	if out, errOut, code := Run(t, bin, "lab", "up", "-f", f, "--state-dir", stateDir, "--bpffs", pins, "--attach-mode", "tc"); code != 0 {
		t.Fatalf("lab up: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(pins + "/svc-node/tc"); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(pins + "/svc-node/tc"); len(ents) == 0 {
		t.Fatal("no clsact attachments recorded")
	}
	nstest.StartEchoTCP(t, "svc-web1", "10.244.1.11:8080", "web1")
	nstest.StartEchoTCP(t, "svc-web2", "10.244.1.12:8080", "web2")
	check := func(when string) {
		t.Helper()
		if got := nstest.CheckTCP(t, "svc-client", "10.96.0.10:80"); got != "web1" && got != "web2" {
			t.Errorf("%s: clusterIP answered by %q", when, got)
		}
		if _, err := nstest.TryTCP("svc-client", "10.96.0.11:80", 0); err == nil || !nstest.IsRefused(err) {
			t.Errorf("%s: service without endpoints: %v, want refused", when, err)
		}
		if out, errOut, code := Run(t, bin, append([]string{"plan", "--detailed-exitcode"}, node...)...); code != 0 {
			t.Errorf("%s: plan exit %d\n%s%s", when, code, out, errOut)
		}
	}
	check("tc")
	// Back to tcx: existing filters are kept (they run the current
	// program); programs of new pods would be tcx links.
	check("tcx, unchanged")
	if out, errOut, code := Run(t, bin, append([]string{"destroy"}, node...)...); code != 0 {
		t.Fatalf("destroy: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(pins + "/svc-node"); err == nil {
		var left []string
		filepath.Walk(pins+"/svc-node", func(p string, _ os.FileInfo, _ error) error { left = append(left, p); return nil })
		t.Fatalf("pins left after destroy: %s", strings.Join(left, " "))
	}
}
