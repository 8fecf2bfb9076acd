package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/internal/attack"
	"github.com/netreconcile/netreconcile/internal/nstest"
	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/lab"
	"github.com/netreconcile/netreconcile/spec"
)

// The outside of a lab: addresses in no cluster range (TEST-NET-2) on the
// loopback of the lab's underlay namespace, which routes between the
// nodes' subnets and is every node's default router.
var (
	outsideHost  = netip.MustParseAddr("198.51.100.10")
	outsideOther = netip.MustParseAddr("198.51.100.11")
)

// addOutsideHost puts the outside addresses on the loopback of the
// underlay namespace of the lab l runs, and returns that namespace. (The
// namespace goes with lab down.)
func addOutsideHost(t *testing.T, l *svcLab) string {
	t.Helper()
	r, err := spec.LoadBytes("lab.yaml", []byte(l.topo()))
	if err != nil {
		t.Fatal(err)
	}
	ul := lab.UnderlayNetns(r)
	addOutside(t, ul, outsideHost.String())
	addOutside(t, ul, outsideOther.String())
	return ul
}

// hitFrom makes one TCP request from src in ns to addr and returns who
// answered (the banner of svcServeTCP).
func hitFrom(ns string, src netip.Addr, addr string, timeout time.Duration) (svcHit, error) {
	c, err := attack.DialTCPFrom(ns, src, netip.MustParseAddrPort(addr), timeout)
	if err != nil {
		return svcHit{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return svcHit{}, fmt.Errorf("read banner from %s: %w", addr, err)
	}
	return parseHit(strings.TrimSpace(line))
}

// udpHitFrom sends datagrams from src in ns to addr until one is answered
// and returns who answered (svcServeUDP's banner).
func udpHitFrom(ns string, src netip.Addr, addr string) (svcHit, error) {
	var c *net.UDPConn
	err := nsutil.Do(ns, func() (err error) {
		c, err = net.DialUDP("udp4", &net.UDPAddr{IP: src.AsSlice()}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
		return err
	})
	if err != nil {
		return svcHit{}, err
	}
	defer c.Close()
	buf := make([]byte, 2048)
	deadline := time.Now().Add(nstest.CheckTimeout)
	for time.Now().Before(deadline) {
		if _, err := c.Write([]byte("hello")); err != nil {
			return svcHit{}, err
		}
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := c.Read(buf)
		if err == nil {
			line, _, _ := strings.Cut(string(buf[:n]), "\n")
			return parseHit(line)
		}
		if !nstest.IsTimeout(err) {
			return svcHit{}, err
		}
	}
	return svcHit{}, fmt.Errorf("udp %s: %w", addr, nstest.ErrTimeout)
}

// wantUnanswered requires a TCP request from src in ns to addr to fail:
// refused when refused is set, else unanswered (dropped).
func wantUnanswered(t *testing.T, what, ns string, src netip.Addr, addr string, refused bool) {
	t.Helper()
	h, err := hitFrom(ns, src, addr, 1500*time.Millisecond)
	switch {
	case err == nil:
		t.Errorf("%s: answered by %s, want no answer", what, h)
	case refused && !errors.Is(err, unix.ECONNREFUSED):
		t.Errorf("%s: %v, want connection refused", what, err)
	case !refused && errors.Is(err, unix.ECONNREFUSED):
		t.Errorf("%s: refused, want dropped (no answer at all)", what)
	}
}

// nodePortLab is two nodes on one subnet (direct routing), a web pod on
// each, a pod only on a, a client pod on a, and services of every kind
// of frontend.
func nodePortLab(t *testing.T) *svcLab {
	l := newSvcLab(t, "np")
	l.nodes = []svcNode{{"a", "172.31.1.2/24", "10.244.1.0/24"}, {"b", "172.31.1.3/24", "10.244.2.0/24"}}
	web := map[string]string{"app": "web"}
	l.pods = []svcPod{
		{name: "wa", node: "a", ip: "10.244.1.10", mode: "veth", labels: web},
		{name: "wb", node: "b", ip: "10.244.2.10", mode: "veth", labels: web},
		{name: "oa", node: "a", ip: "10.244.1.20", mode: "veth", labels: map[string]string{"app": "only-a"}},
		{name: "c", node: "a", ip: "10.244.1.30", mode: "veth", labels: map[string]string{"app": "client"}},
	}
	l.services = []svcService{
		{name: "np-cluster", ip: "10.96.0.10", selector: web, extra: []string{"type: NodePort", "externalIPs: [198.51.100.50]"},
			ports: []string{"{name: http, port: 80, targetPort: 8080, nodePort: 30080}",
				"{name: dns, port: 53, targetPort: 5353, protocol: UDP, nodePort: 30053}"}},
		{name: "np-local", ip: "10.96.0.11", selector: web, extra: []string{"type: NodePort", "externalTrafficPolicy: Local"},
			ports: []string{"{port: 80, targetPort: 8080, nodePort: 30081}"}},
		{name: "np-local-a", ip: "10.96.0.12", selector: map[string]string{"app": "only-a"},
			extra: []string{"type: NodePort", "externalTrafficPolicy: Local"}, ports: []string{"{port: 80, targetPort: 8080, nodePort: 30082}"}},
		{name: "itp-local", ip: "10.96.0.13", selector: map[string]string{"app": "only-a"},
			extra: []string{"internalTrafficPolicy: Local"}, ports: []string{"{port: 80, targetPort: 8080}"}},
		{name: "web", ip: "10.96.0.14", selector: web, ports: []string{"{port: 80, targetPort: 8080}"}},
		{name: "sticky", ip: "10.96.0.15", selector: web, affinity: true,
			extra: []string{"sessionAffinityConfig: {clientIP: {timeoutSeconds: 2}}"}, ports: []string{"{port: 80, targetPort: 8080}"}},
	}
	return l
}

// TestNodePortLab: the outside reaches NodePorts on each node (Cluster:
// any backend, seen from the node; Local: the node's own backend, seen
// from the client; Local on a node without one: dropped) and an external
// IP routed to a node; each node's own processes reach a clusterIP with
// backends on both nodes; internalTrafficPolicy Local serves a node's own
// backends only; an affinity timeout of 2 s holds while busy and lets go
// after idling; nothing is left to change.
func TestNodePortLab(t *testing.T) {
	l := nodePortLab(t)
	l.up()
	ul := addOutsideHost(t, l)
	for _, name := range []string{"wa", "wb", "oa"} {
		l.serve(l.pod(name))
	}
	l.requireNoChanges("after lab up")
	both := map[string]int{"wa": 8080, "wb": 8080}
	for _, n := range []struct{ node, addr string }{{"a", "172.31.1.2"}, {"b", "172.31.1.3"}} {
		np := n.addr + ":30080"
		spread(t, "outside -> Cluster nodePort "+np, 40, both, n.addr, func() (svcHit, error) {
			return hitFrom(ul, outsideHost, np, nstest.CheckTimeout)
		})
		spread(t, "outside -> Cluster nodePort UDP "+n.addr+":30053", 40, map[string]int{"wa": 5353, "wb": 5353}, n.addr,
			func() (svcHit, error) { return udpHitFrom(ul, outsideHost, n.addr+":30053") })
		local := map[string]int{"w" + n.node: 8080}
		spread(t, "outside -> Local nodePort "+n.addr+":30081", 6, local, outsideHost.String(), func() (svcHit, error) {
			return hitFrom(ul, outsideHost, n.addr+":30081", nstest.CheckTimeout)
		})
		// The node's own processes: a clusterIP with a backend on each
		// node, seen from the node's address.
		spread(t, "node "+n.node+" -> clusterIP", 40, both, n.addr, func() (svcHit, error) {
			return hitFrom(l.nodeNS(n.node), netip.MustParseAddr(n.addr), "10.96.0.14:80", nstest.CheckTimeout)
		})
		// Its own nodePort (the nftables output chain sends it to the
		// clusterIP), and the other node's (over the uplink, as from
		// anywhere else).
		spread(t, "node "+n.node+" -> its own nodePort", 40, both, n.addr, func() (svcHit, error) {
			return hitFrom(l.nodeNS(n.node), netip.MustParseAddr(n.addr), np, nstest.CheckTimeout)
		})
		other := map[string]string{"a": "172.31.1.3", "b": "172.31.1.2"}[n.node]
		spread(t, "node "+n.node+" -> the other node's nodePort", 40, both, other, func() (svcHit, error) {
			return hitFrom(l.nodeNS(n.node), netip.MustParseAddr(n.addr), other+":30080", nstest.CheckTimeout)
		})
		// A pod reaches every node's nodePort: its own node's translates
		// at the pod's hook (the backend sees the pod), another's serves
		// it from its uplink (source NAT to that node).
		c := l.pod("c")
		peer := n.addr
		if n.node == "a" {
			peer = c.ip
		}
		spread(t, "pod c -> nodePort "+np, 40, both, peer, func() (svcHit, error) {
			return hitFrom(l.netns("c"), netip.MustParseAddr(c.ip), np, nstest.CheckTimeout)
		})
	}
	spread(t, "outside -> Local nodePort on the node with the backend", 4, map[string]int{"oa": 8080}, outsideHost.String(),
		func() (svcHit, error) { return hitFrom(ul, outsideHost, "172.31.1.2:30082", nstest.CheckTimeout) })
	wantUnanswered(t, "outside -> Local nodePort on a node without a backend", ul, outsideHost, "172.31.1.3:30082", false)

	// An external IP that the network routes to node b.
	if out, err := exec.Command("ip", "-n", ul, "route", "add", "198.51.100.50/32", "via", "172.31.1.3").CombinedOutput(); err != nil {
		t.Fatalf("route the external IP to node b: %v %s", err, out)
	}
	spread(t, "outside -> externalIP via node b", 40, both, "172.31.1.3", func() (svcHit, error) {
		return hitFrom(ul, outsideHost, "198.51.100.50:80", nstest.CheckTimeout)
	})
	// A node's own processes reach the external IP too (its route goes to
	// the service device).
	spread(t, "node a -> externalIP", 40, both, "172.31.1.2", func() (svcHit, error) {
		return hitFrom(l.nodeNS("a"), netip.MustParseAddr("172.31.1.2"), "198.51.100.50:80", nstest.CheckTimeout)
	})

	// internalTrafficPolicy Local: node a has the only backend.
	spread(t, "node a -> internalTrafficPolicy Local", 4, map[string]int{"oa": 8080}, "172.31.1.2", func() (svcHit, error) {
		return hitFrom(l.nodeNS("a"), netip.MustParseAddr("172.31.1.2"), "10.96.0.13:80", nstest.CheckTimeout)
	})
	wantUnanswered(t, "node b -> internalTrafficPolicy Local without a local backend", l.nodeNS("b"),
		netip.MustParseAddr("172.31.1.3"), "10.96.0.13:80", true)
	if h, err := tcpHit(l.netns("c"), "10.96.0.13:80"); err != nil || h.pod != "oa" {
		t.Errorf("pod c on node a -> internalTrafficPolicy Local: %v %v, want oa", h, err)
	}
	checkAffinityTimeout(t, l)
	l.requireNoChanges("after the traffic")
	out := l.mustRun("a", "show")
	for _, want := range []string{"nodePort 172.31.1.2:30080/TCP -> 10.244.1.10:8080,10.244.2.10:8080 (snat)",
		"nodePort 172.31.1.2:30081/TCP -> 10.244.1.10:8080", "externalIP 198.51.100.50:80/TCP -> 10.244.1.10:8080,10.244.2.10:8080 (snat)",
		"clusterIP 10.96.0.15:80/TCP -> 10.244.1.10:8080,10.244.2.10:8080 (affinity 2s)", "node program uplink-ingress on eth0 live=true",
		"node program service-egress on nrsvc0 live=true"} {
		if !strings.Contains(out, want) {
			t.Errorf("show on node a lacks %q:\n%s", want, out)
		}
	}
}

// checkAffinityTimeout: requests every 300 ms from pod c stick to one
// backend; after idling longer than the 2 s timeout, a client is free to
// land on the other one (seen within a few idle periods: each picks at
// random).
func checkAffinityTimeout(t *testing.T, l *svcLab) {
	t.Helper()
	ns := l.netns("c")
	first := ""
	for i := range 12 {
		h, err := tcpHit(ns, "10.96.0.15:80")
		if err != nil {
			t.Fatalf("affinity: request %d: %v", i, err)
		}
		if first == "" {
			first = h.pod
		} else if h.pod != first {
			t.Fatalf("affinity: request %d answered by %s while busy, want %s", i, h.pod, first)
		}
		time.Sleep(300 * time.Millisecond)
	}
	seen := map[string]bool{first: true}
	for i := 0; i < 10 && len(seen) < 2; i++ {
		time.Sleep(2500 * time.Millisecond)
		h, err := tcpHit(ns, "10.96.0.15:80")
		if err != nil {
			t.Fatalf("affinity: after idling: %v", err)
		}
		seen[h.pod] = true
	}
	if len(seen) < 2 {
		t.Errorf("affinity: after 10 idle periods over the 2 s timeout every request still went to %s", first)
	}
}

// TestNodePortPolicy: an ingress policy on NodePort backends that allows
// only the outside host's address (ipBlock) sees the client under Local
// (allowed; another outside address denied) and the node under Cluster:
// a backend on another node sees the entry node's address, not in the
// ipBlock (denied); a backend on the entry node sees that node's own
// address, which policies always allow (the node is the host, as for
// kubelet probes). A pod that forges the outside host's address cannot
// use the NodePort to get past the policy: its packets never reach the
// backend.
func TestNodePortPolicy(t *testing.T) {
	l := nodePortLab(t)
	l.services = append(l.services, svcService{name: "np-cluster-a", ip: "10.96.0.16", selector: map[string]string{"app": "only-a"},
		extra: []string{"type: NodePort"}, ports: []string{"{port: 80, targetPort: 8080, nodePort: 30083}"}})
	l.extra = "policies:\n"
	for _, app := range []string{"web", "only-a"} {
		l.extra += "  - name: outside-only-" + app + "\n    namespace: t\n    spec:\n" +
			"      podSelector: {matchLabels: {app: " + app + "}}\n      policyTypes: [Ingress]\n" +
			"      ingress: [{from: [{ipBlock: {cidr: 198.51.100.10/32}}], ports: [{port: 8080, protocol: TCP}]}]\n"
	}
	l.up()
	ul := addOutsideHost(t, l)
	for _, name := range []string{"wa", "wb", "oa"} {
		l.serve(l.pod(name))
	}
	spread(t, "outside host -> Local nodePort (allowed by ipBlock)", 4, map[string]int{"wa": 8080}, outsideHost.String(),
		func() (svcHit, error) { return hitFrom(ul, outsideHost, "172.31.1.2:30081", nstest.CheckTimeout) })
	wantUnanswered(t, "other outside address -> Local nodePort (not in the ipBlock)", ul, outsideOther, "172.31.1.2:30081", false)
	wantUnanswered(t, "outside host -> Cluster nodePort of node b, backend on a (sees node b)", ul, outsideHost, "172.31.1.3:30083", false)
	spread(t, "outside host -> Cluster nodePort of node a, backend on a (sees its own node)", 4, map[string]int{"oa": 8080},
		"172.31.1.2", func() (svcHit, error) { return hitFrom(ul, outsideHost, "172.31.1.2:30083", nstest.CheckTimeout) })

	// The forger: pod c on node a sends SYNs as the outside host to the
	// Local nodePort whose backend wa the policy opens to that address.
	rec, err := attack.Capture(l.netns("wa"), "eth0")
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	forged := func(p attack.Packet) bool { return p.Src == outsideHost && p.Proto == unix.IPPROTO_TCP }
	for i := range 5 {
		src, dst := netip.AddrPortFrom(outsideHost, uint16(40000+i)), netip.MustParseAddrPort("172.31.1.2:30081")
		h := attack.IPv4{Src: src.Addr(), Dst: dst.Addr(), Proto: unix.IPPROTO_TCP}
		if err := attack.SendOnce(l.netns("c"), h.Packet(attack.SYN(src, dst, 1))); err != nil {
			t.Fatal(err)
		}
	}
	if rec.WaitFor(1500*time.Millisecond, forged) {
		t.Errorf("a SYN forged as %s by pod c reached backend wa through the nodePort: %v", outsideHost, rec.Packets(forged))
	}
	// Control: the real outside host's SYN is seen there.
	if _, err := hitFrom(ul, outsideHost, "172.31.1.2:30081", nstest.CheckTimeout); err != nil {
		t.Errorf("control: outside host -> Local nodePort: %v", err)
	}
	if !rec.WaitFor(time.Second, forged) {
		t.Errorf("control: the capture in wa saw no SYN from %s", outsideHost)
	}
}

// TestServiceDeviceDrift: the service device and its routes are made by
// apply, shown by plan when deleted by hand, repaired by apply, and
// removed by destroy.
func TestServiceDeviceDrift(t *testing.T) {
	l := newSvcLab(t, "sd")
	l.nodes = []svcNode{{"a", "172.31.1.2/24", "10.244.1.0/24"}}
	l.pods = []svcPod{{name: "w", node: "a", ip: "10.244.1.10", mode: "veth", labels: map[string]string{"app": "w"}}}
	l.services = []svcService{{name: "w", ip: "10.96.0.10", selector: map[string]string{"app": "w"},
		extra: []string{"externalIPs: [198.51.100.50]"}, ports: []string{"{port: 80, targetPort: 8080}"}}}
	l.up()
	ns := l.nodeNS("a")
	checkServiceDevice(t, ns, true)
	l.requireNoChanges("after lab up")
	drift := []struct {
		what string
		cmd  []string
		want []string
	}{
		{"nrsvc0 deleted", []string{"link", "del", "nrsvc0"},
			[]string{"+   link node/nrsvc0", "+   route node/10.96.0.0/16", "+   route node/198.51.100.50/32", "program"}},
		{"service route deleted", []string{"route", "del", "10.96.0.0/16"}, []string{"+   route node/10.96.0.0/16"}},
		{"ARP turned on", []string{"link", "set", "nrsvc1", "arp", "on"}, []string{"~   link node/nrsvc0", "noarp"}},
	}
	for _, d := range drift {
		if out, err := exec.Command("ip", append([]string{"-n", ns}, d.cmd...)...).CombinedOutput(); err != nil {
			t.Fatalf("%s: ip %v: %v %s", d.what, d.cmd, err, out)
		}
		out, errOut, code := l.run("a", "plan", "--detailed-exitcode")
		if code != 2 {
			t.Fatalf("%s: plan exit %d, want 2\n%s%s", d.what, code, out, errOut)
		}
		for _, w := range d.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: plan lacks %q:\n%s", d.what, w, out)
			}
		}
		l.mustRun("a", "apply")
		checkServiceDevice(t, ns, true)
		l.requireNoChanges("after repairing: " + d.what)
	}
	l.mustRun("a", "destroy")
	checkServiceDevice(t, ns, false)
}

// checkServiceDevice checks the service device in node namespace ns: both
// ends up and NOARP, the routes with our protocol and the node's source;
// or, without want, that neither end nor route is left.
func checkServiceDevice(t *testing.T, ns string, want bool) {
	t.Helper()
	h, err := nsutil.Handle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var dev netlink.Link
	for _, name := range []string{"nrsvc0", "nrsvc1"} {
		link, err := h.LinkByName(name)
		if !want {
			if err == nil {
				t.Errorf("%s left after destroy", name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		a := link.Attrs()
		if a.RawFlags&unix.IFF_NOARP == 0 || a.RawFlags&unix.IFF_UP == 0 {
			t.Errorf("%s: flags %#x, want UP and NOARP", name, a.RawFlags)
		}
		if name == "nrsvc0" {
			dev = link
		}
	}
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, r := range routes {
		if r.Dst == nil || (r.Dst.String() != "10.96.0.0/16" && r.Dst.String() != "198.51.100.50/32") {
			continue
		}
		found[r.Dst.String()] = true
		if want && (dev == nil || r.LinkIndex != dev.Attrs().Index || r.Protocol != 154 || !r.Src.Equal(net.ParseIP("172.31.1.2"))) {
			t.Errorf("route %s: dev %d proto %d src %v, want nrsvc0, protocol 154, src 172.31.1.2", r.Dst, r.LinkIndex, r.Protocol, r.Src)
		}
	}
	if want && len(found) != 2 {
		t.Errorf("service routes found: %v, want 10.96.0.0/16 and 198.51.100.50/32", found)
	}
	if !want && len(found) > 0 {
		t.Errorf("service routes left after destroy: %v", found)
	}
}

// TestWatchServiceDevice: the watch daemon makes the service device again
// when it is deleted by hand, and its metrics say what is programmed: a
// frontend of each kind, the programs on the uplink and the device.
func TestWatchServiceDevice(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	pods := []podDef{{"a", "10.244.1.10", "veth", w.id + "-a"}}
	w.file = filepath.Join(dir, "topology.yaml")
	topo := w.topo(pods) + "services:\n  - {name: s, namespace: t, type: NodePort, clusterIP: 10.96.0.10, " +
		"externalIPs: [198.51.100.50], selector: {app: none}, ports: [{port: 80, nodePort: 30080}]}\n"
	replaceFile(t, w.file, topo)
	labFile := filepath.Join(dir, "lab.yaml")
	replaceFile(t, labFile, topo)
	t.Cleanup(func() {
		w.labDown(labFile)
		_ = exec.Command("ip", "netns", "del", pods[0].netns).Run()
	})
	w.mustRun("lab", "up", "-f", w.file, "--state-dir", w.stateDir)
	p := startWatch(t, w)
	ip(t, w.nodeNS, "link", "del", "nrsvc0")
	eventually(t, 20*time.Second, "nrsvc0 and its routes made again", func() bool {
		return ipHas(w.nodeNS, "nrsvc1", "link", "show", "nrsvc0") && ipHas(w.nodeNS, "nrsvc0", "route", "show", "10.96.0.0/16") &&
			ipHas(w.nodeNS, "nrsvc0", "route", "show", "198.51.100.50")
	})
	eventually(t, 20*time.Second, "a plan without changes", func() bool { return w.planEmpty(w.file) })
	m := p.scrape()
	for key, want := range map[string]float64{
		`netreconcile_service_frontends{frontend="clusterIP"}`:                 1,
		`netreconcile_service_frontends{frontend="nodePort"}`:                  1,
		`netreconcile_service_frontends{frontend="externalIP"}`:                1,
		`netreconcile_service_frontends_without_backends{frontend="nodePort"}`: 1,
		`netreconcile_node_programs{hook="service-egress"}`:                    1,
		`netreconcile_node_programs{hook="uplink-ingress"}`:                    1,
	} {
		if m[key] != want {
			t.Errorf("%s = %v, want %v", key, m[key], want)
		}
	}
	if m[`netreconcile_drift_repaired_total{kind="link"}`] < 1 {
		t.Errorf("drift_repaired_total{kind=link} = %v, want the device counted", m[`netreconcile_drift_repaired_total{kind="link"}`])
	}
}

// TestNodePortAcrossSubnets: node c sits behind the lab's router (VXLAN
// between the nodes): the outside reaches a Cluster nodePort on node a
// with backends on a and c, and each node's own processes reach the
// clusterIP with both backends.
func TestNodePortAcrossSubnets(t *testing.T) {
	l := newSvcLab(t, "nx")
	l.nodes = []svcNode{{"a", "172.31.1.2/24", "10.244.1.0/24"}, {"c", "172.31.2.2/24", "10.244.3.0/24"}}
	web := map[string]string{"app": "web"}
	l.pods = []svcPod{
		{name: "wa", node: "a", ip: "10.244.1.10", mode: "veth", labels: web},
		{name: "wc", node: "c", ip: "10.244.3.10", mode: "bridge", labels: web},
	}
	l.services = []svcService{{name: "np", ip: "10.96.0.10", selector: web, extra: []string{"type: NodePort"},
		ports: []string{"{port: 80, targetPort: 8080, nodePort: 30080}"}}}
	l.up()
	ul := addOutsideHost(t, l)
	l.serve(l.pod("wa"))
	l.serve(l.pod("wc"))
	both := map[string]int{"wa": 8080, "wc": 8080}
	for _, n := range []struct{ node, addr string }{{"a", "172.31.1.2"}, {"c", "172.31.2.2"}} {
		spread(t, "outside -> nodePort of node "+n.node, 40, both, n.addr, func() (svcHit, error) {
			return hitFrom(ul, outsideHost, n.addr+":30080", nstest.CheckTimeout)
		})
		spread(t, "node "+n.node+" -> clusterIP", 40, both, n.addr, func() (svcHit, error) {
			return hitFrom(l.nodeNS(n.node), netip.MustParseAddr(n.addr), "10.96.0.10:80", nstest.CheckTimeout)
		})
	}
	l.requireNoChanges("after the traffic")
}
