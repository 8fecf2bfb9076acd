package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// workflow is the part of a GitHub Actions workflow the test reads.
type workflow struct {
	Env  map[string]string `yaml:"env"`
	Jobs map[string]struct {
		Steps []struct {
			Name string `yaml:"name"`
			Run  string `yaml:"run"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

// ciCommands are the netreconcile command lines of the example workflow,
// in order.
func ciCommands(t *testing.T) []string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "examples/ci/netreconcile.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var wf workflow
	if err := yaml.Unmarshal(b, &wf); err != nil {
		t.Fatalf("examples/ci/netreconcile.yml: %v", err)
	}
	if wf.Env["TOPOLOGY"] == "" {
		t.Fatal("examples/ci/netreconcile.yml: no env TOPOLOGY")
	}
	var cmds []string
	for _, job := range wf.Jobs {
		for _, s := range job.Steps {
			for _, line := range strings.Split(s.Run, "\n") {
				if line = strings.TrimSpace(line); strings.HasPrefix(line, "netreconcile ") {
					cmds = append(cmds, line)
				}
			}
		}
	}
	return cmds
}

// TestCIExample runs the netreconcile commands of examples/ci's workflow,
// as its steps write them (through bash, with TOPOLOGY set), against every
// example topology, as an unprivileged user (nobody when the test runs as
// root) in a directory holding only the examples: each must succeed, and
// the plan must be the summary table then the plans. A verb the binary does not have yet
// (diff, until it lands) is skipped and logged.
func TestCIExample(t *testing.T) {
	cmds := ciCommands(t)
	if len(cmds) < 3 {
		t.Fatalf("the workflow has %d netreconcile commands, want validate, plan and diff: %q", len(cmds), cmds)
	}
	bin := BuildBinary(t)
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	examples, err := filepath.Glob(filepath.Join(root, "examples/*.yaml"))
	if err != nil || len(examples) == 0 {
		t.Fatalf("examples: %v %v", examples, err)
	}
	// A world-readable work tree with a copy of the binary on PATH.
	work := publicDir(t)
	if err := os.Chmod(work, 0o777); err != nil { // nobody writes the outputs here
		t.Fatal(err)
	}
	binDir := filepath.Join(work, "bin")
	mkdirPublic(t, binDir)
	mkdirPublic(t, filepath.Join(work, "examples"))
	binBytes, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	writePublic(t, filepath.Join(binDir, "netreconcile"), binBytes, 0o755)
	for _, ex := range examples {
		b, err := os.ReadFile(ex)
		if err != nil {
			t.Fatal(err)
		}
		writePublic(t, filepath.Join(work, "examples", filepath.Base(ex)), b, 0o644)
	}
	has := map[string]bool{}
	for _, ex := range examples {
		topo := "examples/" + filepath.Base(ex)
		t.Run(filepath.Base(ex), func(t *testing.T) {
			_ = os.Remove(filepath.Join(work, "plan.txt"))
			// The base branch's file: here the same one.
			writePublic(t, filepath.Join(work, "base.yaml"), mustRead(t, ex), 0o644)
			for _, line := range cmds {
				verb := strings.Fields(line)[1]
				ok, seen := has[verb]
				if !seen {
					_, _, code := unprivileged(t, work, binDir, topo, "netreconcile "+verb+" --help")
					ok, has[verb] = code == 0, code == 0
				}
				if !ok {
					t.Logf("skipped (no verb %s in this binary): %s", verb, line)
					continue
				}
				out, errOut, code := unprivileged(t, work, binDir, topo, line)
				if code != 0 {
					t.Errorf("%s: exit %d\n%s%s", line, code, out, errOut)
				}
			}
			plan := string(mustRead(t, filepath.Join(work, "plan.txt")))
			if !regexp.MustCompile(`^node +add +change +destroy\n`).MatchString(plan) || !strings.Contains(plan, "Plan: ") {
				t.Errorf("plan.txt is not a summary table then the plans:\n%s", plan)
			}
		})
	}
}

// unprivileged runs a workflow line through bash in dir, with the binary
// first on PATH and TOPOLOGY set: as nobody when the test is root.
func unprivileged(t *testing.T, dir, binDir, topo, line string) (string, string, int) {
	t.Helper()
	argv := []string{"/bin/bash", "-euo", "pipefail", "-c", "cd " + dir + " && " + line}
	env := []string{"PATH=" + binDir + ":/usr/bin:/bin", "TOPOLOGY=" + topo, "HOME=" + dir}
	if os.Geteuid() == 0 {
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Skip("root, and no setpriv to drop privileges")
		}
		argv = append([]string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"}, argv...)
	}
	return Run(t, "/usr/bin/env", append(append([]string{"-i"}, env...), argv...)...)
}

func mkdirPublic(t *testing.T, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
