// Package e2e tests netreconcile end to end: through the real binary, on
// labs of network namespaces (see package lab), checking connectivity with
// real traffic (see internal/nstest).
//
// Every test here needs root and skips without it: BuildBinary skips, so
// any test that runs the binary does. Tests build everything in namespaces
// with unique names (UniqueName) and remove them at cleanup, so several
// runs can share a machine and the root namespace is never changed.
//
// The usual shape:
//
//	bin := e2e.BuildBinary(t)
//	file := e2e.WriteFile(t, "topo.yaml", topology)
//	e2e.Run(t, bin, "lab", "up", "-f", file)
//	e2e.LabDown(t, bin, file)
//	e2e.DumpOnFailure(t, lab.NodeNetns(node))
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/internal/nstest"
)

// Module is the module path that identifies the repository root.
const Module = "github.com/netreconcile/netreconcile"

// Time limits of the harness's commands. A hung binary fails its test
// instead of stalling the whole run until go test's own timeout.
const (
	BuildTimeout = 5 * time.Minute
	RunTimeout   = 2 * time.Minute
)

// buildDirPrefix names the per-process directory holding the binary.
const buildDirPrefix = "netreconcile-e2e-"

var build struct {
	once sync.Once
	bin  string
	err  error
}

// BuildBinary builds the netreconcile binary from the repository root,
// once per test process, and returns its path. It skips the test unless
// running as root: every use of the binary here builds namespaces.
//
// The binary lives in a directory named after the test process's pid
// under the system temp directory; directories of earlier processes that
// have exited are removed on the next build, so no TestMain is needed.
func BuildBinary(t testing.TB) string {
	t.Helper()
	nstest.RequireRoot(t)
	build.once.Do(func() { build.bin, build.err = buildBinary() })
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

func buildBinary() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	sweepStaleBuilds()
	dir := filepath.Join(os.TempDir(), buildDirPrefix+strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build netreconcile: %w", err)
	}
	bin := filepath.Join(dir, "netreconcile")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	ctx, cancel := context.WithTimeout(context.Background(), BuildTimeout)
	defer cancel()
	// -tags crashtest: the crash tests' fault injection
	// (NETRECONCILE_CRASH_AFTER) exists only in such a build.
	cmd := exec.CommandContext(ctx, goTool, "build", "-tags", "crashtest", "-o", bin, ".")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build netreconcile in %s: %w\n%s", root, err, out)
	}
	return bin, nil
}

// sweepStaleBuilds removes build directories of test processes that no
// longer exist. Directories of live processes, ours included, stay.
func sweepStaleBuilds() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), buildDirPrefix+"*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), buildDirPrefix))
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}

// RepoRoot finds the repository root: the nearest directory at or above
// the working directory (the e2e package's directory under go test) whose
// go.mod declares Module.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module "+Module+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find repository root: no go.mod of %s above the working directory", Module)
		}
		dir = parent
	}
}

// Run runs bin with args and returns its standard output, standard error
// and exit code. A command that cannot start or outlives RunTimeout fails
// the test. The command line and exit code are logged, so that a failing
// test shows what it ran.
func Run(t testing.TB, bin string, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	return RunStdin(t, "", bin, args...)
}

// RunStdin is Run with stdin as the command's standard input (for
// `-f -`).
func RunStdin(t testing.TB, stdin, bin string, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), RunTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	// Kill what the binary started too (e.g. a helper in a namespace):
	// its own process group, never anything else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	err := cmd.Run()
	line := filepath.Base(bin) + " " + strings.Join(args, " ")
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("$ %s: timed out after %v\nstdout:\n%s\nstderr:\n%s", line, RunTimeout, out.String(), errOut.String())
	case errors.As(err, &ee):
		exit = ee.ExitCode() // -1 when killed by a signal
	case err != nil:
		t.Fatalf("$ %s: %v", line, err)
	}
	t.Logf("$ %s  # exit %d in %v", line, exit, time.Since(start).Round(time.Millisecond))
	return out.String(), errOut.String(), exit
}

// UniqueName returns a short random name (at most 10 characters): up to 4
// characters of prefix ("t" when empty) and 6 random hex digits. Short
// enough to build namespace and interface names (15 characters at most)
// on top of it; random so that parallel runs never clash.
func UniqueName(prefix string) string {
	if prefix == "" {
		prefix = "t"
	}
	if len(prefix) > 4 {
		prefix = prefix[:4]
	}
	b := make([]byte, 3)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// WriteFile writes content to name in the test's temporary directory and
// returns the path.
func WriteFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// LabDown registers a cleanup that runs `bin lab down -f file` (plus
// extra arguments, such as a state directory) and fails the test if it
// does not succeed. Register it right after a successful `lab up`;
// cleanups registered later (servers, DumpOnFailure) run before it.
func LabDown(t testing.TB, bin, file string, extra ...string) {
	t.Helper()
	t.Cleanup(func() {
		out, errOut, code := Run(t, bin, append([]string{"lab", "down", "-f", file}, extra...)...)
		if code != 0 {
			t.Errorf("lab down -f %s: exit %d\nstdout:\n%s\nstderr:\n%s", file, code, out, errOut)
		}
	})
}

// DumpState logs the network state of each namespace: links (with
// details), addresses, routes, neighbours and bridge FDB. A reference is a
// name under /var/run/netns, an absolute path, or "" for the test's own
// namespace (only read). Meant for failing tests; see DumpOnFailure.
func DumpState(t testing.TB, nsRefs ...string) {
	t.Helper()
	cmds := [][]string{
		{"ip", "-d", "link", "show"},
		{"ip", "addr", "show"},
		{"ip", "route", "show"},
		{"ip", "-6", "route", "show"},
		{"ip", "neigh", "show"},
		{"bridge", "fdb", "show"},
	}
	for _, ref := range nsRefs {
		var b strings.Builder
		fmt.Fprintf(&b, "==== state of netns %q ====\n", ref)
		if strings.HasPrefix(ref, "/") || ref == "" {
			if _, err := os.Stat(ref); ref != "" && err != nil {
				fmt.Fprintf(&b, "(cannot open: %v)\n", err)
				t.Log(b.String())
				continue
			}
		} else if _, err := os.Stat(filepath.Join("/var/run/netns", ref)); err != nil {
			fmt.Fprintf(&b, "(no such netns: %v)\n", err)
			t.Log(b.String())
			continue
		}
		for _, c := range cmds {
			argv := inNetns(ref, c)
			fmt.Fprintf(&b, "--- %s\n", strings.Join(argv, " "))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
			cancel()
			b.Write(out)
			if err != nil {
				fmt.Fprintf(&b, "(%v)\n", err)
			}
		}
		t.Log(b.String())
	}
}

// inNetns turns an iproute2 command into one that runs in ref.
func inNetns(ref string, argv []string) []string {
	switch {
	case ref == "":
		return argv
	case strings.HasPrefix(ref, "/"):
		return append([]string{"nsenter", "--net=" + ref}, argv...)
	default:
		// ip and bridge both take -n NAME (iproute2's -netns).
		return append([]string{argv[0], "-n", ref}, argv[1:]...)
	}
}

// DumpOnFailure registers a cleanup that runs DumpState if the test has
// failed by then. Register it after LabDown so that it runs before.
func DumpOnFailure(t testing.TB, nsRefs ...string) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			DumpState(t, nsRefs...)
		}
	})
}
