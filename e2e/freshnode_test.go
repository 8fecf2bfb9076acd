package e2e

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/internal/nstest"
	"github.com/netreconcile/netreconcile/internal/nsutil"
)

// The attacker's link to the node: its own address, the node side's, and
// the addresses it also sends from (forged: an unused address of the
// node's pod CIDR, and one of another node's).
const (
	freshAttacker = "192.168.250.2"
	freshNodeSide = "192.168.250.1"
)

var freshForged = []string{"10.244.1.99", "10.244.2.7"}

// freshLab is a newPodLab whose node has its namespace and uplink but no
// netreconcile state and no datapath, and an attacker namespace wired to
// it by a veth pair, routing the pod CIDR through the node.
type freshLab struct {
	*newPodLab
	attacker string
}

func newFreshLab(t *testing.T) *freshLab {
	l := newNewPodLab(t)
	// lab up applied the node (a, c, c2 and the datapath): destroy all of
	// it, so that only the lab's namespaces remain, and forget its state
	// and pins.
	l.destroy()
	oldPins := l.pins
	if left := pinsBelow(oldPins); len(left) > 0 {
		t.Fatalf("pins left after destroy: %v", left)
	}
	if err := os.RemoveAll(oldPins); err != nil {
		t.Fatalf("remove %s: %v", oldPins, err)
	}
	l.stateDir, l.pins = t.TempDir(), oldPins+"f"
	f := &freshLab{newPodLab: l, attacker: nstest.TempNetns(t, l.id+"x")}
	peer := nstest.UniqueName("fx")
	cmds := [][]string{
		{"-n", f.attacker, "link", "add", "fx0", "type", "veth", "peer", "name", peer, "netns", l.nodeNS},
		{"-n", l.nodeNS, "addr", "add", freshNodeSide + "/30", "dev", peer},
		{"-n", l.nodeNS, "link", "set", peer, "up"},
		{"-n", f.attacker, "addr", "add", freshAttacker + "/30", "dev", "fx0"},
		{"-n", f.attacker, "link", "set", "fx0", "up"},
		{"-n", f.attacker, "route", "add", "10.244.0.0/16", "via", freshNodeSide, "src", freshAttacker},
	}
	for _, src := range freshForged {
		cmds = append(cmds, []string{"-n", f.attacker, "addr", "add", src + "/32", "dev", "fx0"})
	}
	for _, c := range cmds {
		if out, errOut, code := Run(t, "ip", c...); code != 0 {
			t.Fatalf("ip %v: exit %d\n%s%s", c, code, out, errOut)
		}
	}
	// A node forwards before netreconcile comes: packets to a pod
	// address go wherever the node routes them as soon as it can.
	if err := nsutil.WriteSysctl(l.nodeNS, "net/ipv4/ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	if err := nstest.WaitLinkUp(f.attacker, "fx0", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	return f
}

// nodeArgs are the arguments of a node command on the lab's node.
func (l *newPodLab) nodeArgs(verb string) []string {
	return []string{verb, "-f", l.file, "--node", l.node, "--node-netns", l.nodeNS, "--state-dir", l.stateDir,
		"--bpffs", filepath.Join(l.pins, l.node)}
}

// destroy removes every object of the node that netreconcile made.
func (l *newPodLab) destroy() {
	if out, errOut, code := Run(l.t, l.bin, l.nodeArgs("destroy")...); code != 0 {
		l.t.Fatalf("destroy: exit %d\n%s%s", code, out, errOut)
	}
}

// TestFreshNodeIsolatedFromFirstPacket: on a node without netreconcile
// state or datapath (its pin directory does not exist: the datapath step
// creates the maps and the programs are verified in the background while
// the pods are made, reconcile/apply/datapath.go openMaps), one apply
// makes the datapath and all pods, among them pods that a policy isolates
// (allowing only pod a). An attacker namespace behind the node floods their
// addresses over TCP and UDP, from its own address and forged ones, from
// before the apply starts until after it ends: listeners bound in each new
// pod's namespace as soon as it exists never see a packet of it. After
// the apply, a reaches the isolated pods; the attacker reaches a (the
// route is real) but not them.
func TestFreshNodeIsolatedFromFirstPacket(t *testing.T) {
	l := newFreshLab(t)
	// A listener that comes up after its pod has its address cannot tell
	// whether something came in before: the node is then emptied again
	// (datapath and pins included) and applied afresh.
	for round := 1; ; round++ {
		late := l.floodedFreshApply()
		if len(late) == 0 || t.Failed() {
			break
		}
		if round == 6 {
			t.Fatalf("listeners came up after their pods had addresses in 6 rounds (last: %v)", late)
		}
		t.Logf("round %d: listeners of %v came up late; destroy and again", round, late)
		l.destroy()
		if left := pinsBelow(l.pins); len(left) > 0 {
			t.Fatalf("pins left after destroy: %v", left)
		}
		if err := os.RemoveAll(l.pins); err != nil {
			t.Fatal(err)
		}
		l.stateDir = t.TempDir()
	}
	l.controlAfter()
}

// controlAfter checks, after the apply, that a reaches every isolated pod
// over TCP and UDP, and that the attacker reaches a but none of them.
func (l *freshLab) controlAfter() {
	t := l.t
	aAddr := net.JoinHostPort(newPodA, "8080")
	nstest.StartEchoTCP(t, l.netns("a"), aAddr, "a")
	if got, err := nstest.TryTCP(l.attacker, aAddr, 2*time.Second); got != "a" {
		t.Errorf("attacker -> a (not isolated) after the apply: answered by %q (%v): the attacker's route is not real", got, err)
	}
	l.newPodLab.control(l.attacker, "attacker")
	if out, errOut, code := Run(t, l.bin, append(l.nodeArgs("plan"), "--detailed-exitcode")...); code != 0 {
		t.Errorf("plan after apply: exit %d\n%s%s", code, out, errOut)
	}
}

// floodedFreshApply applies the whole file to the empty node while the
// attacker floods the isolated pods, and checks that nothing of the flood
// came in. It returns the pods whose listeners came up too late to tell.
func (l *freshLab) floodedFreshApply() (late []string) {
	t := l.t
	pinDir := filepath.Join(l.pins, l.node)
	if _, err := os.Stat(pinDir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("pin dir %s before the apply: %v, want none (the node must have no datapath)", pinDir, err)
	}
	send := func(ctx context.Context, attempts *atomic.Int64, wg *sync.WaitGroup) {
		for _, b := range newPodB {
			flood(ctx, l.attacker, b.ip, attempts, wg)
			for _, src := range freshForged {
				floodFrom(ctx, l.attacker, src, b.ip, attempts, wg)
			}
		}
	}
	apply := func() {
		l.file = WriteFile(t, fmt.Sprintf("%s-%d.yaml", l.id, time.Now().UnixNano()), l.topo(true))
		start := time.Now()
		if out, errOut, code := Run(t, l.bin, l.nodeArgs("apply")...); code != 0 {
			t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
		}
		t.Logf("apply on the fresh node took %v", time.Since(start))
	}
	// The flood goes on for over a second after the apply: the node
	// reaches the bridge pod through a neighbour entry that failed while
	// the pod did not exist, and asks again only once a second (with
	// 500ms and no policy, the bridge pod saw none of the flood).
	counters := l.floodWhile(send, apply, 1500*time.Millisecond, "the attacker")
	return l.checkCounters(counters)
}

// checkCounters fails the test for anything an isolated pod accepted (no
// one else sends to them during the flood) and returns the late pods.
func (l *freshLab) checkCounters(counters map[string]*counter) (late []string) {
	for _, b := range newPodB {
		c := counters[b.name]
		if !c.early {
			late = append(late, b.name)
		}
		c.mu.Lock()
		for src, n := range c.from {
			l.t.Errorf("%s (%s) accepted %d connections or datagrams from %s", b.name, b.mode, n, src)
		}
		c.mu.Unlock()
	}
	return late
}

// floodFrom sends UDP datagrams to to:80 from address src of namespace ns
// in a tight loop until ctx ends (a forged source: the replies, if any,
// go elsewhere, so only datagrams tell).
func floodFrom(ctx context.Context, ns, src, to string, attempts *atomic.Int64, wg *sync.WaitGroup) {
	laddr := &net.UDPAddr{IP: net.ParseIP(src)}
	raddr := &net.UDPAddr{IP: net.ParseIP(to), Port: 80}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			var c *net.UDPConn
			_ = nsutil.Do(ns, func() (err error) {
				c, err = net.DialUDP("udp4", laddr, raddr)
				return err
			})
			if c != nil {
				for range 20 {
					_, _ = c.Write([]byte("forged"))
					attempts.Add(1)
				}
				c.Close()
			}
			time.Sleep(500 * time.Microsecond)
		}
	}()
}
