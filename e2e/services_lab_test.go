package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/bpf"
	"github.com/netreconcile/netreconcile/internal/nstest"
	"github.com/netreconcile/netreconcile/internal/nsutil"
)

// Helpers of the service tests (services_test.go): a lab with labelled pods,
// named container ports and services; echo servers whose banner names the
// pod, the port it listens on and the peer it sees; pumps that keep a TCP
// connection busy; and checks on what the datapath leaves in the kernel.

// svcLab is a lab for service tests. Node and netns names are unique, state
// goes to a private directory and pins below a private --bpffs root
// (/sys/fs/bpf/netreconcile-test-<id>, each node in <root>/<node>), which
// the cleanup requires to be empty after lab down and then removes.
type svcLab struct {
	t        *testing.T
	bin      string
	id       string
	stateDir string
	pinRoot  string
	file     string
	nodes    []svcNode
	pods     []svcPod
	services []svcService
	extra    string // top-level YAML after the services (policies)
}

type svcNode struct{ name, addr, cidr string }

// svcPod is one pod. web is the TCP port its "web" container port names
// (0: it declares none), so that a named targetPort resolves per pod.
type svcPod struct {
	name, node, ip, mode string
	labels               map[string]string
	web                  int
	netns                string // "" for the lab's default, <id>-<name>
}

// svcService is one service; ports are YAML flow mappings as written in
// the file, e.g. "{name: http, port: 80, targetPort: 8080}".
type svcService struct {
	name, ip string
	selector map[string]string
	ports    []string
	affinity bool
	extra    []string // more fields, one "key: value" line each
}

func newSvcLab(t *testing.T, prefix string) *svcLab {
	nstest.RequireRoot(t)
	id := UniqueName(prefix)
	return &svcLab{t: t, bin: BuildBinary(t), id: id, stateDir: t.TempDir(),
		pinRoot: "/sys/fs/bpf/netreconcile-test-" + id}
}

func (l *svcLab) node(s string) string   { return l.id + s }
func (l *svcLab) nodeNS(s string) string { return "nrlab-" + l.node(s) }
func (l *svcLab) netns(pod string) string {
	for _, p := range l.pods {
		if p.name == pod && p.netns != "" {
			return p.netns
		}
	}
	return l.id + "-" + pod
}
func (l *svcLab) pinDir(s string) string { return filepath.Join(l.pinRoot, l.node(s)) }

func (l *svcLab) pod(name string) svcPod {
	for _, p := range l.pods {
		if p.name == name {
			return p
		}
	}
	l.t.Fatalf("no pod %q in the lab", name)
	return svcPod{}
}

func flowMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+": "+m[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func (l *svcLab) topo() string {
	var b strings.Builder
	b.WriteString("apiVersion: netreconcile/v1\nkind: Topology\ncluster:\n")
	b.WriteString("  podCIDR: 10.244.0.0/16\n  serviceCIDR: 10.96.0.0/16\n")
	b.WriteString("  routing: {mode: auto, vxlan: {vni: 1, port: 4789}}\nnodes:\n")
	for _, n := range l.nodes {
		fmt.Fprintf(&b, "  - {name: %s, address: %s, uplink: eth0, podCIDR: %s}\n", l.node(n.name), n.addr, n.cidr)
	}
	b.WriteString("pods:\n")
	for _, p := range l.pods {
		fmt.Fprintf(&b, "  - {name: %s, namespace: t, node: %s, ip: %s, mode: %s, netns: %s", p.name, l.node(p.node), p.ip, p.mode, l.netns(p.name))
		if len(p.labels) > 0 {
			fmt.Fprintf(&b, ", labels: %s", flowMap(p.labels))
		}
		if p.web != 0 {
			fmt.Fprintf(&b, ", ports: [{name: web, port: %d, protocol: TCP}]", p.web)
		}
		b.WriteString("}\n")
	}
	if len(l.services) > 0 {
		b.WriteString("services:\n")
	}
	for _, s := range l.services {
		fmt.Fprintf(&b, "  - name: %s\n    namespace: t\n    clusterIP: %s\n", s.name, s.ip)
		if len(s.selector) > 0 {
			fmt.Fprintf(&b, "    selector: %s\n", flowMap(s.selector))
		}
		fmt.Fprintf(&b, "    ports: [%s]\n", strings.Join(s.ports, ", "))
		if s.affinity {
			b.WriteString("    sessionAffinity: ClientIP\n")
		}
		for _, e := range s.extra {
			b.WriteString("    " + e + "\n")
		}
	}
	b.WriteString(l.extra)
	return b.String()
}

// write writes the current topology to a new file, makes it current and
// returns its path.
func (l *svcLab) write() string {
	l.file = WriteFile(l.t, fmt.Sprintf("%s-%d.yaml", l.id, time.Now().UnixNano()), l.topo())
	return l.file
}

// up writes the topology and runs lab up. The first call registers the
// cleanup: lab down with the file current at the end, deletion of the pod
// namespaces, and the check that no pin is left below the pin root.
func (l *svcLab) up() {
	l.t.Helper()
	first := l.file == ""
	l.write()
	if first {
		l.t.Cleanup(l.down)
	}
	out, errOut, code := Run(l.t, l.bin, "lab", "up", "-f", l.file, "--state-dir", l.stateDir, "--bpffs", l.pinRoot)
	if code != 0 {
		l.t.Fatalf("lab up: exit %d\n%s%s", code, out, errOut)
	}
}

func (l *svcLab) down() {
	t := l.t
	if t.Failed() {
		var refs []string
		for _, n := range l.nodes {
			refs = append(refs, l.nodeNS(n.name))
		}
		DumpState(t, refs...)
		for _, n := range l.nodes {
			out, _, _ := l.run(n.name, "show")
			t.Logf("show node %s:\n%s", n.name, out)
		}
	}
	if _, errOut, code := Run(t, l.bin, "lab", "down", "-f", l.file, "--state-dir", l.stateDir, "--bpffs", l.pinRoot); code != 0 {
		t.Errorf("lab down: exit %d\n%s", code, errOut)
	}
	for _, p := range l.pods {
		_ = exec.Command("ip", "netns", "del", l.netns(p.name)).Run()
	}
	if left := pinsBelow(l.pinRoot); len(left) > 0 {
		t.Errorf("pins left after lab down: %v", left)
	}
	if err := os.RemoveAll(l.pinRoot); err != nil {
		t.Errorf("remove pin root: %v", err)
	}
}

// pinsBelow lists the files (pins) below dir, relative to it.
func pinsBelow(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// run runs a node command (plan, apply, destroy, show) on node s with the
// current file.
func (l *svcLab) run(s string, args ...string) (string, string, int) {
	l.t.Helper()
	return Run(l.t, l.bin, l.nodeArgs(s, args...)...)
}

func (l *svcLab) nodeArgs(s string, args ...string) []string {
	return append(args, "-f", l.file, "--node", l.node(s), "--node-netns", l.nodeNS(s),
		"--state-dir", l.stateDir, "--bpffs", l.pinDir(s))
}

func (l *svcLab) mustRun(s string, args ...string) string {
	l.t.Helper()
	out, errOut, code := l.run(s, args...)
	if code != 0 {
		l.t.Fatalf("node %s: %s: exit %d\n%s%s", s, strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// requireNoChanges requires plan --detailed-exitcode to exit 0 on every node.
func (l *svcLab) requireNoChanges(when string) {
	l.t.Helper()
	for _, n := range l.nodes {
		if out, errOut, code := l.run(n.name, "plan", "--detailed-exitcode"); code != 0 {
			l.t.Errorf("%s: node %s: plan --detailed-exitcode: exit %d, want 0\n%s%s", when, n.name, code, out, errOut)
		}
	}
}

// serve starts, in pod p, TCP echo servers on 8080 and on its web port and
// a UDP echo server on 5353, all bound to the pod's IP.
func (l *svcLab) serve(p svcPod) {
	ns := l.netns(p.name)
	svcServeTCP(l.t, ns, p.ip, 8080, p.name)
	if p.web != 0 {
		svcServeTCP(l.t, ns, p.ip, p.web, p.name)
	}
	svcServeUDP(l.t, ns, p.ip, 5353, p.name)
}

// svcServeTCP serves the nstest echo protocol with the banner
// "NAME@PORT PEER": the pod, the port the connection arrived on and the
// client address the pod sees.
func svcServeTCP(t *testing.T, ns, ip string, port int, name string) {
	t.Helper()
	l, err := nstest.ListenTCP(ns, net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Minute))
				fmt.Fprintf(c, "%s@%d %s\n", name, port, c.RemoteAddr())
				io.Copy(c, c)
			}()
		}
	}()
}

// svcServeUDP answers each datagram with "NAME@PORT PEER", a newline and
// the datagram.
func svcServeUDP(t *testing.T, ns, ip string, port int, name string) {
	t.Helper()
	pc, err := nstest.ListenUDP(ns, net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			reply := append([]byte(fmt.Sprintf("%s@%d %s\n", name, port, from)), buf[:n]...)
			pc.WriteTo(reply, from)
		}
	}()
}

// svcHit is who answered one request: the pod, the port it was reached on
// and the address it saw the client as.
type svcHit struct {
	pod  string
	port int
	peer netip.Addr
}

func (h svcHit) String() string { return fmt.Sprintf("%s@%d (saw %s)", h.pod, h.port, h.peer) }

func parseHit(banner string) (svcHit, error) {
	f := strings.Fields(banner)
	if len(f) != 2 {
		return svcHit{}, fmt.Errorf("banner %q: want NAME@PORT PEER", banner)
	}
	name, port, ok := strings.Cut(f[0], "@")
	p, err := strconv.Atoi(port)
	peer, perr := netip.ParseAddrPort(f[1])
	if !ok || err != nil || perr != nil {
		return svcHit{}, fmt.Errorf("banner %q: want NAME@PORT PEER", banner)
	}
	return svcHit{name, p, peer.Addr()}, nil
}

// tcpHit makes one TCP round trip from ns to addr.
func tcpHit(ns, addr string) (svcHit, error) {
	b, err := nstest.TryTCP(ns, addr, nstest.CheckTimeout)
	if err != nil {
		return svcHit{}, err
	}
	return parseHit(b)
}

// udpHit makes one UDP round trip from ns to addr, from a new socket (a new
// source port: a new flow for the datapath).
func udpHit(ns, addr string) (svcHit, error) {
	b, err := nstest.TryUDP(ns, addr, nstest.CheckTimeout)
	if err != nil {
		return svcHit{}, err
	}
	return parseHit(b)
}

// udpReplySource sends one datagram from an unconnected socket in ns to
// addr and returns the source address of the answer: a connected socket
// would drop an answer from any other address, so this one shows what
// reverse NAT wrote.
func udpReplySource(ns, src, addr string) (netip.AddrPort, error) {
	pc, err := nstest.ListenUDP(ns, src+":0")
	if err != nil {
		return netip.AddrPort{}, err
	}
	defer pc.Close()
	to, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	buf := make([]byte, 2048)
	deadline := time.Now().Add(nstest.CheckTimeout)
	for time.Now().Before(deadline) {
		if _, err := pc.WriteTo([]byte("who"), to); err != nil {
			return netip.AddrPort{}, err
		}
		pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, from, err := pc.ReadFrom(buf)
		if err == nil {
			return from.(*net.UDPAddr).AddrPort(), nil
		}
		if !nstest.IsTimeout(err) {
			return netip.AddrPort{}, err
		}
	}
	return netip.AddrPort{}, fmt.Errorf("udp %s: %w", addr, nstest.ErrTimeout)
}

// spread sends requests with hit until every pod of want has answered (at
// most tries requests) and returns how often each pod answered. Every hit
// must come from a pod of want, reached on the port want gives for it, and
// see the client as peer.
func spread(t *testing.T, what string, tries int, want map[string]int, peer string, hit func() (svcHit, error)) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for i := 0; i < tries && len(seen) < len(want); i++ {
		h, err := hit()
		if err != nil {
			t.Errorf("%s: request %d: %v", what, i, err)
			return seen
		}
		port, ok := want[h.pod]
		switch {
		case !ok:
			t.Errorf("%s: answered by %s, not a backend (%v)", what, h, want)
		case port != h.port:
			t.Errorf("%s: %s answered on port %d, want %d", what, h.pod, h.port, port)
		case h.peer.String() != peer:
			t.Errorf("%s: %s saw the client as %s, want %s", what, h.pod, h.peer, peer)
		}
		seen[h.pod]++
	}
	if len(seen) != len(want) {
		t.Errorf("%s: backends reached in %d requests: %v, want all of %v", what, tries, seen, want)
	}
	return seen
}

// pump keeps one TCP connection through a service busy: a line every
// 20 ms, each echoed back before the next, until stopped. It records the
// first error, the round trips done and the slowest one.
type pump struct {
	name    string
	backend string
	c       net.Conn
	mu      sync.Mutex
	n       int
	maxRTT  time.Duration
	err     error
	stop    chan struct{}
	done    chan struct{}
}

// startPump dials addr from ns until the connection lands on backend (at
// most 40 tries), then keeps it busy.
func startPump(t *testing.T, name, ns, addr, backend string) *pump {
	t.Helper()
	for range 40 {
		c, err := nstest.DialTCP(ns, addr, nstest.CheckTimeout)
		if err != nil {
			t.Fatalf("pump %s: %v", name, err)
		}
		c.SetDeadline(time.Now().Add(nstest.CheckTimeout))
		r := bufio.NewReader(c)
		banner, err := r.ReadString('\n')
		if err != nil {
			c.Close()
			t.Fatalf("pump %s: banner: %v", name, err)
		}
		h, err := parseHit(strings.TrimSpace(banner))
		if err != nil {
			c.Close()
			t.Fatalf("pump %s: %v", name, err)
		}
		if h.pod != backend {
			c.Close()
			continue
		}
		p := &pump{name: name, backend: backend, c: c, stop: make(chan struct{}), done: make(chan struct{})}
		go p.loop(r)
		t.Cleanup(p.close)
		return p
	}
	t.Fatalf("pump %s: 40 connections to %s, none landed on %s", name, addr, backend)
	return nil
}

func (p *pump) loop(r *bufio.Reader) {
	defer close(p.done)
	for i := 0; ; i++ {
		select {
		case <-p.stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		line := fmt.Sprintf("%s %d\n", p.name, i)
		start := time.Now()
		p.c.SetDeadline(start.Add(5 * time.Second))
		_, err := io.WriteString(p.c, line)
		var got string
		if err == nil {
			got, err = r.ReadString('\n')
		}
		if err == nil && got != line {
			err = fmt.Errorf("echo %q, want %q", got, line)
		}
		rtt := time.Since(start)
		p.mu.Lock()
		if err != nil {
			p.err = fmt.Errorf("round trip %d: %w", i, err)
			p.mu.Unlock()
			return
		}
		p.n++
		p.maxRTT = max(p.maxRTT, rtt)
		p.mu.Unlock()
	}
}

func (p *pump) state() (int, time.Duration, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n, p.maxRTT, p.err
}

// check requires that the connection is still echoing: no error so far,
// and new round trips within 3 s.
func (p *pump) check(t *testing.T, when string) {
	t.Helper()
	n0, _, err := p.state()
	deadline := time.Now().Add(3 * time.Second)
	for err == nil {
		var n int
		n, _, err = p.state()
		if n > n0+2 {
			return
		}
		if time.Now().After(deadline) {
			err = fmt.Errorf("no round trip for 3 s (%d done)", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: connection %s (to %s) broke: %v", when, p.name, p.backend, err)
}

// retransmits returns the connection's retransmitted segment count.
func (p *pump) retransmits() uint32 {
	sc, err := p.c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return 0
	}
	var info *unix.TCPInfo
	sc.Control(func(fd uintptr) { info, _ = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if info == nil {
		return 0
	}
	return info.Total_retrans
}

func (p *pump) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	p.c.Close()
}

// pinnedIDs returns the ids of the links pinned below pinDir/links and of
// their programs.
func pinnedIDs(t *testing.T, pinDir string) (links []link.ID, progs []ebpf.ProgramID) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(pinDir, "links"))
	if err != nil {
		t.Fatalf("pinned links: %v", err)
	}
	for _, e := range ents {
		l, err := link.LoadPinnedLink(filepath.Join(pinDir, "links", e.Name()), nil)
		if err != nil {
			t.Fatalf("load pinned link %s: %v", e.Name(), err)
		}
		info, err := l.Info()
		l.Close()
		if err != nil {
			t.Fatalf("link info %s: %v", e.Name(), err)
		}
		links = append(links, info.ID)
		progs = append(progs, info.Program)
	}
	return links, progs
}

// requireGone requires that no link or program of the given ids exists
// any more (the kernel frees them asynchronously: it waits up to 3 s).
func requireGone(t *testing.T, when string, links []link.ID, progs []ebpf.ProgramID) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		var alive []string
		for _, id := range links {
			if l, err := link.NewFromID(id); err == nil {
				l.Close()
				alive = append(alive, fmt.Sprintf("link %d", id))
			}
		}
		for _, id := range progs {
			if p, err := ebpf.NewProgramFromID(id); err == nil {
				p.Close()
				alive = append(alive, fmt.Sprintf("program %d", id))
			}
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: still in the kernel: %v", when, alive)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// nsLinks returns a netlink handle in netns ns, closed when the test
// ends, and its links.
func nsLinks(t *testing.T, ns string) (*netlink.Handle, []netlink.Link) {
	t.Helper()
	h, err := nsutil.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close() // the handle keeps the namespace
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nh.Close)
	links, err := nh.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	return nh, links
}

// tcxPrograms returns, per interface of netns ns, how many programs are
// attached to its tcx ingress and egress hooks.
func tcxPrograms(t *testing.T, ns string) map[string]int {
	t.Helper()
	_, links := nsLinks(t, ns)
	out := map[string]int{}
	err := nsutil.Do(ns, func() error {
		for _, l := range links {
			for _, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
				res, err := link.QueryPrograms(link.QueryOptions{Target: l.Attrs().Index, Attach: at})
				if err != nil {
					return fmt.Errorf("query %s: %w", l.Attrs().Name, err)
				}
				out[l.Attrs().Name] += len(res.Programs)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// bpfFilters counts the bpf filters on the clsact hooks of every
// interface of netns ns (where --attach-mode auto puts pods' programs).
func bpfFilters(t *testing.T, ns string) int {
	t.Helper()
	nh, links := nsLinks(t, ns)
	n := 0
	for _, l := range links {
		for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
			fs, err := nh.FilterList(l, parent)
			if err != nil {
				continue // no clsact qdisc there
			}
			for _, f := range fs {
				if _, ok := f.(*netlink.BpfFilter); ok {
					n++
				}
			}
		}
	}
	return n
}

// fakeLayout writes version into the pinned config map, as if an older
// build with another map layout had created the datapath.
func fakeLayout(t *testing.T, pinDir string, version uint32) {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(filepath.Join(pinDir, "nr_config"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var cfg bpf.NrConfig
	if err := m.Lookup(uint32(0), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Version = bpf.NrLayout(version)
	if err := m.Put(uint32(0), &cfg); err != nil {
		t.Fatal(err)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// tcpFrom makes one echo round trip from src ("ip:port", a fixed source
// port, reusable while an earlier connection from it is in TIME_WAIT) in
// netns ns to dst.
func tcpFrom(ns, src, dst string) (svcHit, error) {
	local, err := net.ResolveTCPAddr("tcp4", src)
	if err != nil {
		return svcHit{}, err
	}
	var c net.Conn
	err = nsutil.Do(ns, func() (err error) {
		d := net.Dialer{Timeout: nstest.CheckTimeout, LocalAddr: local, Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) })
			return serr
		}}
		c, err = d.Dial("tcp4", dst)
		return err
	})
	if err != nil {
		return svcHit{}, fmt.Errorf("dial %s from %s: %w", dst, src, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(nstest.CheckTimeout))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return svcHit{}, err
	}
	c.(*net.TCPConn).CloseWrite()
	reply, err := io.ReadAll(c)
	if err != nil {
		return svcHit{}, fmt.Errorf("tcp %s from %s: %w (got %q)", dst, src, err, reply)
	}
	banner, echo, _ := strings.Cut(string(reply), "\n")
	if echo != "ping\n" {
		return svcHit{}, fmt.Errorf("tcp %s from %s: reply %q", dst, src, reply)
	}
	return parseHit(banner)
}

// udpFrom sends datagrams from src in netns ns to dst until an answer
// from dst itself arrives, and returns who answered.
func udpFrom(ns, src, dst string) (svcHit, error) {
	pc, err := nstest.ListenUDP(ns, src)
	if err != nil {
		return svcHit{}, err
	}
	defer pc.Close()
	to, err := net.ResolveUDPAddr("udp4", dst)
	if err != nil {
		return svcHit{}, err
	}
	buf := make([]byte, 2048)
	deadline := time.Now().Add(nstest.CheckTimeout)
	var last string
	for time.Now().Before(deadline) {
		if _, err := pc.WriteTo([]byte("ping"), to); err != nil {
			return svcHit{}, err
		}
		pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			continue
		}
		if from.String() != to.String() {
			last = fmt.Sprintf("an answer from %s, not %s", from, to)
			continue
		}
		banner, _, _ := strings.Cut(string(buf[:n]), "\n")
		return parseHit(banner)
	}
	if last == "" {
		last = "no answer"
	}
	return svcHit{}, fmt.Errorf("udp %s from %s: %s", dst, src, last)
}
