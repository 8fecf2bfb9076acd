package datapath

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/internal/nsutil"
)

// TestServices sends real TCP and UDP traffic through clusterIPs in every
// attachment mode: load balancing over both backends with port !=
// targetPort, ClientIP affinity, hairpin, refusal without backends, and
// plain pod-to-pod traffic left alone.
func TestServices(t *testing.T) {
	for _, v := range []struct {
		mode     string
		fastPath bool
	}{{"veth", true}, {"veth", false}, {"bridge", true}, {"bridge", false}, {"macvlan", false}} {
		name := v.mode
		if v.fastPath {
			name += "/fastpath"
		}
		t.Run(name, func(t *testing.T) {
			dir := tempPinDir(t)
			w := newWorld(t, v.mode, dir, 3)
			defer w.dump()
			p1, p2, client := w.pods[0], w.pods[1], w.pods[2]
			d := w.dp
			must(t, d.SetConfig(Config{FastPath: v.fastPath, HairpinIP: DefaultHairpinIP}), "config")

			tcp := ServiceKey{IP: clusterIP, Port: 80, Proto: ProtoTCP}
			udp := ServiceKey{IP: clusterIP, Port: 53, Proto: ProtoUDP}
			must(t, d.SetService(Service{Key: tcp, Backends: backendsOf(w.pods[:2], tcpPort)}), "set tcp service")
			must(t, d.SetService(Service{Key: udp, Backends: backendsOf(w.pods[:2], udpPort)}), "set udp service")

			t.Run("tcp uses both backends", func(t *testing.T) {
				seen := map[string]int{}
				for range 40 {
					c, backend, seenAs, err := greet(client, svcAddr(clusterIP, 80))
					if err != nil {
						t.Fatal(err)
					}
					c.Close()
					seen[backend]++
					if seenAs != client.ip.String() {
						t.Errorf("backend saw the client as %s, want %s", seenAs, client.ip)
					}
				}
				if seen[p1.name] == 0 || seen[p2.name] == 0 || len(seen) != 2 {
					t.Errorf("backends used: %v, want both %s and %s", seen, p1.name, p2.name)
				}
			})

			t.Run("udp uses both backends", func(t *testing.T) {
				seen := map[string]int{}
				for range 40 {
					backend, _, err := askUDP(client, svcAddr(clusterIP, 53))
					if err != nil {
						t.Fatal(err)
					}
					seen[backend]++
				}
				if seen[p1.name] == 0 || seen[p2.name] == 0 || len(seen) != 2 {
					t.Errorf("backends used: %v, want both", seen)
				}
			})

			t.Run("hash selection uses both backends", func(t *testing.T) {
				key := ServiceKey{IP: netip.MustParseAddr("10.96.0.14"), Port: 80, Proto: ProtoTCP}
				must(t, d.SetService(Service{Key: key, Backends: backendsOf(w.pods[:2], tcpPort), Hash: true}), "set")
				seen := map[string]int{}
				for range 40 {
					c, backend, _, err := greet(client, svcAddr(key.IP, 80))
					if err != nil {
						t.Fatal(err)
					}
					c.Close()
					seen[backend]++
				}
				if len(seen) != 2 {
					t.Errorf("backends used: %v, want both", seen)
				}
			})

			t.Run("udp flow leaves a removed backend", func(t *testing.T) {
				key := ServiceKey{IP: netip.MustParseAddr("10.96.0.15"), Port: 53, Proto: ProtoUDP}
				must(t, d.SetService(Service{Key: key, Backends: backendsOf(w.pods[:2], udpPort)}), "set")
				c, err := dial(client, "udp4", svcAddr(key.IP, 53), time.Second)
				must(t, err, "dial")
				defer c.Close()
				ask := func() string {
					c.SetDeadline(time.Now().Add(2 * time.Second))
					_, err := c.Write([]byte("x"))
					must(t, err, "write")
					buf := make([]byte, 100)
					n, err := c.Read(buf)
					must(t, err, "read")
					return strings.Fields(string(buf[:n]))[0]
				}
				first := ask()
				for range 5 {
					if b := ask(); b != first {
						t.Fatalf("udp flow moved from %s to %s without a change", first, b)
					}
				}
				var keep *pod
				for _, p := range w.pods[:2] {
					if p.name != first {
						keep = p
					}
				}
				must(t, d.SetService(Service{Key: key, Backends: backendsOf([]*pod{keep}, udpPort)}), "remove backend")
				if b := ask(); b != keep.name {
					t.Errorf("after removing %s the flow went to %s, want %s", first, b, keep.name)
				}
			})

			t.Run("client ip affinity", func(t *testing.T) {
				key := ServiceKey{IP: netip.MustParseAddr("10.96.0.11"), Port: 80, Proto: ProtoTCP}
				must(t, d.SetService(Service{Key: key, Backends: backendsOf(w.pods[:2], tcpPort), Affinity: true}), "set")
				seen := map[string]int{}
				for range 20 {
					c, backend, _, err := greet(client, svcAddr(key.IP, 80))
					if err != nil {
						t.Fatal(err)
					}
					c.Close()
					seen[backend]++
				}
				if len(seen) != 1 {
					t.Errorf("affinity: backends used %v, want one", seen)
				}
			})

			t.Run("hairpin", func(t *testing.T) {
				tk := ServiceKey{IP: netip.MustParseAddr("10.96.0.12"), Port: 80, Proto: ProtoTCP}
				uk := ServiceKey{IP: tk.IP, Port: 53, Proto: ProtoUDP}
				must(t, d.SetService(Service{Key: tk, Backends: backendsOf(w.pods[:1], tcpPort)}), "set")
				must(t, d.SetService(Service{Key: uk, Backends: backendsOf(w.pods[:1], udpPort)}), "set")
				c, backend, seenAs, err := greet(p1, svcAddr(tk.IP, 80))
				if err != nil {
					t.Fatalf("pod reaching itself through its service: %v", err)
				}
				defer c.Close()
				if backend != p1.name || seenAs != DefaultHairpinIP.String() {
					t.Errorf("hairpin: served by %s seeing %s, want %s seeing %s", backend, seenAs, p1.name, DefaultHairpinIP)
				}
				echo(t, c, p1.name)
				backend, seenAs, err = askUDP(p1, svcAddr(uk.IP, 53))
				if err != nil || backend != p1.name || seenAs != DefaultHairpinIP.String() {
					t.Errorf("udp hairpin: %s seeing %s, %v", backend, seenAs, err)
				}
			})

			t.Run("no backends refuses at once", func(t *testing.T) {
				tk := ServiceKey{IP: netip.MustParseAddr("10.96.0.13"), Port: 80, Proto: ProtoTCP}
				uk := ServiceKey{IP: tk.IP, Port: 53, Proto: ProtoUDP}
				must(t, d.SetService(Service{Key: tk}), "set")
				must(t, d.SetService(Service{Key: uk}), "set")
				start := time.Now()
				c, err := dial(client, "tcp4", svcAddr(tk.IP, 80), 5*time.Second)
				if err == nil {
					c.Close()
				}
				if !errors.Is(err, syscall.ECONNREFUSED) || time.Since(start) > time.Second {
					t.Errorf("tcp to a service without backends: %v after %v, want connection refused at once", err, time.Since(start))
				}
				start = time.Now()
				_, _, err = askUDP(client, svcAddr(uk.IP, 53))
				if !errors.Is(err, syscall.ECONNREFUSED) || time.Since(start) > time.Second {
					t.Errorf("udp to a service without backends: %v after %v, want connection refused at once", err, time.Since(start))
				}
				// Once it has a backend, it serves.
				must(t, d.SetService(Service{Key: tk, Backends: backendsOf(w.pods[1:2], tcpPort)}), "set")
				c, backend, _, err := greet(client, svcAddr(tk.IP, 80))
				if err != nil || backend != p2.name {
					t.Fatalf("after adding a backend: %s, %v", backend, err)
				}
				c.Close()
			})

			t.Run("pod to pod untouched", func(t *testing.T) {
				c, backend, seenAs, err := greet(client, svcAddr(p1.ip, tcpPort))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if backend != p1.name || seenAs != client.ip.String() {
					t.Errorf("direct: %s seeing %s", backend, seenAs)
				}
				echo(t, c, p1.name)
			})

			// Last: p2 loses our programs, as a backend on another node
			// would not have them. Its replies reach the client untranslated
			// and the client's entering hook (nr_to_pod, nr_pod_ingress)
			// must give them the service address back.
			t.Run("backend outside the datapath", func(t *testing.T) {
				ns, ifname := w.hook(p2)
				for _, dir := range w.directions() {
					name, err := AttachmentName(ns, ifname, dir)
					must(t, err, "name")
					must(t, d.Detach(name), "detach")
				}
				must(t, d.DeleteEndpoint(p2.ip), "delete endpoint")
				key := ServiceKey{IP: netip.MustParseAddr("10.96.0.16"), Port: 80, Proto: ProtoTCP}
				must(t, d.SetService(Service{Key: key, Backends: backendsOf([]*pod{p2}, tcpPort)}), "set")
				c, backend, seenAs, err := greet(client, svcAddr(key.IP, 80))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if backend != p2.name || seenAs != client.ip.String() {
					t.Errorf("served by %s seeing %s", backend, seenAs)
				}
				echo(t, c, p2.name)
				ukey := ServiceKey{IP: key.IP, Port: 53, Proto: ProtoUDP}
				must(t, d.SetService(Service{Key: ukey, Backends: backendsOf([]*pod{p2}, udpPort)}), "set")
				if backend, _, err := askUDP(client, svcAddr(key.IP, 53)); err != nil || backend != p2.name {
					t.Errorf("udp: %s %v", backend, err)
				}
			})

			t.Run("conntrack records connections", func(t *testing.T) {
				conns, err := d.Conntrack()
				if err != nil {
					t.Fatal(err)
				}
				var hairpin bool
				for _, c := range conns {
					hairpin = hairpin || c.Hairpin
				}
				if len(conns) == 0 || !hairpin {
					t.Errorf("conntrack: %d entries, hairpin seen %v", len(conns), hairpin)
				}
			})
		})
	}
}

// echo checks that c (greeted already) still carries data to backend.
func echo(t *testing.T, c interface {
	Write([]byte) (int, error)
	Read([]byte) (int, error)
	SetDeadline(time.Time) error
}, backend string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	defer c.SetDeadline(time.Time{})
	msg := "ping-" + strconv.Itoa(int(time.Now().UnixNano()%100000))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		t.Fatalf("write on established connection: %v", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read on established connection: %v", err)
	}
	if want := backend + " " + msg + "\n"; line != want {
		t.Fatalf("established connection answered %q, want %q", line, want)
	}
}

// TestFastPath shows that with the fast path packets between pods of the
// node skip the node's IP forwarding, and without it they are routed.
func TestFastPath(t *testing.T) {
	for _, mode := range []string{"veth", "bridge"} {
		t.Run(mode, func(t *testing.T) {
			dir := tempPinDir(t)
			w := newWorld(t, mode, dir, 2)
			defer w.dump()
			p1, client := w.pods[0], w.pods[1]
			key := ServiceKey{IP: clusterIP, Port: 80, Proto: ProtoTCP}
			must(t, w.dp.SetService(Service{Key: key, Backends: backendsOf(w.pods[:1], tcpPort)}), "set")

			forwarded := func(fast bool) int {
				cfg, err := w.dp.Config()
				must(t, err, "config")
				cfg.FastPath = fast
				must(t, w.dp.SetConfig(cfg), "set config")
				before := ipStat(t, w.node, "ForwDatagrams")
				for _, addr := range []string{svcAddr(clusterIP, 80), svcAddr(p1.ip, tcpPort)} {
					c, backend, _, err := greet(client, addr)
					if err != nil || backend != p1.name {
						t.Fatalf("fast=%v %s: %s %v", fast, addr, backend, err)
					}
					for range 5 {
						echo(t, c, p1.name)
					}
					c.Close()
				}
				return ipStat(t, w.node, "ForwDatagrams") - before
			}
			if n := forwarded(true); n > 2 {
				t.Errorf("fast path on: node forwarded %d datagrams, want ~0", n)
			}
			if n := forwarded(false); n < 10 {
				t.Errorf("fast path off: node forwarded %d datagrams, want the whole exchange", n)
			}
		})
	}
}

// ipStat reads a counter of the Ip: lines of /proc/net/snmp in ns.
func ipStat(t *testing.T, ns, field string) int {
	t.Helper()
	var val int
	err := nsutil.Do(ns, func() error {
		b, err := os.ReadFile("/proc/thread-self/net/snmp") // /proc/net follows the main thread's namespace
		if err != nil {
			return err
		}
		var names []string
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, "Ip: ") {
				continue
			}
			f := strings.Fields(line)[1:]
			if names == nil {
				names = f
				continue
			}
			for i, n := range names {
				if n == field {
					val, err = strconv.Atoi(f[i])
					return err
				}
			}
		}
		return fmt.Errorf("no %s in /proc/net/snmp", field)
	})
	must(t, err, "read %s", field)
	return val
}
