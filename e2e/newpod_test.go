package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/netreconcile/netreconcile/internal/nstest"
	"github.com/netreconcile/netreconcile/internal/nsutil"
)

// newPodLab is one node with pods a (allowed) and c, c2 (denied) in every
// file, and a policy that isolates the pods labelled pod=b, allowing only
// a; the second file adds three such pods, one per mode.
type newPodLab struct {
	t                  *testing.T
	bin, id, stateDir  string
	pins, node, nodeNS string
	file               string
}

// newPodB are the pods the second file adds: mode and address.
var newPodB = []struct{ name, mode, ip string }{
	{"bveth", "veth", "10.244.1.20"}, {"bbridge", "bridge", "10.244.1.21"}, {"bmacvlan", "macvlan", "10.244.1.22"},
}

// The denied flooders: a macvlan pod, whose packets reach the node's
// routing (or, to a macvlan pod, the segment) without a program judging
// the destination, and a veth pod, whose own program judges the ingress
// of local destinations it delivers to directly.
var newPodC = []struct{ name, mode, ip string }{{"c", "macvlan", "10.244.1.30"}, {"c2", "veth", "10.244.1.31"}}

const newPodA = "10.244.1.10"

func (l *newPodLab) netns(pod string) string { return l.id + "-" + pod }

func (l *newPodLab) topo(withB bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16}
nodes:
  - {name: %s, address: 172.31.1.2/24, uplink: eth0, podCIDR: 10.244.1.0/24}
pods:
  - {name: a, namespace: t, node: %s, ip: %s, mode: veth, netns: %s, labels: {pod: a}}
`, l.node, l.node, newPodA, l.netns("a"))
	pods := newPodC
	if withB {
		pods = append(pods, newPodB...)
	}
	for _, p := range pods {
		label := p.name
		if strings.HasPrefix(p.name, "b") {
			label = "b"
		}
		fmt.Fprintf(&b, "  - {name: %s, namespace: t, node: %s, ip: %s, mode: %s, netns: %s, labels: {pod: %s}}\n",
			p.name, l.node, p.ip, p.mode, l.netns(p.name), label)
	}
	b.WriteString(`policies:
  - name: b-from-a
    namespace: t
    spec:
      podSelector: {matchLabels: {pod: b}}
      policyTypes: [Ingress]
      ingress: [{from: [{podSelector: {matchLabels: {pod: a}}}]}]
`)
	return b.String()
}

func newNewPodLab(t *testing.T) *newPodLab {
	nstest.RequireRoot(t)
	l := &newPodLab{t: t, bin: BuildBinary(t), id: UniqueName("npd"), stateDir: t.TempDir()}
	l.node = l.id + "n"
	l.nodeNS = "nrlab-" + l.node
	l.pins = "/sys/fs/bpf/netreconcile-test-" + l.id
	l.file = WriteFile(t, l.id+"-1.yaml", l.topo(false))
	t.Cleanup(func() {
		if t.Failed() {
			DumpState(t, l.nodeNS)
		}
		if _, errOut, code := Run(t, l.bin, "lab", "down", "-f", l.file, "--state-dir", l.stateDir, "--bpffs", l.pins); code != 0 {
			t.Errorf("lab down: exit %d\n%s", code, errOut)
		}
		for _, p := range append(append(newPodC, newPodB...), struct{ name, mode, ip string }{name: "a"}) {
			_ = exec.Command("ip", "netns", "del", l.netns(p.name)).Run()
		}
		if left := pinsBelow(l.pins); len(left) > 0 {
			t.Errorf("pins left after lab down: %v", left)
		}
		_ = os.RemoveAll(l.pins)
	})
	if out, errOut, code := Run(t, l.bin, "lab", "up", "-f", l.file, "--state-dir", l.stateDir, "--bpffs", l.pins); code != 0 {
		t.Fatalf("lab up: exit %d\n%s%s", code, out, errOut)
	}
	return l
}

// counter counts what a pod's listeners accepted, by source address.
type counter struct {
	mu   sync.Mutex
	from map[string]int
	// early is false when the listeners came up after the pod had its
	// address: the test could then miss what came in before.
	early bool
}

func (c *counter) add(addr net.Addr) {
	ip := addr.String()
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.from[ip]++
}

func (c *counter) count(ip string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.from[ip]
}

// hasAddr reports whether namespace ns holds address ip, read through
// netlink: asked right after the listeners are up, it must answer in a
// fraction of the time an apply takes to give a pod its address (running
// ip took several milliseconds, long enough to call most rounds late).
func hasAddr(ns, ip string) bool {
	h, err := nsutil.Handle(ns)
	if err != nil {
		return true // cannot tell: late
	}
	defer h.Close()
	addrs, err := h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return true
	}
	for _, a := range addrs {
		if a.IP.String() == ip {
			return true
		}
	}
	return false
}

// listenWhenCreated waits for namespace ns to appear, then listens on
// 0.0.0.0:80, TCP and UDP, in it and counts what arrives, until ctx ends.
func listenWhenCreated(ctx context.Context, ns, ip string, c *counter, ready chan<- error) {
	var tl net.Listener
	var ul net.PacketConn
	var err error
	for {
		if ctx.Err() != nil {
			ready <- fmt.Errorf("namespace %s never appeared", ns)
			return
		}
		if _, statErr := os.Stat(filepath.Join("/var/run/netns", ns)); statErr == nil {
			// (the file exists a moment before the namespace is mounted on it)
			if tl, err = nstest.ListenTCP(ns, "0.0.0.0:80"); err == nil {
				break
			}
		}
		time.Sleep(200 * time.Microsecond)
	}
	if ul, err = nstest.ListenUDP(ns, "0.0.0.0:80"); err != nil {
		tl.Close()
		ready <- err
		return
	}
	c.early = !hasAddr(ns, ip)
	go func() {
		<-ctx.Done()
		tl.Close()
		ul.Close()
	}()
	go func() {
		for {
			conn, err := tl.Accept()
			if err != nil {
				return
			}
			c.add(conn.RemoteAddr())
			conn.Close()
		}
	}()
	go func() {
		buf := make([]byte, 2048)
		for {
			_, from, err := ul.ReadFrom(buf)
			if err != nil {
				return
			}
			c.add(from)
		}
	}()
	ready <- nil
}

// flood connects over TCP and sends UDP datagrams from namespace from to
// to:80 in a tight loop until ctx ends, counting the attempts.
func flood(ctx context.Context, from, to string, attempts *atomic.Int64, wg *sync.WaitGroup) {
	addr := net.JoinHostPort(to, "80")
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if c, err := nstest.DialTCP(from, addr, 20*time.Millisecond); err == nil {
				c.Close()
			}
			attempts.Add(1)
			time.Sleep(200 * time.Microsecond)
		}
	}()
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			// A new socket each time: a connected one stops at the first
			// ICMP error it is told about.
			if c, err := nstest.DialUDP(from, addr, 0); err == nil {
				for range 20 {
					_, _ = c.Write([]byte("flood"))
					attempts.Add(1)
				}
				c.Close()
			}
			time.Sleep(500 * time.Microsecond)
		}
	}()
}

// TestNewPodIsolatedFromFirstPacket: pods that a policy isolates (allowing
// only pod a) are added, one per mode, while two denied pods flood their
// addresses with TCP connections and UDP datagrams from before the apply
// starts until after it ends. Listeners bound in each new pod's namespace
// as soon as it exists never see the denied pods; pod a reaches every new
// pod once the apply is done.
func TestNewPodIsolatedFromFirstPacket(t *testing.T) {
	l := newNewPodLab(t)
	nstest.StartEchoTCP(t, l.netns("a"), net.JoinHostPort(newPodA, "8080"), "a")
	for _, c := range newPodC {
		if got := nstest.CheckTCP(t, l.netns(c.name), net.JoinHostPort(newPodA, "8080")); got != "a" {
			t.Fatalf("%s -> a before the apply: answered by %q: the flood would not be real", c.name, got)
		}
	}
	args := []string{"apply", "-f", "", "--node", l.node, "--node-netns", l.nodeNS, "--state-dir", l.stateDir,
		"--bpffs", filepath.Join(l.pins, l.node)}
	// A listener that comes up after its pod has its address cannot tell
	// whether something came in before: the pods are then removed and
	// added again (their programs take tens of milliseconds to attach
	// before the address as tcx links, a millisecond as clsact filters:
	// so a round may not tell, and a few are tried).
	for round := 1; ; round++ {
		late := l.floodedApply(args)
		if len(late) == 0 || t.Failed() {
			break
		}
		if round == 6 {
			t.Fatalf("listeners came up after their pods had addresses in 6 rounds (last: %v)", late)
		}
		t.Logf("round %d: listeners of %v came up late; again", round, late)
		l.file = WriteFile(t, fmt.Sprintf("%s-%d.yaml", l.id, time.Now().UnixNano()), l.topo(false))
		args[2] = l.file
		if out, errOut, code := Run(t, l.bin, args...); code != 0 {
			t.Fatalf("apply without the new pods: exit %d\n%s%s", code, out, errOut)
		}
	}

	// The control: a reaches every new pod, over TCP and UDP; c does not.
	l.control(l.netns("c"), "c")
	args[0] = "plan"
	if out, errOut, code := Run(t, l.bin, append(args, "--detailed-exitcode")...); code != 0 {
		t.Errorf("plan after apply: exit %d\n%s%s", code, out, errOut)
	}
}

// control checks, after the apply, that a reaches every new pod over TCP
// and UDP, and that the namespace denied (named who) reaches none of
// them.
func (l *newPodLab) control(denied, who string) {
	t := l.t
	for _, b := range newPodB {
		addr := net.JoinHostPort(b.ip, "8080")
		nstest.StartEchoTCP(t, l.netns(b.name), addr, b.name)
		nstest.StartEchoUDP(t, l.netns(b.name), addr, b.name)
		if got := nstest.CheckTCP(t, l.netns("a"), addr); got != b.name {
			t.Errorf("a -> %s over TCP: answered by %q", b.name, got)
		}
		if got := nstest.CheckUDP(t, l.netns("a"), addr); got != b.name {
			t.Errorf("a -> %s over UDP: answered by %q", b.name, got)
		}
		if _, err := nstest.TryTCP(denied, addr, polTimeout); !nstest.IsTimeout(err) {
			t.Errorf("%s -> %s over TCP after the apply: %v, want dropped", who, b.name, err)
		}
		if _, err := nstest.TryUDP(denied, addr, polTimeout); !nstest.IsTimeout(err) {
			t.Errorf("%s -> %s over UDP after the apply: %v, want dropped", who, b.name, err)
		}
	}
}

// floodedApply applies the file with the new pods while the denied pods
// flood them, and checks that nothing of the flood came in. It returns
// the new pods whose listeners came up too late to tell.
func (l *newPodLab) floodedApply(args []string) (late []string) {
	t := l.t
	send := func(ctx context.Context, attempts *atomic.Int64, wg *sync.WaitGroup) {
		for _, c := range newPodC {
			for _, b := range newPodB {
				flood(ctx, l.netns(c.name), b.ip, attempts, wg)
			}
		}
	}
	apply := func() {
		l.file = WriteFile(t, fmt.Sprintf("%s-%d.yaml", l.id, time.Now().UnixNano()), l.topo(true))
		args[2] = l.file
		if out, errOut, code := Run(t, l.bin, args...); code != 0 {
			t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
		}
	}
	counters := l.floodWhile(send, apply, 500*time.Millisecond, "the denied pods")
	for _, b := range newPodB {
		c := counters[b.name]
		if !c.early {
			late = append(late, b.name)
		}
		for _, from := range newPodC {
			if n := c.count(from.ip); n != 0 {
				t.Errorf("%s (%s) accepted %d connections or datagrams from denied pod %s", b.name, b.mode, n, from.name)
			}
		}
	}
	return late
}

// floodWhile listens in the new pods' namespaces as soon as they exist,
// starts the floods (send), and runs apply while they go on, then for
// linger after it; it checks that the flood ran and returns what each new
// pod received.
func (l *newPodLab) floodWhile(send func(context.Context, *atomic.Int64, *sync.WaitGroup), apply func(),
	linger time.Duration, who string) map[string]*counter {
	t := l.t
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	counters := map[string]*counter{}
	ready := make(chan error, len(newPodB))
	for _, b := range newPodB {
		c := &counter{from: map[string]int{}}
		counters[b.name] = c
		go listenWhenCreated(ctx, l.netns(b.name), b.ip, c, ready)
	}
	var attempts atomic.Int64
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	send(ctx, &attempts, &wg)
	time.Sleep(100 * time.Millisecond) // the flood is on before the apply starts
	before := attempts.Load()
	apply()
	for range newPodB {
		if err := <-ready; err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(linger) // and goes on after it
	during := attempts.Load() - before
	stop()
	wg.Wait()
	if before == 0 || during == 0 {
		t.Fatalf("the flood did not run (%d attempts before the apply, %d during and after)", before, during)
	}
	t.Logf("%d connection attempts and datagrams from %s during and after the apply", during, who)
	return counters
}
