package reconcile

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/state"
)

// handles caches one netlink handle per namespace reference for the
// duration of an observe or apply pass. Close releases them all: an open
// handle would keep a deleted namespace alive.
type handles struct {
	nodeNS string // the node namespace reference ("" = current)
	m      map[string]*netlink.Handle
	fds    map[string]netns.NsHandle
}

func newHandles(nodeNS string) *handles {
	return &handles{nodeNS: nodeNS, m: map[string]*netlink.Handle{}, fds: map[string]netns.NsHandle{}}
}

// ref maps an object's namespace ("" = the node) to a real reference.
func (h *handles) ref(ns string) string {
	if ns == "" {
		return h.nodeNS
	}
	return ns
}

// get returns the handle for object namespace ns.
func (h *handles) get(ns string) (*netlink.Handle, error) {
	if nh, ok := h.m[ns]; ok {
		return nh, nil
	}
	fd, err := h.fd(ns)
	if err != nil {
		return nil, err
	}
	nh, err := netlink.NewHandleAt(fd, unix.NETLINK_ROUTE) // one socket, not one per family
	if err != nil {
		return nil, fmt.Errorf("netlink in netns %q: %w", state.NSLabel(ns), err)
	}
	h.m[ns] = nh
	return nh, nil
}

func (h *handles) fd(ns string) (netns.NsHandle, error) {
	if fd, ok := h.fds[ns]; ok {
		return fd, nil
	}
	fd, err := nsutil.Open(h.ref(ns))
	if err != nil {
		return netns.None(), err
	}
	h.fds[ns] = fd
	return fd, nil
}

// forget drops the cached handles of ns (before deleting it).
func (h *handles) forget(ns string) {
	if nh, ok := h.m[ns]; ok {
		nh.Close()
		delete(h.m, ns)
	}
	if fd, ok := h.fds[ns]; ok {
		fd.Close()
		delete(h.fds, ns)
	}
}

func (h *handles) Close() {
	for ns := range h.fds {
		h.forget(ns)
	}
	for ns := range h.m {
		h.forget(ns)
	}
}

// retryDump runs a netlink dump again when the kernel reports that it was
// interrupted by a concurrent change (the results would be partial).
func retryDump[T any](f func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range 5 {
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

func isNotFound(err error) bool {
	var lnf netlink.LinkNotFoundError
	return errors.As(err, &lnf)
}
