package nodelock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// flock locks belong to open file descriptions, so two Acquires in one
// process contend exactly like two processes do.
func TestAcquireWaitsThenGetsIn(t *testing.T) {
	dir := t.TempDir()
	first, err := Acquire(context.Background(), dir, "n1", "netreconcile watch", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h := ReadHolder(Path(dir, "n1")); h.PID != os.Getpid() || h.Command != "netreconcile watch" || h.Since.IsZero() {
		t.Errorf("holder = %+v", h)
	}
	// A different node is independent.
	other, err := Acquire(context.Background(), dir, "n2", "apply", 0, nil)
	if err != nil {
		t.Fatalf("other node: %v", err)
	}
	other.Release()

	// Not waiting: fails at once, naming the holder.
	_, err = Acquire(context.Background(), dir, "n1", "apply", 0, nil)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "netreconcile watch") {
		t.Fatalf("second acquire: %v", err)
	}

	// Waiting: told once, gets in when the first releases.
	var told []Holder
	done := make(chan error, 1)
	go func() {
		l, err := Acquire(context.Background(), dir, "n1", "apply", 10*time.Second, func(h Holder) { told = append(told, h) })
		if err == nil {
			l.Release()
		}
		done <- err
	}()
	time.Sleep(3 * pollInterval)
	select {
	case err := <-done:
		t.Fatalf("acquired while held: %v", err)
	default:
	}
	first.Release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter never got the lock")
	}
	if len(told) != 1 || told[0].PID != os.Getpid() {
		t.Errorf("waiting callback: %+v", told)
	}
}

func TestAcquireTimeoutAndCancel(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(context.Background(), dir, "n", "watch", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	start := time.Now()
	_, err = Acquire(context.Background(), dir, "n", "apply", 300*time.Millisecond, nil)
	if !errors.Is(err, ErrLocked) || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("timeout: %v after %v", err, time.Since(start))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = Acquire(ctx, dir, "n", "apply", -1, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancel: %v", err)
	}
}

func TestReleaseIdempotent(t *testing.T) {
	l, err := Acquire(context.Background(), t.TempDir(), "n", "x", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	var nilLock *Lock
	if err := nilLock.Release(); err != nil {
		t.Fatal(err)
	}
}

// A symbolic link planted at the lock path is refused, not followed: the
// file it points to is neither truncated nor written.
func TestAcquireRefusesASymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(target, []byte("keep me\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, Path(dir, "n1")); err != nil {
		t.Fatal(err)
	}
	if l, err := Acquire(context.Background(), dir, "n1", "apply", 0, nil); err == nil || !errors.Is(err, unix.ELOOP) {
		l.Release()
		t.Fatalf("acquire through a symlink: %v", err)
	}
	if h := ReadHolder(Path(dir, "n1")); h.PID != 0 {
		t.Errorf("holder read through the symlink: %+v", h)
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "keep me\n" {
		t.Fatalf("the link's target changed: %q %v", b, err)
	}
}
