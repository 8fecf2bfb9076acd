package e2e

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/drivers/bridge"
	"github.com/netreconcile/netreconcile/internal/attack"
	"github.com/netreconcile/netreconcile/internal/nstest"
)

// arpView is one neighbour entry an attacker on the bridge would like to
// own: the entry of namespace ns on link for ip.
type arpView struct {
	who, ns, link string
	ip            netip.Addr
}

// testARP: on the bridge, mb claims the gateway, a's address and b's
// address by ARP, and vb's MAC by its frames; neither the bridge pods'
// nor the node's tables may follow, and mb gets no two-way connection
// under a foreign address. Everything mb changed is undone before the
// controls and at cleanup.
func (l *hostLab) testARP(t *testing.T) {
	mbMAC := l.mac(t, "mb")
	node := l.nodeNs(0)
	undo := func() {
		for _, ns := range []string{l.ns("vb"), l.ns("b")} {
			forgetMAC(ns, "eth0", mbMAC)
		}
		forgetMAC(node, bridge.Name, mbMAC)
	}
	t.Cleanup(undo)
	l.primeNeighbours(t)
	views := []arpView{
		{"vb", l.ns("vb"), "eth0", hostGateways[0]},
		{"vb", l.ns("vb"), "eth0", l.ip("a")},
		{"vb", l.ns("vb"), "eth0", l.ip("b")},
		{"b", l.ns("b"), "eth0", hostGateways[0]},
		{"b", l.ns("b"), "eth0", l.ip("a")},
		{"node", node, bridge.Name, l.ip("b")},
	}
	t.Run("gratuitous and forged ARP from mb", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		l.poison(ctx, t, mbMAC)
		for _, v := range views {
			if mac := neighMAC(v.ns, v.link, v.ip); bytes.Equal(mac, mbMAC) {
				t.Errorf("%s's neighbour entry for %s now points at the attacker mb (%s)", v.who, v.ip, mac)
			}
		}
	})
	undo()
	t.Run("two-way TCP under a foreign address from mb", func(t *testing.T) {
		for _, claim := range []string{"a", "a2"} {
			addAddr(t, l.ns("mb"), l.ip(claim))
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); l.poison(ctx, t, mbMAC) }()
		defer func() { cancel(); wg.Wait() }()
		for _, claim := range []string{"a", "a2"} {
			if banner, err := l.tryFrom("mb", l.ip(claim), l.at("vb", 80)); err == nil {
				t.Errorf("mb holds a two-way TCP connection to isolated vb (banner %q) as %s (%s)", banner, claim, l.ip(claim))
			}
		}
	})
	undo()
	t.Run("source MAC of vb from mb", func(t *testing.T) {
		l.spoofMAC(t, mbMAC)
	})
	undo()
	t.Run("control: bridge pods reach each other", func(t *testing.T) {
		for _, c := range [][2]string{{"b", "mb"}, {"mb", "b"}, {"a", "vb"}} {
			nstest.CheckTCP(t, l.ns(c[0]), l.at(c[1], 80).String())
		}
	})
}

func (l *hostLab) mac(t *testing.T, pod string) net.HardwareAddr {
	t.Helper()
	mac, err := attack.MAC(l.ns(pod), "eth0")
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

// primeNeighbours makes vb, b and the node resolve the addresses the
// attack claims, so that gratuitous ARP has entries to overwrite (Linux
// does not create entries from it), and waits for them.
func (l *hostLab) primeNeighbours(t *testing.T) {
	t.Helper()
	node := l.nodeNs(0)
	poke := func(ns string, src netip.Addr, dsts ...netip.Addr) {
		for _, d := range dsts {
			_ = attack.SendUDPFrom(ns, netip.AddrPortFrom(src, 0), netip.AddrPortFrom(d, 9), []byte("prime"))
		}
	}
	deadline := time.Now().Add(hostYes)
	for time.Now().Before(deadline) {
		poke(l.ns("vb"), l.ip("vb"), l.ip("a"), l.ip("b"), l.ip("a2"))
		poke(l.ns("b"), l.ip("b"), l.ip("a"), l.ip("a2"))
		poke(node, hostGateways[0], l.ip("b"))
		if neighMAC(l.ns("vb"), "eth0", hostGateways[0]) != nil && neighMAC(l.ns("vb"), "eth0", l.ip("b")) != nil &&
			neighMAC(l.ns("b"), "eth0", hostGateways[0]) != nil && neighMAC(node, bridge.Name, l.ip("b")) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("not every neighbour entry resolved before the attack; ARP requests from mb create them anyway")
}

// poison sends mb's claims every 100 ms until ctx ends: the gateway and
// a's address to vb and b, b's address to vb and to the node's bridge.
// More than a second of it outlasts the kernel's neighbour locktime.
func (l *hostLab) poison(ctx context.Context, t *testing.T, mbMAC net.HardwareAddr) {
	vb := attack.Host{MAC: l.mac(t, "vb"), IP: l.ip("vb")}
	b := attack.Host{MAC: l.mac(t, "b"), IP: l.ip("b")}
	brMAC, err := attack.MAC(l.nodeNs(0), bridge.Name)
	if err != nil {
		t.Error(err)
		return
	}
	node := attack.Host{MAC: brMAC, IP: hostGateways[0]}
	var frames [][]byte
	frames = append(frames, attack.ClaimFrames(mbMAC, hostGateways[0], []attack.Host{vb, b})...)
	frames = append(frames, attack.ClaimFrames(mbMAC, l.ip("a"), []attack.Host{vb, b})...)
	frames = append(frames, attack.ClaimFrames(mbMAC, l.ip("b"), []attack.Host{vb, node})...)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := attack.SendFrames(l.ns("mb"), "eth0", false, frames...); err != nil {
			t.Error(err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// tryFrom makes a TCP echo round trip from pod, bound to src, to dst.
func (l *hostLab) tryFrom(pod string, src netip.Addr, dst netip.AddrPort) (string, error) {
	c, err := attack.DialTCPFrom(l.ns(pod), src, dst, hostNo)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return echoFrom(c, hostNo)
}

// spoofMAC: mb sends frames with vb's MAC as their source; the node's
// bridge must keep vb's MAC on vb's port.
func (l *hostLab) spoofMAC(t *testing.T, mbMAC net.HardwareAddr) {
	node := l.nodeNs(0)
	vbMAC := l.mac(t, "vb")
	frame := attack.ARP{Op: attack.ARPRequest, SenderMAC: vbMAC, SenderIP: l.ip("vb"), TargetIP: hostGateways[0]}.Frame(attack.Broadcast)
	for range 5 {
		if err := attack.SendFrames(l.ns("mb"), "eth0", false, frame); err != nil {
			t.Fatal(err)
		}
	}
	vbPort, mbPort := fdbPort(t, node, vbMAC), fdbPort(t, node, mbMAC)
	t.Cleanup(func() {
		// Forget what the bridge learnt from the forged frames and let
		// vb speak again so that it relearns the right port.
		_ = withLink(node, bridge.Name, func(h *netlink.Handle, br netlink.Link) error {
			return h.NeighDel(&netlink.Neigh{LinkIndex: vbPort, Family: unix.AF_BRIDGE, HardwareAddr: vbMAC,
				MasterIndex: br.Attrs().Index, Flags: netlink.NTF_MASTER})
		})
		_ = attack.SendUDPFrom(l.ns("vb"), netip.AddrPortFrom(l.ip("vb"), 0), netip.AddrPortFrom(hostGateways[0], 9), []byte("relearn"))
	})
	if vbPort != 0 && vbPort == mbPort {
		t.Errorf("the node's bridge learnt vb's MAC %s on mb's port (ifindex %d) from mb's forged frames", vbMAC, mbPort)
	}
}

// fdbPort returns the bridge port (ifindex) on which the node's bridge
// has learnt mac, or 0.
func fdbPort(t *testing.T, nodeNs string, mac net.HardwareAddr) int {
	t.Helper()
	port := 0
	err := withLink(nodeNs, bridge.Name, func(h *netlink.Handle, br netlink.Link) error {
		ns, err := h.NeighList(0, unix.AF_BRIDGE)
		for _, n := range ns {
			if n.MasterIndex == br.Attrs().Index && bytes.Equal(n.HardwareAddr, mac) {
				port = n.LinkIndex
			}
		}
		return err
	})
	if err != nil {
		t.Fatalf("bridge fdb of %s: %v", nodeNs, err)
	}
	return port
}
