package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/internal/nstest"
	"github.com/netreconcile/netreconcile/policy"
	"github.com/netreconcile/netreconcile/spec"
)

// TestExamples brings every example up as a lab, checks that each node
// then plans no changes and that pods answer, and takes it down again.
// Examples use fixed names; this is the only test that uses them.
func TestExamples(t *testing.T) {
	nstest.RequireRoot(t)
	bin := BuildBinary(t)
	files, _ := filepath.Glob(filepath.Join(repoRoot(t), "examples", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no examples found")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r, err := spec.LoadFiles(f)
			if err != nil {
				t.Fatal(err)
			}
			stateDir := t.TempDir()
			t.Cleanup(func() {
				Run(t, bin, "lab", "down", "-f", f, "--state-dir", stateDir)
			})
			out, errOut, code := Run(t, bin, "lab", "up", "-f", f, "--state-dir", stateDir)
			if code != 0 {
				if strings.Contains(errOut, "not available in this kernel") {
					t.Skipf("example needs a kernel feature this machine lacks: %s", lastLine(errOut))
				}
				t.Fatalf("lab up: exit %d\n%s%s", code, out, errOut)
			}
			// Not on a terminal and without -v: no log line per change,
			// no progress line, only the summary on standard output.
			if strings.Contains(errOut, "applied") || strings.Contains(errOut, "applying") ||
				!strings.Contains(out, "Remove it all:   netreconcile lab down -f "+f) {
				t.Errorf("lab up printed per-change lines or no summary with real values:\n%s\n%s", errOut, out)
			}
			for _, n := range r.Nodes {
				out, errOut, code := Run(t, bin, "plan", "--detailed-exitcode", "-f", f, "--node", n.Name,
					"--node-netns", "nrlab-"+n.Name, "--state-dir", stateDir)
				if code != 0 {
					t.Errorf("node %s: plan after lab up: exit %d\n%s%s", n.Name, code, out, errOut)
				}
			}
			// probe with no flags: every declared port and every service,
			// as the policies say
			if len(r.Services) > 0 || hasPorts(r) {
				out, errOut, code := Run(t, bin, "probe", "-f", f, "--timeout", "300ms", "--state-dir", stateDir)
				if code != 0 {
					t.Errorf("probe: exit %d\n%s%s", code, out, errOut)
				}
			}
			// every pod reaches the first pod over TCP, or not, as the
			// policies say (explain's verdict)
			if len(r.Pods) > 1 {
				first := r.Pods[0]
				nstest.StartEchoTCP(t, first.Netns, first.IP.String()+":7100", first.Name)
				for _, p := range r.Pods[1:] {
					want := policy.Evaluate(r, policy.PodEndpoint(p.Key), policy.PodEndpoint(first.Key), 7100, spec.ProtocolTCP).Allowed
					got, err := nstest.TryTCP(p.Netns, first.IP.String()+":7100", time.Second)
					if want && got != first.Name || !want && err == nil {
						t.Errorf("%s -> %s:7100: allowed by the policies %v, answered by %q (%v)", p.Key, first.Key, want, got, err)
					}
				}
			}
		})
	}
}

func repoRoot(t *testing.T) string {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestREADMEQuickstart runs the README's main command as written (default
// state directory) and takes the lab down again.
func TestREADMEQuickstart(t *testing.T) {
	nstest.RequireRoot(t)
	bin := BuildBinary(t)
	f := filepath.Join(repoRoot(t), "examples", "quickstart.yaml")
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil || !strings.Contains(string(readme), "lab up -f examples/quickstart.yaml") {
		t.Fatal("README no longer shows `lab up -f examples/quickstart.yaml`")
	}
	t.Cleanup(func() { Run(t, bin, "lab", "down", "-f", f) })
	out, errOut, code := Run(t, bin, "lab", "up", "-f", f)
	if code != 0 || !strings.Contains(out, "Lab is up") {
		t.Fatalf("lab up: exit %d\n%s%s", code, out, errOut)
	}
	if _, _, code := Run(t, bin, "lab", "down", "-f", f); code != 0 {
		t.Fatal("lab down failed")
	}
	if _, err := os.Stat("/var/run/netns/qs-web"); err == nil {
		t.Fatal("lab down left qs-web behind")
	}
}

func hasPorts(r *spec.Resolved) bool {
	for _, p := range r.Pods {
		if len(p.Ports) > 0 {
			return true
		}
	}
	return false
}
