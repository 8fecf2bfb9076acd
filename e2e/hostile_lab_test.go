package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/internal/attack"
	"github.com/netreconcile/netreconcile/internal/nstest"
	"github.com/netreconcile/netreconcile/internal/nsutil"
)

// The hostile-pod lab: two nodes on one L2 underlay (direct routing), one
// Kubernetes namespace x, and these pods:
//
//	node 0 (10.244.1.0/24, gateway 10.244.1.1, address 172.31.1.2)
//	  v   veth     victim: ingress only from role=allowed, TCP/UDP/SCTP 80-81; behind service web
//	  a   veth     allowed: not isolated
//	  m   veth     attacker: no policy lets it reach a victim
//	  vb  bridge   victim, like v
//	  mb  bridge   attacker next to vb
//	  b   bridge   bystander: not isolated, nothing to do with the policies
//	  mm  macvlan  attacker
//	node 1 (10.244.2.0/24, gateway 10.244.2.1, address 172.31.1.3)
//	  a2  veth     allowed, and ingress-isolated (closed=yes): its replies and
//	               the ICMP errors of its connections are all it may receive
//	  m2  veth     attacker on the other node
//
// Service web (10.96.0.10) sends TCP 8080 and UDP 8053 to v:80, TCP 8082
// to v:82.
type hostPod struct {
	name, mode, ip string
	node           int
	labels         string
}

var hostPods = []hostPod{
	{"v", "veth", "10.244.1.10", 0, "{role: victim, app: web}"},
	{"a", "veth", "10.244.1.11", 0, "{role: allowed}"},
	{"m", "veth", "10.244.1.12", 0, "{role: attacker}"},
	{"vb", "bridge", "10.244.1.20", 0, "{role: victim}"},
	{"mb", "bridge", "10.244.1.21", 0, "{role: attacker}"},
	{"b", "bridge", "10.244.1.22", 0, "{role: bystander}"},
	{"mm", "macvlan", "10.244.1.30", 0, "{role: attacker}"},
	{"a2", "veth", "10.244.2.11", 1, "{role: allowed, closed: \"yes\"}"},
	{"m2", "veth", "10.244.2.12", 1, "{role: attacker}"},
}

const hostPolicies = `policies:
  - name: victims-from-allowed
    namespace: x
    spec:
      podSelector: {matchLabels: {role: victim}}
      policyTypes: [Ingress]
      ingress:
        - from: [{podSelector: {matchLabels: {role: allowed}}}]
          ports: [{port: 80, protocol: TCP}, {port: 81, protocol: TCP}, {port: 80, protocol: UDP},
                  {port: 81, protocol: UDP}, {port: 80, protocol: SCTP}, {port: 81, protocol: SCTP},
                  {port: 82, protocol: TCP}]
  - name: closed
    namespace: x
    spec:
      podSelector: {matchLabels: {closed: "yes"}}
      policyTypes: [Ingress]
`

// Fixed addresses of the lab.
var (
	hostClusterIP = netip.MustParseAddr("10.96.0.10")
	hostHairpin   = netip.MustParseAddr("169.254.42.1")
	hostVethGW    = netip.MustParseAddr("169.254.1.1")
	hostGateways  = [2]netip.Addr{netip.MustParseAddr("10.244.1.1"), netip.MustParseAddr("10.244.2.1")}
	hostNodeAddrs = [2]netip.Addr{netip.MustParseAddr("172.31.1.2"), netip.MustParseAddr("172.31.1.3")}
)

const (
	hostSvcTCP = 8080
	hostSvcUDP = 8053
	// hostSvcPush is the service port of v's push server (82).
	hostSvcPush = 8082
	// hostNo is how long a negative check waits where nothing can tell
	// it that the packet is gone (a reply that does not come).
	hostNo = time.Second
	// hostYes bounds a positive check.
	hostYes = 3 * time.Second
)

type hostLab struct {
	bin, id  string
	stateDir string
	file     string
	nodes    [2]string
	udp      map[string]*udpLog // UDP echo servers on :80 that log what they got
	push     map[string]*pushServer
}

func (l *hostLab) ns(pod string) string { return l.id + "-" + pod }

func (l *hostLab) nodeNs(i int) string { return "nrlab-" + l.nodes[i] }

func hostPodOf(name string) hostPod {
	for _, p := range hostPods {
		if p.name == name {
			return p
		}
	}
	panic("no hostile-lab pod " + name)
}

func (l *hostLab) ip(pod string) netip.Addr { return netip.MustParseAddr(hostPodOf(pod).ip) }

func (l *hostLab) at(pod string, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(l.ip(pod), port)
}

// peer is the allowed pod on the same node as pod: the sender of the
// barriers that tell a negative check when to look.
func (l *hostLab) peer(pod string) string {
	if hostPodOf(pod).node == 1 {
		return "a2"
	}
	return "a"
}

func (l *hostLab) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: netreconcile/v1
kind: Topology
cluster:
  podCIDR: 10.244.0.0/16
  serviceCIDR: 10.96.0.0/16
namespaces:
  - {name: x, labels: {ns: x}}
nodes:
  - {name: %s, address: 172.31.1.2/24, uplink: eth0, podCIDR: 10.244.1.0/24}
  - {name: %s, address: 172.31.1.3/24, uplink: eth0, podCIDR: 10.244.2.0/24}
pods:
`, l.nodes[0], l.nodes[1])
	for _, p := range hostPods {
		fmt.Fprintf(&b, "  - {name: %s, namespace: x, node: %s, ip: %s, mode: %s, netns: %s, labels: %s}\n",
			p.name, l.nodes[p.node], p.ip, p.mode, l.ns(p.name), p.labels)
	}
	fmt.Fprintf(&b, `services:
  - name: web
    namespace: x
    clusterIP: %s
    selector: {app: web}
    ports: [{name: tcp, port: %d, targetPort: 80, protocol: TCP}, {name: udp, port: %d, targetPort: 80, protocol: UDP},
            {name: push, port: %d, targetPort: 82, protocol: TCP}]
`, hostClusterIP, hostSvcTCP, hostSvcUDP, hostSvcPush)
	b.WriteString(hostPolicies)
	return b.String()
}

// newHostLab brings the lab up through the binary and starts the servers:
// TCP echo on :80 of v, vb, b and mb, a sink on v:81, UDP echo servers
// that log what they receive on v:80 and vb:80.
func newHostLab(t *testing.T) *hostLab {
	nstest.RequireRoot(t)
	l := &hostLab{bin: BuildBinary(t), id: UniqueName("ho"), stateDir: t.TempDir(), udp: map[string]*udpLog{},
		push: map[string]*pushServer{}}
	l.nodes = [2]string{l.id + "a", l.id + "b"}
	l.file = WriteFile(t, l.id+".yaml", l.yaml())
	t.Cleanup(func() {
		if t.Failed() {
			DumpState(t, l.nodeNs(0), l.nodeNs(1))
		}
		if _, errOut, code := Run(t, l.bin, "lab", "down", "-f", l.file, "--state-dir", l.stateDir); code != 0 {
			t.Errorf("lab down: exit %d\n%s", code, errOut)
		}
		for _, p := range hostPods {
			_ = exec.Command("ip", "netns", "del", l.ns(p.name)).Run()
		}
	})
	if out, errOut, code := Run(t, l.bin, "lab", "up", "-f", l.file, "--state-dir", l.stateDir); code != 0 {
		t.Fatalf("lab up: exit %d\n%s%s", code, out, errOut)
	}
	for _, p := range []string{"v", "vb", "b", "mb"} {
		nstest.StartEchoTCP(t, l.ns(p), l.at(p, 80).String(), p)
	}
	nstest.StartSink(t, l.ns("v"), l.at("v", 81).String())
	for _, p := range []string{"v", "vb"} {
		l.udp[p] = startUDPLog(t, l.ns(p), l.at(p, 80), p)
	}
	for _, p := range []string{"v", "b"} {
		l.push[p] = startPush(t, l.ns(p), l.at(p, 82))
	}
	return l
}

// marker returns a payload marker unique to this run and what.
func marker(what string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return "hostile " + what + " " + hex.EncodeToString(b)
}

// udpLog is a UDP echo server (nstest's protocol: banner, newline,
// datagram) that also keeps every datagram it got, with its source. A
// datagram that starts with ackOnly is answered with ackOnly alone: a
// short answer to a long question, so that the answer is not fragmented.
type udpLog struct {
	pc net.PacketConn
	mu sync.Mutex
	in []udpGot
}

const ackOnly = "ack? "

type udpGot struct {
	from netip.AddrPort
	data []byte
}

func startUDPLog(t *testing.T, nsRef string, addr netip.AddrPort, banner string) *udpLog {
	t.Helper()
	pc, err := nstest.ListenUDP(nsRef, addr.String())
	if err != nil {
		t.Fatal(err)
	}
	u := &udpLog{pc: pc}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				if strings.Contains(err.Error(), "closed") {
					return
				}
				continue
			}
			src := from.(*net.UDPAddr).AddrPort()
			u.mu.Lock()
			u.in = append(u.in, udpGot{netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), bytes.Clone(buf[:n])})
			u.mu.Unlock()
			reply := buf[:n]
			if bytes.HasPrefix(reply, []byte(ackOnly)) {
				reply = []byte(ackOnly)
			}
			pc.WriteTo(append([]byte(banner+"\n"), reply...), from)
		}
	}()
	return u
}

// got returns the sources of the datagrams that contained m.
func (u *udpLog) got(m string) []netip.AddrPort {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []netip.AddrPort
	for _, g := range u.in {
		if bytes.Contains(g.data, []byte(m)) {
			out = append(out, g.from)
		}
	}
	return out
}

// barrier sends datagrams from the allowed pod next to attacker to
// victim's logging UDP server until one arrives. Packets the attacker
// sent before took the same way, so once the barrier is in, whatever of
// theirs the datapath let through is in too: negative checks look then
// instead of sleeping.
func (l *hostLab) barrier(t *testing.T, attacker, victim string) {
	t.Helper()
	from := l.peer(attacker)
	m := marker("barrier")
	deadline := time.Now().Add(hostYes)
	for time.Now().Before(deadline) {
		if err := attack.SendUDPFrom(l.ns(from), netip.AddrPortFrom(l.ip(from), 0), l.at(victim, 80), []byte(m)); err != nil {
			t.Fatal(err)
		}
		for range 10 {
			if len(l.udp[victim].got(m)) > 0 {
				time.Sleep(20 * time.Millisecond) // reassembly and softirq stragglers
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Fatalf("control: barrier datagrams from allowed %s to %s:80 never arrived", from, victim)
}

// addAddr adds ip/32 to the pod's eth0 (no duplicate address detection)
// and removes it at cleanup.
func addAddr(t *testing.T, nsRef string, ip netip.Addr) {
	t.Helper()
	err := withLink(nsRef, "eth0", func(h *netlink.Handle, link netlink.Link) error {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(32, 32)}, Flags: unix.IFA_F_NODAD}
		if err := h.AddrAdd(link, a); err != nil {
			return err
		}
		t.Cleanup(func() {
			_ = withLink(nsRef, "eth0", func(h *netlink.Handle, link netlink.Link) error { return h.AddrDel(link, a) })
		})
		return nil
	})
	if err != nil {
		t.Fatalf("add %s to eth0 in %s: %v", ip, nsRef, err)
	}
}

func withLink(nsRef, ifname string, fn func(*netlink.Handle, netlink.Link) error) error {
	h, err := nsutil.Handle(nsRef)
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(ifname)
	if err != nil {
		return err
	}
	return fn(h, link)
}

// neighMAC returns the MAC of nsRef's neighbour entry for ip on ifname
// (nil when there is none, or it is unresolved).
func neighMAC(nsRef, ifname string, ip netip.Addr) net.HardwareAddr {
	var mac net.HardwareAddr
	_ = withLink(nsRef, ifname, func(h *netlink.Handle, link netlink.Link) error {
		ns, err := h.NeighList(link.Attrs().Index, unix.AF_INET)
		for _, n := range ns {
			if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == ip && len(n.HardwareAddr) == 6 {
				mac = n.HardwareAddr
			}
		}
		return err
	})
	return mac
}

// forgetMAC deletes nsRef's neighbour entries on ifname that point at mac.
func forgetMAC(nsRef, ifname string, mac net.HardwareAddr) {
	_ = withLink(nsRef, ifname, func(h *netlink.Handle, link netlink.Link) error {
		ns, err := h.NeighList(link.Attrs().Index, unix.AF_INET)
		for _, n := range ns {
			if bytes.Equal(n.HardwareAddr, mac) {
				_ = h.NeighDel(&n)
			}
		}
		return err
	})
}

// echoFrom makes one TCP echo round trip over c (nstest's echo protocol)
// and returns the banner.
func echoFrom(c net.Conn, timeout time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	msg := marker("echo") + "\n"
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte(msg)) {
		n, err := c.Read(buf)
		if err != nil {
			return "", fmt.Errorf("read echo (got %q): %w", got, err)
		}
		got = append(got, buf[:n]...)
	}
	banner, _, _ := bytes.Cut(got, []byte("\n"))
	return string(banner), nil
}

// explainVerdict runs `netreconcile explain` and returns its first word
// (ALLOWED or DENIED).
func (l *hostLab) explainVerdict(t *testing.T, from, to, port string) string {
	t.Helper()
	out, errOut, code := Run(t, l.bin, "explain", "-f", l.file, from, to, port)
	if code != 0 {
		t.Fatalf("explain %s %s %s: exit %d\n%s", from, to, port, code, errOut)
	}
	word, _, _ := strings.Cut(out, " ")
	return word
}

// flood runs f from the pod for d and logs what it sent.
func (l *hostLab) flood(t *testing.T, pod string, f attack.Flood, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	n, err := f.Run(ctx, l.ns(pod))
	if err != nil {
		t.Errorf("flood from %s: %v", pod, err)
	}
	t.Logf("flood from %s: %d packets in %v", pod, n, d)
}

// pushServer accepts TCP connections and hands them to the test, so
// that the server can speak first on a connection that was idle: the
// packet that needs the connection's state where the client is isolated.
type pushServer struct{ conns chan net.Conn }

func startPush(t *testing.T, nsRef string, addr netip.AddrPort) *pushServer {
	t.Helper()
	ln, err := nstest.ListenTCP(nsRef, addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &pushServer{conns: make(chan net.Conn, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			s.conns <- c
		}
	}()
	return s
}

// pushFlow connects from pod to dst (served by server's push server) and
// returns both ends.
func (l *hostLab) pushFlow(t *testing.T, pod, server string, dst netip.AddrPort) (client, srv net.Conn) {
	t.Helper()
	c, err := nstest.DialTCP(l.ns(pod), dst.String(), hostYes)
	if err != nil {
		t.Fatalf("control: %s -> %s: %v", pod, dst, err)
	}
	t.Cleanup(func() { c.Close() })
	select {
	case s := <-l.push[server].conns:
		return c, s
	case <-time.After(hostYes):
		t.Fatalf("control: %s -> %s: %s's server accepted nothing", pod, dst, server)
	}
	return nil, nil
}

// pushed writes a line on srv and reads it on client.
func pushed(client, srv net.Conn) error {
	m := marker("push") + "\n"
	srv.SetWriteDeadline(time.Now().Add(hostYes))
	if _, err := srv.Write([]byte(m)); err != nil {
		return err
	}
	client.SetReadDeadline(time.Now().Add(hostYes))
	defer client.SetReadDeadline(time.Time{})
	buf := make([]byte, len(m))
	if _, err := io.ReadFull(client, buf); err != nil {
		return err
	}
	if string(buf) != m {
		return fmt.Errorf("pushed %q, got %q", m, buf)
	}
	return nil
}
