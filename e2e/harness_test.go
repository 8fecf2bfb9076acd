package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/internal/nstest"
)

func TestHarnessUniqueName(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range []string{"", "f", "node", "toolongprefix"} {
		for range 50 {
			n := UniqueName(p)
			if len(n) > 10 || len(n) < 7 {
				t.Fatalf("UniqueName(%q) = %q: length %d", p, n, len(n))
			}
			if seen[n] {
				t.Fatalf("UniqueName(%q) repeated %q", p, n)
			}
			seen[n] = true
		}
	}
}

func TestHarnessRunAndFiles(t *testing.T) {
	f := WriteFile(t, "x.yaml", "hello\n")
	if b, err := os.ReadFile(f); err != nil || string(b) != "hello\n" {
		t.Fatalf("WriteFile: %q, %v", b, err)
	}
	sh := "/bin/sh"
	out, errOut, code := Run(t, sh, "-c", `cat "$1"; echo oops >&2; exit 3`, "sh", f)
	if out != "hello\n" || errOut != "oops\n" || code != 3 {
		t.Errorf("Run = %q, %q, %d", out, errOut, code)
	}
	if out, _, code := RunStdin(t, "from stdin", sh, "-c", "cat"); out != "from stdin" || code != 0 {
		t.Errorf("RunStdin = %q, %d", out, code)
	}
}

func TestHarnessRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "e2e", "harness.go")); err != nil {
		t.Errorf("RepoRoot() = %s, which has no e2e/harness.go", root)
	}
}

// TestHarnessDumpState dumps a throwaway namespace; the output goes to the
// test log, so only check that it runs and names what it dumps.
func TestHarnessDumpState(t *testing.T) {
	ns := nstest.TempNetns(t, "e2ed")
	rec := &recorder{TB: t}
	DumpState(rec, ns, "/nonexistent/netns", "nrlab-does-not-exist")
	all := strings.Join(rec.logs, "\n")
	for _, want := range []string{"ip -n " + ns + " -d link show", "lo:", "cannot open", "no such netns"} {
		if !strings.Contains(all, want) {
			t.Errorf("dump lacks %q:\n%s", want, all)
		}
	}
}

type recorder struct {
	testing.TB
	logs []string
}

func (r *recorder) Log(args ...any) {
	for _, a := range args {
		r.logs = append(r.logs, a.(string))
	}
}
