package datapath

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/netreconcile/netreconcile/internal/nsutil"
)

// The tests build their own small cluster node in throwaway namespaces:
// a "node" namespace and pod namespaces attached in one of the modes, and
// remove it (and every pin) on every exit path. Nothing touches the root
// namespace.

const (
	tcpPort   = 8080 // every pod serves TCP here (targetPort)
	udpPort   = 5353 // and UDP here
	gatewayLL = "169.254.1.1"
)

var (
	clusterIP = netip.MustParseAddr("10.96.0.10")
)

func randID(t testing.TB) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func skipUnlessRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and loads BPF programs")
	}
}

// tempPinDir returns a fresh pin directory on bpffs that is destroyed when
// the test ends. It skips the test only if BPF or bpffs is unavailable.
func tempPinDir(t testing.TB) string {
	t.Helper()
	skipUnlessRoot(t)
	dir := filepath.Join(bpffsMount, "netreconcile-test-"+randID(t))
	t.Cleanup(func() {
		if err := Destroy(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	d, err := Open(dir)
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("eBPF datapath unavailable here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	return dir
}

func openDP(t testing.TB, dir string) *Datapath {
	t.Helper()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

type pod struct {
	name      string
	ns        string // netns name
	ip        netip.Addr
	hostIf    string // host-side veth in the node namespace ("" for macvlan)
	hostIndex int
}

type world struct {
	t    *testing.T
	mode string // veth | bridge | macvlan
	node string // netns name
	pods []*pod
	dp   *Datapath
}

func mustNS(t *testing.T, name string) netns.NsHandle {
	t.Helper()
	h, err := nsutil.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func handleAt(t *testing.T, ns string) *netlink.Handle {
	t.Helper()
	nsh := mustNS(t, ns)
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func must(t *testing.T, err error, what string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}

func newNS(t *testing.T, name string) {
	t.Helper()
	must(t, nsutil.Create(name), "create netns %s", name)
	t.Cleanup(func() {
		if err := nsutil.Delete(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// newWorld builds a node with npods pods in mode, each serving TCP and UDP,
// attaches the datapath (opened on dir) to every pod and registers every
// local pod as a fast-path endpoint (veth and bridge).
func newWorld(t *testing.T, mode, dir string, npods int) *world {
	t.Helper()
	id := randID(t)
	w := &world{t: t, mode: mode, node: "nrt-" + id + "-node"}
	newNS(t, w.node)
	must(t, nsutil.WriteSysctl(w.node, "net/ipv4/ip_forward", "1"), "ip_forward")
	nh := handleAt(t, w.node)

	// An uplink with a default route: proxy ARP answers only for
	// addresses the node routes elsewhere (169.254.1.1 included), and
	// macvlan pods need a parent.
	must(t, nh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "nrup0"}, PeerName: "nrup1"}), "add uplink")
	up0, err := nh.LinkByName("nrup0")
	must(t, err, "uplink")
	up1, err := nh.LinkByName("nrup1")
	must(t, err, "uplink peer")
	must(t, nh.LinkSetUp(up0), "up")
	must(t, nh.LinkSetUp(up1), "up")
	must(t, nh.AddrAdd(up0, mustAddr("172.31.0.1/24")), "uplink address")
	must(t, nh.RouteAdd(&netlink.Route{LinkIndex: up0.Attrs().Index, Gw: net.ParseIP("172.31.0.2")}), "default route")

	var gw net.IP
	switch mode {
	case "veth":
		gw = net.ParseIP(gatewayLL)
	case "bridge":
		gw = net.ParseIP("10.244.1.1")
		must(t, nh.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "nrbr0"}}), "add bridge")
		br, err := nh.LinkByName("nrbr0")
		must(t, err, "bridge")
		must(t, nh.AddrAdd(br, mustAddr("10.244.1.1/24")), "bridge address")
		must(t, nh.LinkSetUp(br), "bridge up")
	case "macvlan":
		gw = net.ParseIP("10.244.1.1")
		shim := &netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: "nrshim", ParentIndex: up0.Attrs().Index}, Mode: netlink.MACVLAN_MODE_BRIDGE}
		must(t, nh.LinkAdd(shim), "add shim")
		s, err := nh.LinkByName("nrshim")
		must(t, err, "shim")
		must(t, nh.AddrAdd(s, mustAddr("10.244.1.1/24")), "shim address")
		must(t, nh.LinkSetUp(s), "shim up")
	default:
		t.Fatalf("unknown mode %s", mode)
	}

	for i := 1; i <= npods; i++ {
		p := &pod{
			name: fmt.Sprintf("p%d", i),
			ns:   fmt.Sprintf("nrt-%s-p%d", id, i),
			ip:   netip.AddrFrom4([4]byte{10, 244, 1, byte(10 + i)}),
		}
		newNS(t, p.ns)
		podNS := mustNS(t, p.ns)
		ph := handleAt(t, p.ns)
		switch mode {
		case "veth", "bridge":
			p.hostIf = fmt.Sprintf("nrv%d", i)
			veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p.hostIf}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(podNS))}
			must(t, nh.LinkAdd(veth), "add veth for %s", p.name)
			hl, err := nh.LinkByName(p.hostIf)
			must(t, err, "host veth")
			p.hostIndex = hl.Attrs().Index
			if mode == "bridge" {
				br, _ := nh.LinkByName("nrbr0")
				must(t, nh.LinkSetMaster(hl, br), "bridge port")
			}
			must(t, nh.LinkSetUp(hl), "host veth up")
			if mode == "veth" {
				must(t, nsutil.WriteSysctl(w.node, "net/ipv4/conf/"+p.hostIf+"/proxy_arp", "1"), "proxy_arp")
				// Answer at once, not after up to 0.8 s (as Calico does).
				must(t, nsutil.WriteSysctl(w.node, "net/ipv4/neigh/"+p.hostIf+"/proxy_delay", "0"), "proxy_delay")
				dst := &net.IPNet{IP: p.ip.AsSlice(), Mask: net.CIDRMask(32, 32)}
				must(t, nh.RouteAdd(&netlink.Route{LinkIndex: p.hostIndex, Dst: dst, Scope: netlink.SCOPE_LINK}), "host route")
			}
		case "macvlan":
			mv := &netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: "eth0", ParentIndex: up0.Attrs().Index, Namespace: netlink.NsFd(int(podNS))}, Mode: netlink.MACVLAN_MODE_BRIDGE}
			must(t, nh.LinkAdd(mv), "add macvlan for %s", p.name)
		}
		podNS.Close()
		eth0, err := ph.LinkByName("eth0")
		must(t, err, "pod eth0")
		must(t, ph.AddrAdd(eth0, mustAddr(p.ip.String()+"/24")), "pod address")
		must(t, ph.LinkSetUp(eth0), "pod eth0 up")
		route := &netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw}
		if mode == "veth" {
			route.Flags = int(netlink.FLAG_ONLINK)
		}
		must(t, ph.RouteAdd(route), "pod default route")
		w.pods = append(w.pods, p)
		w.serve(p)
	}
	if dir != "" {
		w.dp = openDP(t, dir)
		w.attachAll(w.dp)
	}
	return w
}

func mustAddr(s string) *netlink.Addr {
	a, err := netlink.ParseAddr(s)
	if err != nil {
		panic(err)
	}
	return a
}

// attachAll attaches d to every pod and registers the endpoints.
func (w *world) attachAll(d *Datapath) {
	w.t.Helper()
	for _, p := range w.pods {
		ns, ifname := w.hook(p)
		mac, err := HardwareAddr(p.ns, "eth0")
		must(w.t, err, "mac of %s", p.name)
		must(w.t, d.Bind(ns, ifname, Source{IP: p.ip, MAC: mac}), "bind")
		for _, dir := range w.directions() {
			must(w.t, d.Attach(ns, ifname, dir), "attach")
		}
		if p.hostIf != "" {
			must(w.t, d.SetEndpoint(p.ip, Endpoint{IfIndex: p.hostIndex}), "set endpoint")
		}
	}
}

func (w *world) directions() []Direction {
	if w.mode == "macvlan" {
		return PodDirections
	}
	return HostDirections
}

// hook is where p's programs attach.
func (w *world) hook(p *pod) (ns, ifname string) {
	if w.mode == "macvlan" {
		return p.ns, "eth0"
	}
	return w.node, p.hostIf
}

// serve starts p's servers: TCP greets each connection with
// "<pod> <peer address>" and then echoes lines prefixed with the pod name;
// UDP answers each datagram with the greeting.
func (w *world) serve(p *pod) {
	t := w.t
	var (
		ln net.Listener
		uc net.PacketConn
	)
	err := nsutil.Do(p.ns, func() error {
		var err error
		if ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", tcpPort)); err != nil {
			return err
		}
		uc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", udpPort))
		return err
	})
	must(t, err, "listen in %s", p.name)
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		uc.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				fmt.Fprintf(c, "%s %s\n", p.name, c.RemoteAddr().(*net.TCPAddr).IP)
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintf(c, "%s %s\n", p.name, sc.Text())
				}
			}()
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			_, from, err := uc.ReadFrom(buf)
			if err != nil {
				return
			}
			uc.WriteTo(fmt.Appendf(nil, "%s %s", p.name, from.(*net.UDPAddr).IP), from)
		}
	}()
}

// dial connects from inside p's namespace (a socket belongs to the
// namespace of the thread that creates it).
func dial(p *pod, network, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := nsutil.Do(p.ns, func() error {
		var err error
		c, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	return c, err
}

// greet opens a TCP connection from p to addr and returns the server's
// greeting: the backend's name and the source address it saw.
func greet(p *pod, addr string) (conn net.Conn, backend, seenAs string, err error) {
	c, err := dial(p, "tcp4", addr, 3*time.Second)
	if err != nil {
		return nil, "", "", err
	}
	c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		c.Close()
		return nil, "", "", fmt.Errorf("read greeting: %w", err)
	}
	c.SetDeadline(time.Time{})
	f := strings.Fields(line)
	if len(f) != 2 {
		c.Close()
		return nil, "", "", fmt.Errorf("greeting %q", line)
	}
	return c, f[0], f[1], nil
}

// askUDP sends one datagram from a new socket in p to addr and returns the
// answering backend and the source it saw.
func askUDP(p *pod, addr string) (backend, seenAs string, err error) {
	c, err := dial(p, "udp4", addr, time.Second)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("hello")); err != nil {
		return "", "", err
	}
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		return "", "", err
	}
	f := strings.Fields(string(buf[:n]))
	if len(f) != 2 {
		return "", "", fmt.Errorf("answer %q", buf[:n])
	}
	return f[0], f[1], nil
}

func svcAddr(ip netip.Addr, port uint16) string {
	return netip.AddrPortFrom(ip, port).String()
}

func backendsOf(pods []*pod, port uint16) []Backend {
	var out []Backend
	for _, p := range pods {
		out = append(out, Backend{IP: p.ip, Port: port})
	}
	return out
}

// dump logs the node's state when a test fails, to see why.
func (w *world) dump() {
	w.t.Helper()
	if !w.t.Failed() {
		return
	}
	for _, ns := range append([]string{w.node}, w.pods[0].ns) {
		for _, args := range [][]string{{"addr"}, {"route"}, {"neigh"}} {
			out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
			w.t.Logf("ip -n %s %s (%v):\n%s", ns, strings.Join(args, " "), err, out)
		}
	}
	if w.dp != nil {
		conns, err := w.dp.Conntrack()
		w.t.Logf("conntrack (%v):", err)
		for _, c := range conns {
			w.t.Logf("  %+v", c)
		}
		drops, err := w.dp.Drops()
		w.t.Logf("drops (%v): %+v", err, drops)
		binds, err := w.dp.Bindings()
		w.t.Logf("bindings (%v): %+v", err, binds)
		atts, err := w.dp.Attachments(nil)
		w.t.Logf("attachments (%v):", err)
		for _, a := range atts {
			w.t.Logf("  %+v", a)
		}
	}
}

func sleep() { time.Sleep(50 * time.Millisecond) }
