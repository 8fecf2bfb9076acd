package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/internal/attack"
	"github.com/netreconcile/netreconcile/internal/nstest"
)

// testConntrack: state is written only after an allow verdict, one pod
// cannot evict the others' entries, and a forged packet cannot delete
// another pod's reverse-NAT entry.
func (l *hostLab) testConntrack(t *testing.T) {
	t.Run("flood from m", l.testFlood)
	t.Run("forged tuples from m against a's service flows", l.testReverseNAT)
}

// testFlood: established allowed connections through a 5 s flood of new
// flows from m (its own address and forged ones, to v's ports and the
// service's). Busy ones exchange data every 100 ms and must not miss one
// exchange; idle ones must still work after the flood. v -> b is the
// flow whose answers need conntrack most: v is isolated for ingress, so
// only its tracked connection lets b's answers in.
func (l *hostLab) testFlood(t *testing.T) {
	svc := netip.AddrPortFrom(hostClusterIP, hostSvcTCP).String()
	busy := l.openFlows(t, [][2]string{{"a", l.at("v", 80).String()}, {"a", svc}, {"v", l.at("b", 80).String()}})
	idle := l.openFlows(t, [][2]string{{"a", l.at("v", 80).String()}, {"a", svc}, {"v", l.at("b", 80).String()}})
	// Idle connections on which the server speaks first after the flood:
	// b to isolated v, and v to a through the service (the answer needs
	// its reverse-NAT entry).
	pushes := [][2]string{{"v", "b"}, {"a", "v"}}
	var push [][2]net.Conn
	for i, dst := range []netip.AddrPort{l.at("b", 82), netip.AddrPortFrom(hostClusterIP, hostSvcPush)} {
		c, s := l.pushFlow(t, pushes[i][0], pushes[i][1], dst)
		if err := pushed(c, s); err != nil {
			t.Fatalf("control: %s pushes to %s before the flood: %v", pushes[i][1], pushes[i][0], err)
		}
		push = append(push, [2]net.Conn{c, s})
	}
	floods := []attack.Flood{
		{Sources: netip.PrefixFrom(l.ip("m"), 32), Workers: 1, Rate: 0,
			Targets: []netip.AddrPort{l.at("v", 0), netip.AddrPortFrom(hostClusterIP, hostSvcTCP), netip.AddrPortFrom(hostClusterIP, hostSvcUDP)}},
		{Sources: netip.MustParsePrefix("10.244.0.0/16"), Workers: 1, Rate: 0,
			Targets: []netip.AddrPort{l.at("v", 0), l.at("v", 80), netip.AddrPortFrom(hostClusterIP, hostSvcTCP), netip.AddrPortFrom(hostClusterIP, hostSvcUDP)}},
	}
	var wg sync.WaitGroup
	for _, f := range floods {
		wg.Add(1)
		go func() { defer wg.Done(); l.flood(t, "m", f, 5*time.Second) }()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	failed := make([]int, len(busy))
	rounds := 0
	for exchanging := true; exchanging; rounds++ {
		select {
		case <-done:
			exchanging = false
		case <-time.After(100 * time.Millisecond):
		}
		for i, f := range busy {
			if _, err := echoFrom(f.conn, 2*time.Second); err != nil {
				if failed[i] == 0 {
					t.Errorf("%s: exchange %d during the flood from m: %v", f, rounds, err)
				}
				failed[i]++
			}
		}
	}
	for i, f := range busy {
		if failed[i] > 0 {
			t.Errorf("%s: %d of %d exchanges failed during the flood", f, failed[i], rounds)
		}
	}
	t.Logf("%d exchanges on each busy connection during the flood", rounds)
	for _, f := range idle {
		if _, err := echoFrom(f.conn, hostYes); err != nil {
			t.Errorf("%s, idle through the flood from m: %v", f, err)
		}
	}
	for i, p := range push {
		if err := pushed(p[0], p[1]); err != nil {
			t.Errorf("%s pushes to %s on a connection idle through the flood: %v", pushes[i][1], pushes[i][0], err)
		}
	}
	nstest.CheckTCP(t, l.ns("a"), l.at("v", 80).String())
}

// flow is an open TCP connection to an echo server.
type flow struct {
	from, to string
	conn     net.Conn
}

func (f flow) String() string { return f.from + " -> " + f.to }

// openFlows connects each {pod, address} and makes one exchange (a
// control); the connections close at cleanup.
func (l *hostLab) openFlows(t *testing.T, pairs [][2]string) []flow {
	t.Helper()
	var out []flow
	for _, p := range pairs {
		c, err := nstest.DialTCP(l.ns(p[0]), p[1], hostYes)
		if err == nil {
			_, err = echoFrom(c, hostYes)
		}
		if err != nil {
			t.Fatalf("control: %s -> %s before the flood: %v", p[0], p[1], err)
		}
		t.Cleanup(func() { c.Close() })
		out = append(out, flow{p[0], p[1], c})
	}
	return out
}

// testReverseNAT: m forges packets on the tuples of a's flows through the
// service (a's port to v:80 as a would send after translation, v:80's
// answer to a, and a to the clusterIP); a's flows must keep working.
func (l *hostLab) testReverseNAT(t *testing.T) {
	svcUDP := netip.AddrPortFrom(hostClusterIP, hostSvcUDP).String()
	u, err := nstest.DialUDP(l.ns("a"), svcUDP, hostYes)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	c, err := nstest.DialTCP(l.ns("a"), netip.AddrPortFrom(hostClusterIP, hostSvcTCP).String(), hostYes)
	if err != nil {
		t.Fatalf("control: a -> service tcp: %v", err)
	}
	defer c.Close()
	if err := udpExchange(u); err != nil {
		t.Fatalf("control: a -> %s before the forged packets: %v", svcUDP, err)
	}
	if _, err := echoFrom(c, hostYes); err != nil {
		t.Fatalf("control: a -> service tcp before the forged packets: %v", err)
	}
	ua := u.LocalAddr().(*net.UDPAddr).AddrPort()
	ta := c.LocalAddr().(*net.TCPAddr).AddrPort()
	aU := netip.AddrPortFrom(l.ip("a"), ua.Port())
	aT := netip.AddrPortFrom(l.ip("a"), ta.Port())
	v80 := l.at("v", 80)
	forged := func(src, dst netip.AddrPort, proto uint8) []byte {
		h := attack.IPv4{Src: src.Addr(), Dst: dst.Addr(), Proto: proto, ID: 999}
		if proto == attack.ProtoTCP {
			return h.Packet(attack.SYN(src, dst, 12345))
		}
		return h.Packet(attack.UDP(src, dst, []byte("forged")))
	}
	err = attack.SendOnce(l.ns("m"),
		forged(aU, v80, attack.ProtoUDP), forged(v80, aU, attack.ProtoUDP),
		forged(aU, netip.AddrPortFrom(hostClusterIP, hostSvcUDP), attack.ProtoUDP),
		forged(aT, v80, attack.ProtoTCP))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := udpExchange(u); err != nil {
			t.Errorf("a -> %s: exchange %d after m's forged datagrams: %v", svcUDP, i, err)
			break
		}
	}
	if _, err := echoFrom(c, hostYes); err != nil {
		t.Errorf("a -> service tcp after m's forged SYN on its tuple: %v", err)
	}
}

// udpExchange sends a datagram on a connected UDP socket to an echo
// server and waits for its echo, resending every 200 ms for up to 3 s.
func udpExchange(u net.Conn) error {
	m := marker("udp exchange")
	buf := make([]byte, 2048)
	deadline := time.Now().Add(hostYes)
	for time.Now().Before(deadline) {
		if _, err := u.Write([]byte(m)); err != nil {
			return err
		}
		u.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := u.Read(buf)
		if err == nil && bytes.HasSuffix(buf[:n], []byte(m)) {
			return nil
		}
		if err != nil && !nstest.IsTimeout(err) {
			return err
		}
	}
	return fmt.Errorf("no echo of %q in %v", m, hostYes)
}
