package nstest

import (
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/netreconcile/netreconcile/internal/nsutil"
)

// Addresses of the two test namespaces. They exist only inside them.
const (
	ipA = "192.0.2.1"
	ipB = "192.0.2.2"
	// ipNobody is on the veth's subnet but answers nothing: ARP for it
	// fails, so traffic to it is silently dropped.
	ipNobody = "192.0.2.99"
)

// pair returns two fresh namespaces joined by a veth, a (ipA) and b (ipB).
func pair(t *testing.T) (a, b string) {
	t.Helper()
	a, b = TempNetns(t, "nst-a"), TempNetns(t, "nst-b")
	nsA, err := nsutil.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer nsA.Close()
	nsB, err := nsutil.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer nsB.Close()
	hA, err := netlink.NewHandleAt(nsA)
	if err != nil {
		t.Fatal(err)
	}
	defer hA.Close()
	hB, err := netlink.NewHandleAt(nsB)
	if err != nil {
		t.Fatal(err)
	}
	defer hB.Close()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: "va"},
		PeerName:      "vb",
		PeerNamespace: netlink.NsFd(int(nsB)),
	}
	if err := hA.LinkAdd(veth); err != nil {
		t.Fatalf("create veth: %v", err)
	}
	for _, e := range []struct {
		h    *netlink.Handle
		link string
		addr string
	}{{hA, "va", ipA + "/24"}, {hB, "vb", ipB + "/24"}} {
		l, err := e.h.LinkByName(e.link)
		if err != nil {
			t.Fatal(err)
		}
		addr, err := netlink.ParseAddr(e.addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.h.AddrAdd(l, addr); err != nil {
			t.Fatalf("address %s: %v", e.link, err)
		}
		if err := e.h.LinkSetUp(l); err != nil {
			t.Fatalf("set %s up: %v", e.link, err)
		}
	}
	for _, e := range []struct{ ns, link string }{{a, "va"}, {b, "vb"}} {
		if err := WaitLinkUp(e.ns, e.link, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

func TestTempNetns(t *testing.T) {
	RequireRoot(t)
	var name string
	t.Run("create", func(t *testing.T) {
		name = TempNetns(t, "nst-tmp")
		if !nsutil.Exists(name) {
			t.Fatalf("netns %s does not exist", name)
		}
		// lo must be up: a listener on 127.0.0.1 answers inside.
		l := StartEchoTCP(t, name, "127.0.0.1:0", "")
		if got := CheckTCP(t, name, l.Addr().String()); got != Banner {
			t.Errorf("banner = %q, want %q", got, Banner)
		}
	})
	if _, err := os.Stat(nsutil.Path(name)); !os.IsNotExist(err) {
		t.Errorf("netns %s still exists after cleanup (stat: %v)", name, err)
	}
}

func TestEcho(t *testing.T) {
	a, b := pair(t)
	tcp := StartEchoTCP(t, b, ipB+":0", "pod-b")
	udp := StartEchoUDP(t, b, ipB+":0", "pod-b")
	if got := CheckTCP(t, a, tcp.Addr().String()); got != "pod-b" {
		t.Errorf("tcp banner = %q, want pod-b", got)
	}
	if got := CheckUDP(t, a, udp.LocalAddr().String()); got != "pod-b" {
		t.Errorf("udp banner = %q, want pod-b", got)
	}
	// Many round trips in parallel share one listener without mixing up
	// their echoes.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := TryTCP(a, tcp.Addr().String(), CheckTimeout); err != nil {
				t.Error(err)
			}
			if _, err := TryUDP(a, udp.LocalAddr().String(), CheckTimeout); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

func TestNegative(t *testing.T) {
	a, b := pair(t)
	// A port with nothing behind it: take one and free it again.
	l, err := ListenTCP(b, ipB+":0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	if _, err := TryTCP(a, closed, time.Second); !IsRefused(err) {
		t.Errorf("tcp to closed port: err = %v, want refused", err)
	}
	if _, err := TryUDP(a, closed, time.Second); !IsRefused(err) {
		t.Errorf("udp to closed port: err = %v, want refused", err)
	}
	nobody := net.JoinHostPort(ipNobody, "80")
	if _, err := TryTCP(a, nobody, 300*time.Millisecond); !IsTimeout(err) {
		t.Errorf("tcp to silent address: err = %v, want timeout", err)
	}
	if _, err := TryUDP(a, nobody, 300*time.Millisecond); !IsTimeout(err) {
		t.Errorf("udp to silent address: err = %v, want timeout", err)
	}
	// A socket lives in the namespace it was created in: b's loopback is
	// not a's.
	lo := StartEchoTCP(t, b, "127.0.0.1:0", "")
	CheckTCP(t, b, lo.Addr().String())
	if _, err := TryTCP(a, lo.Addr().String(), time.Second); !IsRefused(err) {
		t.Errorf("tcp to b's loopback from a: err = %v, want refused", err)
	}
	// The sink does not echo: a check against it reports a bad reply.
	sink := StartSink(t, b, ipB+":0")
	if _, err := TryTCP(a, sink.Addr().String(), time.Second); err == nil {
		t.Error("echo check against a sink succeeded")
	}
}

func TestTransfer(t *testing.T) {
	a, b := pair(t)
	sink := StartSink(t, b, ipB+":0")
	const n = 16 << 20
	got, d, err := Transfer(a, sink.Addr().String(), n)
	if err != nil {
		t.Fatal(err)
	}
	if got != n {
		t.Fatalf("sink counted %d bytes, want %d", got, n)
	}
	t.Logf("%d bytes in %v (%.0f Mbit/s)", n, d, float64(n)*8/d.Seconds()/1e6)
}

// TestThreadsRestored checks that no OS thread is left in a test
// namespace after the helpers ran, so that later code in the process
// (netlink without a handle, os.ReadFile of /proc/sys) still sees the
// original namespace.
func TestThreadsRestored(t *testing.T) {
	want := threadNetns(t)
	a, b := pair(t)
	tcp := StartEchoTCP(t, b, ipB+":0", "")
	udp := StartEchoUDP(t, b, ipB+":0", "")
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := TryTCP(a, tcp.Addr().String(), CheckTimeout); err != nil {
				t.Error(err)
			}
			if _, err := TryUDP(a, udp.LocalAddr().String(), CheckTimeout); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// Visit many threads: each locked goroutine pins a different one.
	var mu sync.Mutex
	release := make(chan struct{})
	for range 64 {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			got := threadNetns(t)
			if got != want {
				mu.Lock()
				t.Errorf("a thread is in netns %s, want %s", got, want)
				mu.Unlock()
			}
			<-release
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
}

func threadNetns(t *testing.T) string {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Error(err)
	}
	return s
}
