package nstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/netreconcile/netreconcile/internal/nsutil"
)

// RequireRoot skips the test unless it runs as root, which creating
// namespaces and links needs.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to create network namespaces (run `sudo go test ...`)")
	}
}

// UniqueName returns prefix, a dash and 8 random hex digits, so that
// parallel test runs never pick the same namespace or link name.
func UniqueName(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// TempNetns creates a uniquely named network namespace (prefix plus a
// random suffix; "nstest" when prefix is empty) with lo up, deletes it when
// the test ends, and returns its name. It skips the test when not root.
func TempNetns(t testing.TB, prefix string) string {
	t.Helper()
	RequireRoot(t)
	if prefix == "" {
		prefix = "nstest"
	}
	name := UniqueName(prefix)
	if err := nsutil.Create(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nsutil.Delete(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := LinkUp(name, "lo"); err != nil {
		t.Fatal(err)
	}
	return name
}

// LinkUp sets the link called link up in nsRef, through a netlink handle
// on that namespace (no thread switching).
func LinkUp(nsRef, link string) error {
	h, err := nsutil.Handle(nsRef)
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(link)
	if err != nil {
		return fmt.Errorf("set %s up in netns %q: %w", link, nsRef, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up in netns %q: %w", link, nsRef, err)
	}
	return nil
}

// WaitLinkUp waits until link in nsRef is operationally up. The kernel
// attaches a device's queueing discipline asynchronously after it sees the
// carrier and drops what is sent before, so a test that sends right after
// creating a veth would see its first SYN or ARP lost and stall for a
// retransmission timeout.
func WaitLinkUp(nsRef, link string, timeout time.Duration) error {
	h, err := nsutil.Handle(nsRef)
	if err != nil {
		return err
	}
	defer h.Close()
	deadline := time.Now().Add(timeout)
	for {
		l, err := h.LinkByName(link)
		if err != nil {
			return fmt.Errorf("wait for %s in netns %q: %w", link, nsRef, err)
		}
		if l.Attrs().OperState == netlink.OperUp {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wait for %s in netns %q: %w: still %s after %v", link, nsRef, ErrTimeout, l.Attrs().OperState, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
