package datapath

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/netreconcile/netreconcile/internal/nsutil"
)

// The edge tests build two nodes on one L2 segment, whose router (the
// "outside" namespace) is also the client from outside the cluster: it
// routes no pod CIDR, so it reaches pods only through a node's address.

var outsideAddr = netip.MustParseAddr("172.30.0.254")

type edgeNode struct {
	*world
	addr netip.Addr
	host *pod // the node itself as a client (its namespace, its address)
}

type edgeCluster struct {
	outside *pod // the router, as a client
	nodes   []*edgeNode
}

// newEdgeCluster builds the segment, two nodes with pods podsPerNode[i]
// each (veth mode, fast path), and on each node the uplink and service
// device hooks attached, the node address configured, and the service
// CIDR routed to nrsvc0 with the node's address as source.
func newEdgeCluster(t *testing.T, podsPerNode ...int) *edgeCluster {
	id := randID(t)
	c := &edgeCluster{outside: &pod{name: "outside", ns: "nrt-" + id + "-out", ip: outsideAddr}}
	newNS(t, c.outside.ns)
	oh := handleAt(t, c.outside.ns)
	must(t, oh.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "nrseg"}}), "add segment")
	seg, err := oh.LinkByName("nrseg")
	must(t, err, "segment")
	must(t, oh.AddrAdd(seg, mustAddr(outsideAddr.String()+"/24")), "router address")
	must(t, oh.LinkSetUp(seg), "segment up")
	for i := range podsPerNode {
		c.nodes = append(c.nodes, newEdgeNode(t, c, id, i+1, podsPerNode[i]))
	}
	// Pod CIDRs are routed node to node on the segment (not by the router).
	for _, n := range c.nodes {
		nh := handleAt(t, n.node)
		for _, o := range c.nodes {
			if o != n {
				dst := &net.IPNet{IP: net.IPv4(10, 244, o.addr.As4()[3], 0), Mask: net.CIDRMask(24, 32)}
				must(t, nh.RouteAdd(&netlink.Route{Dst: dst, Gw: o.addr.AsSlice()}), "pod route")
			}
		}
	}
	return c
}

func newEdgeNode(t *testing.T, c *edgeCluster, id string, i, npods int) *edgeNode {
	addr := netip.AddrFrom4([4]byte{172, 30, 0, byte(i)})
	w := &world{t: t, mode: "veth", node: fmt.Sprintf("nrt-%s-n%d", id, i)}
	n := &edgeNode{world: w, addr: addr, host: &pod{name: "node", ns: w.node, ip: addr}}
	newNS(t, w.node)
	must(t, nsutil.WriteSysctl(w.node, "net/ipv4/ip_forward", "1"), "ip_forward")
	nh := handleAt(t, w.node)
	oh := handleAt(t, c.outside.ns)
	nodeNS := mustNS(t, w.node)
	peer := fmt.Sprintf("nrn%d", i)
	must(t, oh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: peer}, PeerName: "nrup",
		PeerNamespace: netlink.NsFd(int(nodeNS))}), "add uplink")
	nodeNS.Close()
	pl, err := oh.LinkByName(peer)
	must(t, err, "uplink peer")
	seg, _ := oh.LinkByName("nrseg")
	must(t, oh.LinkSetMaster(pl, seg), "segment port")
	must(t, oh.LinkSetUp(pl), "up")
	up, err := nh.LinkByName("nrup")
	must(t, err, "uplink")
	must(t, nh.AddrAdd(up, mustAddr(addr.String()+"/24")), "node address")
	must(t, nh.LinkSetUp(up), "uplink up")
	must(t, nh.RouteAdd(&netlink.Route{LinkIndex: up.Attrs().Index, Gw: outsideAddr.AsSlice()}), "default route")

	// The service device: a veth pair with both ends in the node.
	must(t, nh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "nrsvc0", Flags: net.FlagUp}, PeerName: "nrsvc1"}), "add nrsvc0")
	for _, name := range []string{"nrsvc0", "nrsvc1"} {
		l, err := nh.LinkByName(name)
		must(t, err, "%s", name)
		must(t, nh.LinkSetARPOff(l), "noarp")
		must(t, nh.LinkSetUp(l), "up")
	}
	svc, _ := nh.LinkByName("nrsvc0")
	_, cidr, _ := net.ParseCIDR("10.96.0.0/12")
	must(t, nh.RouteAdd(&netlink.Route{LinkIndex: svc.Attrs().Index, Dst: cidr, Src: addr.AsSlice()}), "service route")

	for k := 1; k <= npods; k++ {
		p := &pod{name: fmt.Sprintf("n%dp%d", i, k), ns: fmt.Sprintf("nrt-%s-n%dp%d", id, i, k),
			ip: netip.AddrFrom4([4]byte{10, 244, byte(i), byte(10 + k)}), hostIf: fmt.Sprintf("nrv%d", k)}
		addVethPod(t, w.node, nh, p)
		w.pods = append(w.pods, p)
		w.serve(p)
	}
	w.dp = openDP(t, tempPinDir(t))
	w.attachAll(w.dp)
	must(t, w.dp.Attach(w.node, "nrup", UplinkIngress), "attach uplink")
	must(t, w.dp.Attach(w.node, "nrsvc0", ServiceEgress), "attach service device")
	must(t, w.dp.SetConfig(Config{FastPath: true, HairpinIP: DefaultHairpinIP, NodeAddr: addr}), "config")
	return n
}

// addVethPod makes p a veth pod of the node namespace (routed, proxy ARP).
func addVethPod(t *testing.T, node string, nh *netlink.Handle, p *pod) {
	newNS(t, p.ns)
	podNS := mustNS(t, p.ns)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p.hostIf}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(podNS))}
	must(t, nh.LinkAdd(veth), "add veth for %s", p.name)
	podNS.Close()
	hl, err := nh.LinkByName(p.hostIf)
	must(t, err, "host veth")
	p.hostIndex = hl.Attrs().Index
	must(t, nh.LinkSetUp(hl), "host veth up")
	must(t, nsutil.WriteSysctl(node, "net/ipv4/conf/"+p.hostIf+"/proxy_arp", "1"), "proxy_arp")
	must(t, nsutil.WriteSysctl(node, "net/ipv4/neigh/"+p.hostIf+"/proxy_delay", "0"), "proxy_delay")
	dst := &net.IPNet{IP: p.ip.AsSlice(), Mask: net.CIDRMask(32, 32)}
	must(t, nh.RouteAdd(&netlink.Route{LinkIndex: p.hostIndex, Dst: dst, Scope: netlink.SCOPE_LINK}), "host route")
	ph := handleAt(t, p.ns)
	eth0, err := ph.LinkByName("eth0")
	must(t, err, "pod eth0")
	must(t, ph.AddrAdd(eth0, mustAddr(p.ip.String()+"/24")), "pod address")
	must(t, ph.LinkSetUp(eth0), "pod eth0 up")
	must(t, ph.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: net.ParseIP(gatewayLL), Flags: int(netlink.FLAG_ONLINK)}), "pod default route")
}

func (c *edgeCluster) dump() {
	for _, n := range c.nodes {
		n.dump()
	}
}

// TestEdge: NodePort from outside with and without SNAT, backends on the
// node and on the other; the node itself reaching clusterIPs (backends
// local and remote, refusal without backends); affinity timeouts; and
// hostile traffic that must not be translated.
func TestEdge(t *testing.T) {
	skipUnlessRoot(t)
	c := newEdgeCluster(t, 2, 1)
	defer c.dump()
	n1, n2 := c.nodes[0], c.nodes[1]
	p1, p2, remote := n1.pods[0], n1.pods[1], n2.pods[0]
	set := func(s Service) { t.Helper(); must(t, n1.dp.SetService(s), "set %s", s.Key) }
	tcpKey := func(ip netip.Addr, port uint16) ServiceKey { return ServiceKey{IP: ip, Port: port, Proto: ProtoTCP} }

	t.Run("nodeport snat", func(t *testing.T) {
		set(Service{Key: tcpKey(n1.addr, 30080), Backends: backendsOf([]*pod{p1}, tcpPort), SNAT: true})
		set(Service{Key: ServiceKey{IP: n1.addr, Port: 30053, Proto: ProtoUDP}, Backends: backendsOf([]*pod{p1}, udpPort), SNAT: true})
		expectGreeting(t, c.outside, svcAddr(n1.addr, 30080), p1.name, n1.addr.String())
		b, seen, err := askUDP(c.outside, svcAddr(n1.addr, 30053))
		if err != nil || b != p1.name || seen != n1.addr.String() {
			t.Errorf("udp through the nodePort: %s saw %s (%v), want %s seeing %s", b, seen, err, p1.name, n1.addr)
		}
	})
	t.Run("nodeport without snat", func(t *testing.T) {
		set(Service{Key: tcpKey(n1.addr, 30081), Backends: backendsOf([]*pod{p1}, tcpPort)})
		// The client's socket is connected to nodeAddr:30081: the
		// greeting arrives only if the reply carries that source.
		expectGreeting(t, c.outside, svcAddr(n1.addr, 30081), p1.name, outsideAddr.String())
	})
	t.Run("nodeport snat to the other node", func(t *testing.T) {
		set(Service{Key: tcpKey(n1.addr, 30082), Backends: backendsOf([]*pod{remote}, tcpPort), SNAT: true})
		expectGreeting(t, c.outside, svcAddr(n1.addr, 30082), remote.name, n1.addr.String())
	})
	t.Run("nodeport without backends here drops", func(t *testing.T) {
		set(Service{Key: tcpKey(n1.addr, 30083)})
		before := dropped(t, n1.dp, netip.Addr{}, DropNoBackend)
		if conn, err := dial(c.outside, "tcp4", svcAddr(n1.addr, 30083), time.Second); err == nil {
			conn.Close()
			t.Fatal("connected to a nodePort without backends")
		} else if errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("refused (%v), want dropped as kube-proxy does", err)
		}
		if got := dropped(t, n1.dp, netip.Addr{}, DropNoBackend); got <= before {
			t.Errorf("no-backend drops: %d, want more than %d", got, before)
		}
	})
	t.Run("node to clusterIP", func(t *testing.T) {
		set(Service{Key: tcpKey(clusterIP, 80), Backends: backendsOf([]*pod{p1, remote}, tcpPort)})
		seen := map[string]int{}
		for range 20 {
			conn, b, as, err := greet(n1.host, svcAddr(clusterIP, 80))
			if err != nil {
				t.Fatal(err)
			}
			conn.Close()
			seen[b]++
			if as != n1.addr.String() {
				t.Errorf("%s saw the node as %s, want %s", b, as, n1.addr)
			}
		}
		if seen[p1.name] == 0 || seen[remote.name] == 0 {
			t.Errorf("backends used: %v, want %s and %s", seen, p1.name, remote.name)
		}
	})
	t.Run("node refused without backends", func(t *testing.T) {
		ip := netip.MustParseAddr("10.96.0.11")
		set(Service{Key: tcpKey(ip, 80)})
		set(Service{Key: ServiceKey{IP: ip, Port: 53, Proto: ProtoUDP}})
		start := time.Now()
		_, err := dial(n1.host, "tcp4", svcAddr(ip, 80), 3*time.Second)
		if !errors.Is(err, syscall.ECONNREFUSED) || time.Since(start) > time.Second {
			t.Errorf("tcp to a service without backends: %v after %v, want refused at once", err, time.Since(start))
		}
		if _, _, err := askUDP(n1.host, svcAddr(ip, 53)); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("udp to a service without backends: %v, want refused", err)
		}
	})
	t.Run("affinity timeout", func(t *testing.T) {
		ip := netip.MustParseAddr("10.96.0.12")
		set(Service{Key: tcpKey(ip, 80), Backends: backendsOf([]*pod{p1, p2, remote}, tcpPort),
			Affinity: true, AffinityTimeout: 2 * time.Second})
		addr := svcAddr(ip, 80)
		first := stickyBackend(t, n1.host, addr)
		for range 8 {
			time.Sleep(2500 * time.Millisecond) // idle past the timeout
			if b := stickyBackend(t, n1.host, addr); b != first {
				return // re-balanced
			}
		}
		t.Errorf("the client stayed on %s after every idle period of 2.5 s (timeout 2 s)", first)
	})
	t.Run("pod forging the node's address", func(t *testing.T) {
		// Its own node's address as source, to the other node's nodePort
		// (to its own node's address the packet would never leave it).
		must(t, n2.dp.SetService(Service{Key: tcpKey(n2.addr, 30080), Backends: backendsOf([]*pod{remote}, tcpPort),
			SNAT: true}), "set")
		before := dropped(t, n1.dp, p2.ip, DropSource)
		ph := handleAt(t, p2.ns)
		eth0, err := ph.LinkByName("eth0")
		must(t, err, "eth0")
		must(t, ph.AddrAdd(eth0, mustAddr(n1.addr.String()+"/32")), "forged address")
		var conn net.Conn
		err = nsutil.Do(p2.ns, func() error {
			d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: n1.addr.AsSlice()}}
			var err error
			conn, err = d.Dial("tcp4", svcAddr(n2.addr, 30080))
			return err
		})
		if err == nil {
			conn.Close()
			t.Fatal("a pod sending as the node's address reached the nodePort")
		}
		if got := dropped(t, n1.dp, p2.ip, DropSource); got <= before {
			t.Errorf("source drops of %s: %d, want more than %d", p2.name, got, before)
		}
		must(t, ph.AddrDel(eth0, mustAddr(n1.addr.String()+"/32")), "remove forged address")
		expectGreeting(t, p2, svcAddr(n2.addr, 30080), remote.name, n2.addr.String())
	})
	t.Run("outside forging a reply tuple", func(t *testing.T) {
		// A live SNAT flow: its port on the node is known from conntrack.
		uc, err := dial(c.outside, "udp4", svcAddr(n1.addr, 30053), time.Second)
		must(t, err, "dial")
		defer uc.Close()
		uc.SetDeadline(time.Now().Add(2 * time.Second))
		_, err = uc.Write([]byte("x"))
		must(t, err, "write")
		_, err = uc.Read(make([]byte, 100))
		must(t, err, "read")
		port := snatPort(t, n1.dp, uc.LocalAddr().(*net.UDPAddr).AddrPort())
		// The same port, from an address that is not the backend: the
		// node's own socket on that port must get it untranslated.
		got := make(chan string, 1)
		var ln net.PacketConn
		must(t, nsutil.Do(n1.node, func() error {
			var err error
			ln, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", port))
			return err
		}), "listen on the SNAT port")
		defer ln.Close()
		go func() {
			buf := make([]byte, 100)
			ln.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, from, err := ln.ReadFrom(buf)
			if err != nil {
				got <- err.Error()
				return
			}
			got <- fmt.Sprintf("%s %s", from, buf[:n])
		}()
		forged, err := dial(c.outside, "udp4", svcAddr(n1.addr, port), time.Second)
		must(t, err, "dial forged")
		defer forged.Close()
		_, err = forged.Write([]byte("forged"))
		must(t, err, "write forged")
		want := forged.LocalAddr().String() + " forged"
		if g := <-got; g != want {
			t.Errorf("the node's socket on SNAT port %d got %q, want %q (untranslated)", port, g, want)
		}
		if b, _, err := askUDP(c.outside, svcAddr(n1.addr, 30053)); err != nil || b != p1.name {
			t.Errorf("the nodePort after the forgery: %s, %v", b, err)
		}
	})
}

func expectGreeting(t *testing.T, from *pod, addr, backend, seenAs string) {
	t.Helper()
	conn, b, as, err := greet(from, addr)
	if err != nil {
		t.Fatalf("%s to %s: %v", from.name, addr, err)
	}
	conn.Close()
	if b != backend || as != seenAs {
		t.Errorf("%s to %s: %s saw %s, want %s seeing %s", from.name, addr, b, as, backend, seenAs)
	}
}

// stickyBackend connects three times within the affinity timeout (the
// last after a second's idling) and returns the one backend they reached.
func stickyBackend(t *testing.T, from *pod, addr string) string {
	t.Helper()
	var first string
	for i := range 3 {
		if i == 2 {
			time.Sleep(time.Second)
		}
		conn, b, _, err := greet(from, addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
		if first == "" {
			first = b
		} else if b != first {
			t.Fatalf("affinity broke within the timeout: %s then %s", first, b)
		}
	}
	return first
}

// snatPort is the node port the connection of client was SNATed to.
func snatPort(t *testing.T, d *Datapath, client netip.AddrPort) uint16 {
	t.Helper()
	conns, err := d.Conntrack()
	must(t, err, "conntrack")
	for _, c := range conns {
		if c.Client == client && c.SNAT.IsValid() {
			if p := c.SNAT.Port(); p < 61001 {
				t.Errorf("SNAT port %d outside 61001-65535", p)
			}
			return c.SNAT.Port()
		}
	}
	t.Fatalf("no SNAT connection of %s in %+v", client, conns)
	return 0
}
