// Package handles holds the netlink handles of one observe or apply pass.
package handles

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/state"
)

// Set caches one netlink handle per namespace reference for the
// duration of an observe or apply pass. Close releases them all: an open
// handle would keep a deleted namespace alive.
type Set struct {
	nodeNS string // the node namespace reference ("" = current)
	m      map[string]*netlink.Handle
	fds    map[string]netns.NsHandle
}

// New returns no handles yet for node namespace nodeNS.
func New(nodeNS string) *Set {
	return &Set{nodeNS: nodeNS, m: map[string]*netlink.Handle{}, fds: map[string]netns.NsHandle{}}
}

// Ref maps an object's namespace ("" = the node) to a real reference.
func (h *Set) Ref(ns string) string {
	if ns == "" {
		return h.nodeNS
	}
	return ns
}

// Get returns the handle for object namespace ns.
func (h *Set) Get(ns string) (*netlink.Handle, error) {
	if nh, ok := h.m[ns]; ok {
		return nh, nil
	}
	fd, err := h.FD(ns)
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

// FD returns the namespace handle of object namespace ns.
func (h *Set) FD(ns string) (netns.NsHandle, error) {
	if fd, ok := h.fds[ns]; ok {
		return fd, nil
	}
	fd, err := nsutil.Open(h.Ref(ns))
	if err != nil {
		return netns.None(), err
	}
	h.fds[ns] = fd
	return fd, nil
}

// Forget drops the cached handles of ns (before deleting it).
func (h *Set) Forget(ns string) {
	if nh, ok := h.m[ns]; ok {
		nh.Close()
		delete(h.m, ns)
	}
	if fd, ok := h.fds[ns]; ok {
		fd.Close()
		delete(h.fds, ns)
	}
}

// Close releases every handle.
func (h *Set) Close() {
	for ns := range h.fds {
		h.Forget(ns)
	}
	for ns := range h.m {
		h.Forget(ns)
	}
}
