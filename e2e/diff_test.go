package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestDiffUnprivileged runs diff as CI would: as an unprivileged user
// (nobody), on an example and the same with a policy that isolates the
// service's backends, with --state-dir pointing nowhere it could use.
func TestDiffUnprivileged(t *testing.T) {
	bin := BuildBinary(t)
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join(root, "examples", "services.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// A directory nobody can read: t.TempDir() is root's alone.
	dir, err := os.MkdirTemp("", "nrdiff")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old, new := filepath.Join(dir, "old.yaml"), filepath.Join(dir, "new.yaml")
	isolated := string(example) + "policies:\n  - {name: web-closed, namespace: svc, spec: {podSelector: {matchLabels: {app: web}}}}\n"
	for path, text := range map[string]string{old: string(example), new: isolated} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stateDir := filepath.Join(dir, "state")

	out, errOut, code := runAsNobody(t, bin, "diff", "--state-dir", stateDir, "--detailed-exitcode", "-o", "json", old, new)
	if code != 2 {
		t.Fatalf("diff as nobody: exit %d, want 2\n%s%s", code, out, errOut)
	}
	var doc struct {
		Objects []struct {
			Action, Kind, Key string
		} `json:"objects"`
		Reachability []struct {
			From, To, Before, After string
			Port                    int
		} `json:"reachability"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("diff -o json: %v\n%s", err, out)
	}
	if len(doc.Objects) != 1 || doc.Objects[0].Key != "svc/web-closed" || doc.Objects[0].Action != "create" {
		t.Errorf("objects: %+v, want the policy svc/web-closed created", doc.Objects)
	}
	// Every pod loses the service: the client, and each backend, which
	// may still reach itself but no longer the other backend.
	var lost []string
	for _, c := range doc.Reachability {
		if c.To == "svc/web" && c.Port == 80 && c.Before == "allowed" && c.After == "denied" {
			lost = append(lost, c.From)
		}
	}
	if strings.Join(lost, " ") != "svc/client svc/web1 svc/web2" || len(doc.Reachability) != 3 {
		t.Errorf("reachability: %+v, want svc/client, svc/web1 and svc/web2 denied svc/web on 80", doc.Reachability)
	}
	if _, err := os.Lstat(stateDir); !os.IsNotExist(err) {
		t.Errorf("diff made the state directory: %v", err)
	}
	md, errOut, code := runAsNobody(t, bin, "diff", "-o", "markdown", old, old)
	if code != 0 || !strings.Contains(md, "No changes.") {
		t.Errorf("diff of a file with itself: exit %d, %q %q", code, md, errOut)
	}
}

// runAsNobody runs bin as uid and gid 65534.
func runAsNobody(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s as nobody: %v", bin, err)
	}
	t.Logf("$ (nobody) netreconcile %s  # exit %d", strings.Join(args, " "), code)
	return out.String(), errOut.String(), code
}
