// Package nsutil opens, creates and enters network namespaces.
//
// Netlink work never needs this package's thread switching: use one
// netlink.Handle per namespace (Handle). Do is for the few
// things that act on the calling thread's namespace: /proc/sys writes,
// opening sockets, attaching tcx programs.
package nsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Dir is where named namespaces live (iproute2's convention).
const Dir = "/var/run/netns"

// Path turns a namespace reference (a name under Dir or an absolute path)
// into a path. The empty reference is the current namespace.
func Path(ref string) string {
	switch {
	case ref == "":
		return ""
	case strings.HasPrefix(ref, "/"):
		return ref
	default:
		return filepath.Join(Dir, ref)
	}
}

// Open returns a handle on the namespace ref; "" is the calling thread's.
// The caller must Close it: an open handle keeps a deleted namespace alive.
func Open(ref string) (netns.NsHandle, error) {
	if ref == "" {
		h, err := netns.Get()
		if err != nil {
			return netns.None(), fmt.Errorf("open current netns: %w", err)
		}
		return h, nil
	}
	if !isNetns(Path(ref)) {
		return netns.None(), fmt.Errorf("open netns %q: %w", ref, ErrNotNetns)
	}
	h, err := netns.GetFromPath(Path(ref))
	if err != nil {
		return netns.None(), fmt.Errorf("open netns %q: %w", ref, err)
	}
	return h, nil
}

// ErrNotNetns is returned for a path that exists but is not a mounted
// network namespace (missing, or a file left by an interrupted create).
var ErrNotNetns = errors.New("not a network namespace")

// isNetns reports whether path is a bind-mounted namespace (nsfs).
func isNetns(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// Exists reports whether ref names a namespace that can be opened.
func Exists(ref string) bool {
	if ref == "" {
		return true
	}
	h, err := Open(ref)
	if err != nil {
		return false
	}
	h.Close()
	return true
}

// Create makes the named namespace under Dir (like `ip netns add`) without
// changing the calling thread's namespace. Its loopback stays down.
func Create(name string) error { return CreateMarked(name, "") }

// CreateMarked is Create giving the loopback the alias loAlias (when not
// empty) before the namespace gets its name: no one, a crash included,
// ever sees it named but unmarked.
func CreateMarked(name, loAlias string) error {
	if strings.Contains(name, "/") {
		return fmt.Errorf("create netns %q: not a plain name", name)
	}
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return fmt.Errorf("create netns %q: %w", name, err)
	}
	if err := sharedDirOnce(); err != nil {
		return fmt.Errorf("create netns %q: make %s a shared mount point: %w", name, Dir, err)
	}
	// A plain file in the way is what an interrupted create leaves (the
	// file is made before the namespace is mounted on it).
	if p := Path(name); !isNetns(p) {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("create netns %q: remove leftover: %w", name, err)
		}
	}
	// netns.NewNamed switches the thread into the new namespace; keep the
	// thread locked and switch back before unlocking.
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("create netns %q: %w", name, err)
	}
	defer orig.Close()
	h, err := newNamed(name, loAlias)
	if err != nil {
		if rerr := netns.Set(orig); rerr != nil {
			return fmt.Errorf("create netns %q: %w (and restore failed: %v; thread stays locked)", name, err, rerr)
		}
		runtime.UnlockOSThread()
		return fmt.Errorf("create netns %q: %w", name, err)
	}
	h.Close()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: it is in the wrong namespace and the
		// runtime will discard it when the goroutine exits.
		return fmt.Errorf("create netns %q: restore: %w", name, err)
	}
	runtime.UnlockOSThread()
	return nil
}

// newNamed is netns.NewNamed marking the loopback between unshare and
// the bind mount that names the namespace. The thread is locked.
func newNamed(name, loAlias string) (netns.NsHandle, error) {
	h, err := netns.New()
	if err != nil {
		return netns.None(), err
	}
	if loAlias != "" {
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetAlias(lo, loAlias)
		}
		if err != nil {
			h.Close()
			return netns.None(), fmt.Errorf("mark loopback: %w", err)
		}
	}
	p := Path(name)
	f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		h.Close()
		return netns.None(), err
	}
	f.Close()
	if err := unix.Mount(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), p, "bind", unix.MS_BIND, ""); err != nil {
		h.Close()
		os.Remove(p)
		return netns.None(), fmt.Errorf("bind mount %s: %w", p, err)
	}
	return h, nil
}

// sharedDirOnce runs sharedDir once per process: with MS_REC the call
// walks every namespace mounted below Dir, so a thousand creations would
// cost a quadratic number of steps.
var sharedDirOnce = sync.OnceValue(sharedDir)

// sharedDir makes Dir a shared mount point, as `ip netns add` does the
// first time after boot. Otherwise a namespace mounted on the plain
// directory is hidden once iproute2 binds the directory over itself, and
// its name can never be removed again (EBUSY): it is a mount point in a
// mount that is no longer visible.
func sharedDir() error {
	for bound := false; ; bound = true {
		err := unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil || !errors.Is(err, unix.EINVAL) || bound {
			return err
		}
		// Not a mount point yet.
		if err := unix.Mount(Dir, Dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
	}
}

// Delete removes the named namespace (like `ip netns del`). A namespace
// that is already gone is not an error.
func Delete(name string) error {
	p := Path(name)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete netns %q: unmount: %w", name, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete netns %q: %w", name, err)
	}
	return nil
}

// Do runs fn on a locked OS thread switched into the namespace ref, then
// switches back. If switching back fails the thread stays locked so that
// the runtime discards it rather than reusing a thread in the wrong
// namespace.
func Do(ref string, fn func() error) error {
	if ref == "" {
		return fn()
	}
	target, err := Open(ref)
	if err != nil {
		return err
	}
	defer target.Close()
	return DoHandle(target, fn)
}

// DoHandle is Do with an already open namespace handle.
func DoHandle(target netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns: %w", err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		return errors.Join(ferr, fmt.Errorf("restore netns: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// ReadSysctl reads /proc/sys/<key> (key with '/' separators) in ref.
func ReadSysctl(ref, key string) (string, error) {
	var out string
	err := Do(ref, func() error {
		b, err := os.ReadFile(filepath.Join("/proc/sys", key))
		if err != nil {
			return err
		}
		out = strings.TrimSpace(string(b))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read sysctl %s: %w", key, err)
	}
	return out, nil
}

// WriteSysctl writes /proc/sys/<key> in ref. Files under /proc/sys/net
// resolve to the namespace of the thread that opens them, so the write
// changes only ref.
func WriteSysctl(ref, key, value string) error {
	err := Do(ref, func() error {
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644)
	})
	if err != nil {
		return fmt.Errorf("write sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// Handle returns a netlink handle (NETLINK_ROUTE only) whose socket lives
// in the namespace ref, without switching the calling thread. The caller
// must Close it.
func Handle(ref string) (*netlink.Handle, error) {
	ns, err := Open(ref)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in netns %q: %w", ref, err)
	}
	return h, nil
}
