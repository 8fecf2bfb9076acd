package benchnode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// RequireRoot exits with "<what> needs root (it builds namespaces)" unless
// the process runs as root.
func RequireRoot(what string) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, what+" needs root (it builds namespaces)")
		os.Exit(1)
	}
}

// Run runs fn with a context that an interrupt or SIGTERM cancels (so the
// bench still removes what it built), and exits 1 printing its error.
func Run(fn func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := fn(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// BuildBinary compiles netreconcile into bin from the repository root
// (the working directory, or above it).
func BuildBinary(ctx context.Context, bin string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build netreconcile: %w\n%s", err, out)
	}
	return nil
}

// RepoRoot is the nearest directory at or above the working directory
// whose go.mod is netreconcile's.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if m, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			bytes.Contains(m, []byte("module github.com/netreconcile/netreconcile\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the netreconcile repository")
		}
		dir = parent
	}
}

// LabUp runs `bin lab up -f file args...` and returns the matching lab
// down, to call even when up failed (a lab half built is still taken
// down). Down runs with a fresh context, since the run's may be cancelled
// by then, and reports a failure on standard error.
func LabUp(ctx context.Context, bin, file string, args ...string) (down func(), err error) {
	lab := func(ctx context.Context, verb string) ([]byte, error) {
		return exec.CommandContext(ctx, bin, append([]string{"lab", verb, "-f", file}, args...)...).CombinedOutput()
	}
	down = func() {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if out, err := lab(dctx, "down"); err != nil {
			fmt.Fprintf(os.Stderr, "lab down -f %s: %v\n%s\n", file, err, Tail(string(out), 15))
		}
	}
	if out, err := lab(ctx, "up"); err != nil {
		return down, fmt.Errorf("lab up -f %s: %w\n%s", file, err, Tail(string(out), 15))
	}
	return down, nil
}
