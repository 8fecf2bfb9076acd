// Package benchnode holds what the benchmarks under e2e/bench share: a
// throwaway node namespace with an uplink, the raw-netlink floor for
// creating veth pods (the same objects netreconcile's veth driver makes,
// with no observation, diffing or verification), building the binary and
// bringing a lab up and down, running `netreconcile watch` and reading
// its passes from its log, iperf3 runs, main's signal handling, and
// formatting.
//
// Everything lives in namespaces named after a random id; callers delete
// them on every exit path (the returned cleanups do).
package benchnode

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/netreconcile/netreconcile/drivers/veth"
	"github.com/netreconcile/netreconcile/internal/nsutil"
)

// Node address on the uplink of every benchmark node.
const (
	NodeAddr = "172.31.1.2/24"
	Uplink   = "eth0"
)

// RandID returns prefix followed by 6 random hex digits: short enough to
// build namespace and interface names on.
func RandID(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// PodIP is the address of the i-th benchmark pod in 10.1.0.0/16: 250 per
// /24, starting at 10.1.1.1.
func PodIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 1, byte(1 + i/250), byte(1 + i%250)})
}

// NodeNS makes the namespace <id>-node with an uplink (a veth whose peer
// stays in it, unconnected) carrying NodeAddr, and returns its name.
func NodeNS(id string) (string, error) { return NodeNSAddr(id, NodeAddr) }

// NodeNSAddr is NodeNS with the uplink carrying addr (a prefix, such as
// the node's address in the file).
func NodeNSAddr(id, addr string) (string, error) {
	nodeAddr, err := netlink.ParseAddr(addr)
	if err != nil {
		return "", fmt.Errorf("node address %q: %w", addr, err)
	}
	name := id + "-node"
	if err := nsutil.Create(name); err != nil {
		return "", err
	}
	fd, err := nsutil.Open(name)
	if err != nil {
		nsutil.Delete(name)
		return "", err
	}
	defer fd.Close()
	h, err := netlink.NewHandleAt(fd)
	if err != nil {
		nsutil.Delete(name)
		return "", err
	}
	defer h.Close()
	la := netlink.NewLinkAttrs()
	la.Name = Uplink
	err = h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: Uplink + "p"})
	var up netlink.Link
	if err == nil {
		up, err = h.LinkByName(Uplink)
	}
	if err == nil {
		err = h.AddrAdd(up, nodeAddr)
	}
	if err == nil {
		err = h.LinkSetUp(up)
	}
	if err != nil {
		nsutil.Delete(name)
		return "", fmt.Errorf("node namespace %s: %w", name, err)
	}
	return name, nil
}

// FloorPods creates what netreconcile's veth driver creates for n pods
// (a namespace each with lo up, a veth pair with the peer made directly in
// it, the pod address, the gateway neighbour and default route, the host
// end up with its /32 route) with direct netlink calls in node namespace
// nodeNS, pods named <id>-f<i> and host ends nrf<i>, and returns how long
// that took. The cleanup deletes the pods' namespaces (which takes their
// veths along); call it even after an error.
func FloorPods(nodeNS, id string, n int) (time.Duration, func(), error) {
	var names []string
	cleanup := func() {
		for _, name := range names {
			_ = nsutil.Delete(name)
		}
	}
	h, err := nsutil.Handle(nodeNS)
	if err != nil {
		return 0, cleanup, err
	}
	defer h.Close()
	gw := net.ParseIP("169.254.1.1")
	mac, _ := net.ParseMAC(veth.HostMAC)
	t0 := time.Now()
	for i := range n {
		name := fmt.Sprintf("%s-f%d", id, i)
		if err := nsutil.Create(name); err != nil {
			return 0, cleanup, err
		}
		names = append(names, name)
		if err := floorPod(h, name, fmt.Sprintf("nrf%d", i), PodIP(i).AsSlice(), gw, mac); err != nil {
			return 0, cleanup, fmt.Errorf("floor pod %d: %w", i, err)
		}
	}
	return time.Since(t0), cleanup, nil
}

func floorPod(h *netlink.Handle, netnsName, host string, ip net.IP, gw net.IP, mac net.HardwareAddr) error {
	fd, err := nsutil.Open(netnsName)
	if err != nil {
		return err
	}
	defer fd.Close()
	ph, err := netlink.NewHandleAt(fd)
	if err != nil {
		return err
	}
	defer ph.Close()
	la := netlink.NewLinkAttrs()
	la.Name, la.MTU, la.HardwareAddr = host, 1500, mac
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(fd))}); err != nil {
		return err
	}
	lo, err := ph.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := ph.LinkSetUp(lo); err != nil {
		return err
	}
	eth0, err := ph.LinkByName("eth0")
	if err != nil {
		return err
	}
	if err := ph.AddrAdd(eth0, &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(32, 32)}}); err != nil {
		return err
	}
	if err := ph.LinkSetUp(eth0); err != nil {
		return err
	}
	if err := ph.NeighSet(&netlink.Neigh{LinkIndex: eth0.Attrs().Index, IP: gw, HardwareAddr: mac,
		State: netlink.NUD_PERMANENT, Family: netlink.FAMILY_V4}); err != nil {
		return err
	}
	if err := ph.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw, Flags: int(netlink.FLAG_ONLINK)}); err != nil {
		return err
	}
	hl, err := h.LinkByName(host)
	if err != nil {
		return err
	}
	if err := h.LinkSetUp(hl); err != nil {
		return err
	}
	return h.RouteAdd(&netlink.Route{LinkIndex: hl.Attrs().Index, Dst: &net.IPNet{IP: ip, Mask: net.CIDRMask(32, 32)},
		Scope: netlink.SCOPE_LINK})
}

// Median returns the median of xs (the upper one of an even count),
// leaving xs as it is.
func Median[T cmp.Ordered](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// Round formats d with about three significant digits.
func Round(d time.Duration) string {
	switch {
	case d > time.Second:
		return d.Round(time.Millisecond).String()
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(100 * time.Nanosecond).String()
}

// Tail returns the last n lines of s, for an error that quotes a log.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
