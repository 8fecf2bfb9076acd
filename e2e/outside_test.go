package e2e

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/netreconcile/netreconcile/internal/nstest"
	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/lab"
	"github.com/netreconcile/netreconcile/spec"
)

// The "outside" of a lab: a host on an address in no cluster range,
// which pods reach only through their node (masqueraded) and which
// reaches services only on node addresses and external IPs. It is an
// address on the loopback of the lab's underlay namespace, the router of
// every node's default route; servers for it run in that namespace.

// OutsideAddr is the outside host's usual address (TEST-NET-2).
const OutsideAddr = "198.51.100.10"

// underlayOf returns the underlay namespace of the lab of the file at
// path.
func underlayOf(t *testing.T, path string) string {
	t.Helper()
	r, err := spec.LoadFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	return lab.UnderlayNetns(r)
}

// addOutside puts addr (/32) on the loopback of the underlay namespace ul,
// up, and removes it at cleanup (a lab down that deleted the namespace
// first removed it already).
func addOutside(t *testing.T, ul, addr string) {
	t.Helper()
	h, err := nsutil.Handle(ul)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatalf("outside %s: loopback of %s: %v", addr, ul, err)
	}
	a := &netlink.Addr{IPNet: netlink.NewIPNet(net.ParseIP(addr))}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatalf("outside %s: loopback up in %s: %v", addr, ul, err)
	}
	if err := h.AddrReplace(lo, a); err != nil {
		t.Fatalf("outside %s: add to %s: %v", addr, ul, err)
	}
	t.Cleanup(func() {
		if h, err := nsutil.Handle(ul); err == nil {
			lo, err := h.LinkByName("lo")
			if err == nil {
				_ = h.AddrDel(lo, a)
			}
			h.Close()
		}
	})
}

// udpSources is a UDP server in ns on addr that records the source
// address of every datagram and answers it (the answer reaches a
// masqueraded client; a pod's own address is not routed back).
type udpSources struct {
	mu   sync.Mutex
	seen []netip.Addr
}

func startUDPSources(t *testing.T, ns, addr string) *udpSources {
	t.Helper()
	pc, err := nstest.ListenUDP(ns, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	u := &udpSources{}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			src := from.(*net.UDPAddr).AddrPort().Addr().Unmap()
			u.mu.Lock()
			u.seen = append(u.seen, src)
			u.mu.Unlock()
			pc.WriteTo(append([]byte("seen "+src.String()+"\n"), buf[:n]...), from)
		}
	}()
	return u
}

// sources returns the addresses seen so far, and forgets them.
func (u *udpSources) sources() []netip.Addr {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := u.seen
	u.seen = nil
	return out
}
