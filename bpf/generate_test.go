package bpf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedUpToDate regenerates the objects with bpf2go, exactly as
// gen.go's go:generate line says, into a temporary directory and fails if
// the committed files differ (bpf2go output is reproducible with the same
// clang major version). Without clang it skips, unless
// NETRECONCILE_REQUIRE_CLANG is set (CI: see check-generated.sh).
func TestGeneratedUpToDate(t *testing.T) {
	if _, err := exec.LookPath("clang"); err != nil {
		if os.Getenv("NETRECONCILE_REQUIRE_CLANG") != "" {
			t.Fatal("clang is required to check the generated objects")
		}
		t.Skip("clang not installed: cannot regenerate the eBPF objects")
	}
	args := generateArgs(t)
	if len(args) < 3 || args[0] != "go" || args[1] != "tool" || args[2] != "bpf2go" {
		t.Fatalf("unexpected go:generate line: %q", args)
	}
	out := t.TempDir()
	cmd := exec.Command("go", append([]string{"tool", "bpf2go", "-output-dir", out}, args[3:]...)...)
	cmd.Env = append(os.Environ(), "GOPACKAGE=bpf", "GOFILE=gen.go")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bpf2go: %v\n%s", err, b)
	}
	generated, err := filepath.Glob(filepath.Join(out, "*"))
	if err != nil || len(generated) == 0 {
		t.Fatalf("bpf2go wrote nothing (%v)", err)
	}
	for _, path := range generated {
		name := filepath.Base(path)
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Errorf("%s is generated but not committed: %v", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run `go generate ./bpf` and commit the result", name)
		}
	}
}

// generateArgs splits gen.go's go:generate line like a shell would
// (double quotes only, which is all it uses).
func generateArgs(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(l, "//go:generate "); ok {
			line = rest
		}
	}
	var (
		args   []string
		cur    strings.Builder
		quoted bool
		inArg  bool
	)
	for _, r := range line {
		switch {
		case r == '"':
			quoted, inArg = !quoted, true
		case r == ' ' && !quoted:
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args
}
