package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/internal/nstest"
	"github.com/netreconcile/netreconcile/internal/nsutil"
)

// Ownership under stress: netreconcile never changes what it does not
// own. A lab node is filled with foreign objects of every kind before
// netreconcile runs on it; then apply (with services, so the eBPF datapath
// is in use), applies killed after k changes and their recoveries, a
// destroy killed half-way and its recovery, the watch daemon (with drift
// to repair and foreign churn around it) and destroy all run, and after
// each the foreign objects must be exactly as they were.

// foreignLab is the foreign side of the test: what was made, to compare.
type foreignLab struct {
	t        *testing.T
	l        *svcLab
	ns       string   // node a's namespace
	links    []string // foreign links in ns (the lab's eth0 and lo included)
	netns    []string // foreign named namespaces
	pinDir   string   // foreign pin directory
	ghostPin string   // a pin of a node that is not in the file, below the lab's --bpffs root
	ghostRec string   // records of that node in the lab's state directory
}

// TestOwnershipUnderStress is described above.
func TestOwnershipUnderStress(t *testing.T) {
	l := newSvcLab(t, "ow")
	l.nodes = []svcNode{{"a", "172.31.1.2/24", "10.244.1.0/24"}, {"c", "172.31.2.2/24", "10.244.3.0/24"}}
	// Node c (another subnet: node a gets a VXLAN device) has a pod; node
	// a has nothing of netreconcile's but what lab up makes.
	l.pods = []svcPod{{name: "c1", node: "c", ip: "10.244.3.10", mode: "veth", labels: map[string]string{"app": "web"}}}
	l.up()
	f := makeForeign(t, l)
	want := f.state()
	// The snapshot sees what it must guard (a vacuous one would pass).
	for _, s := range []string{"vxlan id 42 ", "dst 172.31.9.9 self permanent", "alias netreconcile/" + l.node("c") + "/pod/t/x",
		"10.97.6.0/24 dev fveth0 table 100 proto 154", "blackhole 10.97.5.0/24", "10.98.0.5 lladdr 02:00:00:00:00:05 PERMANENT",
		"10.98.0.6 proxy", "tcx TCXIngress program", "tcx TCXEgress program", "name foreign tag", "/map map ", "{1=42}", "ghost/nr_config map ",
		"from 10.97.0.0/16 lookup 100", "fpod1@", `"pod/t/x\n"`} {
		if !strings.Contains(want, s) {
			t.Fatalf("the snapshot of foreign objects lacks %q:\n%s", s, want)
		}
	}

	// The topologies of node a: veth, bridge and macvlan pods, a service
	// with backends here and on node c.
	web := map[string]string{"app": "web"}
	ports := []string{"{name: http, port: 80, targetPort: 8080}", "{name: dns, port: 53, targetPort: 5353, protocol: UDP}"}
	first := append(append([]svcPod(nil), l.pods...),
		svcPod{name: "a1", node: "a", ip: "10.244.1.10", mode: "veth", labels: web},
		svcPod{name: "a2", node: "a", ip: "10.244.1.20", mode: "bridge", labels: web},
		svcPod{name: "a3", node: "a", ip: "10.244.1.30", mode: "macvlan"},
	)
	second := append(append([]svcPod(nil), first...),
		svcPod{name: "a4", node: "a", ip: "10.244.1.11", mode: "veth", labels: web},
		svcPod{name: "a5", node: "a", ip: "10.244.1.21", mode: "bridge"},
	)
	t.Cleanup(func() {
		for _, p := range second {
			_ = exec.Command("ip", "netns", "del", l.netns(p.name)).Run()
		}
	})
	use := func(pods []svcPod, services []svcService) string {
		l.pods, l.services = pods, services
		return l.write()
	}
	firstFile := use(first, []svcService{{name: "web", ip: "10.96.0.10", selector: web, ports: ports}})
	secondFile := use(second, []svcService{
		{name: "web", ip: "10.96.0.10", selector: web, ports: ports[:1]},
		{name: "all", ip: "10.96.0.11", selector: map[string]string{"app": "web"}, ports: []string{"{port: 8080}"}},
	})
	at := func(file string, args ...string) []string {
		l.file = file
		return l.nodeArgs("a", args...)
	}
	check := func(when string) {
		t.Helper()
		if got := f.state(); got != want {
			t.Fatalf("%s: foreign objects changed:\n%s", when, lineDiff(want, got))
		}
	}
	mustConverge := func(when, file string) {
		t.Helper()
		if out, errOut, code := Run(t, l.bin, at(file, "apply")...); code != 0 {
			t.Fatalf("%s: apply: exit %d\n%s%s", when, code, out, errOut)
		}
		if out, errOut, code := Run(t, l.bin, at(file, "plan", "--detailed-exitcode")...); code != 0 {
			t.Fatalf("%s: plan after apply: exit %d\n%s%s", when, code, out, errOut)
		}
		check(when)
	}
	crash := func(when string, k int, args []string) {
		t.Helper()
		cmd := exec.Command(l.bin, args...)
		cmd.Env = append(os.Environ(), "NETRECONCILE_CRASH_AFTER="+strconv.Itoa(k))
		out, _ := cmd.CombinedOutput()
		if ws := cmd.ProcessState; ws == nil || ws.ExitCode() != -1 {
			t.Fatalf("%s: not killed after %d changes (%v)\n%s", when, k, ws, out)
		}
		t.Logf("$ NETRECONCILE_CRASH_AFTER=%d netreconcile %s  # killed", k, strings.Join(args, " "))
		check(when)
	}

	// apply
	mustConverge("apply", firstFile)
	for _, p := range []string{"a1", "a2", "c1"} {
		l.serve(l.pod(p))
	}
	if h, err := tcpHit(l.netns("a3"), "10.96.0.10:80"); err != nil {
		t.Errorf("service from the macvlan pod beside the foreign objects: %v, %v", h, err)
	}

	// applies killed after k changes, each recovered by the next apply
	file, other := secondFile, firstFile
	for i, frac := range []float64{0, 0.5, 1} {
		n := countChanges(t, mustOut(t, l.bin, at(file, "plan")...))
		if n < 4 {
			t.Fatalf("plan to %s: only %d changes", filepath.Base(file), n)
		}
		k := 1 + int(frac*float64(n-2)) // 1 .. n-1
		crash(fmt.Sprintf("apply %d killed after %d of %d changes", i, k, n), k, at(file, "apply"))
		mustConverge(fmt.Sprintf("recovery %d", i), file)
		file, other = other, file
	}

	// destroy killed half-way, then recovered by apply
	crash("destroy killed", 3, at(file, "destroy"))
	mustConverge("apply after a killed destroy", file)

	// watch: converges at start, repairs drift, lets foreign churn be
	l.file = secondFile
	d := startBriefWatch(t, l.bin, at(secondFile, "watch", "--metrics-addr", "")...)
	host := nodeLinkOf(t, f.ns, "pod/t/a4")
	ip(t, f.ns, "route", "del", "10.244.1.11/32", "dev", host)
	ip(t, f.ns, "link", "add", "fchurn0", "type", "veth", "peer", "name", "fchurn1")
	ip(t, f.ns, "link", "set", "fchurn0", "up")
	ip(t, f.ns, "route", "add", "10.97.9.0/24", "dev", "fchurn0", "proto", "static")
	ip(t, f.ns, "route", "add", "10.244.1.12/32", "dev", "fchurn0", "proto", "static")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(ip(t, f.ns, "route", "show", "10.244.1.11/32"), "proto 154") {
		if time.Now().After(deadline) {
			t.Fatalf("watch did not repair the deleted route\n%s", d.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // let the passes the churn triggered run
	if code := d.stop(); code != 0 {
		t.Errorf("watch exited %d on SIGTERM\n%s", code, d.logs())
	}
	for _, r := range []string{"10.97.9.0/24", "10.244.1.12/32"} {
		if !strings.Contains(ip(t, f.ns, "route", "show", r), "fchurn0") {
			t.Errorf("foreign route %s made while watch ran was removed", r)
		}
	}
	ip(t, f.ns, "link", "del", "fchurn0")
	check("watch")

	// destroy
	out, errOut, code := Run(t, l.bin, at(secondFile, "destroy")...)
	if code != 0 {
		t.Fatalf("destroy: exit %d\n%s%s", code, out, errOut)
	}
	check("destroy")
	if links := ip(t, f.ns, "-d", "link", "show"); strings.Contains(links, "netreconcile/"+l.node("a")+"/") {
		t.Errorf("links of node a left after destroy:\n%s", links)
	}
	if r := strings.TrimSpace(ip(t, f.ns, "route", "show", "proto", "154")); r != "" {
		t.Errorf("routes of netreconcile left after destroy:\n%s", r)
	}
	if _, err := os.Stat(l.pinDir("a")); !os.IsNotExist(err) {
		t.Errorf("pin directory of node a after destroy: %v (%v)", err, pinsBelow(l.pinDir("a")))
	}
	// and lab down (registered by up) removes the rest; the foreign pins
	// below the lab's root go first (the cleanup below).
	l.file = firstFile
}

// mustOut is Run returning standard output, failing the test on a non-zero
// exit.
func mustOut(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, errOut, code := Run(t, bin, args...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	return out
}

// nodeLinkOf names the link of node namespace ns marked for owner.
func nodeLinkOf(t *testing.T, ns, owner string) string {
	t.Helper()
	for _, line := range strings.Split(ip(t, ns, "-o", "-d", "link", "show"), "\n") {
		if strings.Contains(line, "/"+owner+" ") || strings.HasSuffix(strings.TrimSpace(line), "/"+owner) {
			f := strings.Fields(line)
			return strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0]
		}
	}
	t.Fatalf("no link of %s in %s", owner, ns)
	return ""
}

// makeForeign fills node a of l with foreign objects of every kind and
// registers their removal.
func makeForeign(t *testing.T, l *svcLab) *foreignLab {
	t.Helper()
	f := &foreignLab{t: t, l: l, ns: l.nodeNS("a")}
	ns := f.ns
	other := l.node("c") // a mark of another node is foreign here

	// Named namespaces: one holding the peer of a foreign veth, an empty
	// one, one named like the lab's pod namespaces.
	fx := nstest.TempNetns(t, l.id+"fx")
	fy := nstest.TempNetns(t, l.id+"fy")
	zz := l.id + "-zz"
	if err := nsutil.Create(zz); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nsutil.Delete(zz) })
	f.netns = []string{fx, fy, zz}

	for _, c := range []string{
		// links: veths (one marked as another node's, one with our prefix
		// and no node), a bridge with a port and an address, a veth whose
		// peer is in a foreign namespace, a link named like ours
		"link add fveth0 type veth peer name fveth1",
		"link set fveth0 alias netreconcile/" + other + "/pod/t/x",
		"link set fveth1 alias netreconcile",
		"link add fbr0 type bridge",
		"link set fveth1 master fbr0",
		"addr add 10.98.0.1/24 dev fbr0",
		"link add fpod0 type veth peer name fpod1 netns " + fx,
		"link set fpod0 alias foreign-container",
		"link add nrfake0 type veth peer name nrfake1",
		"link set fveth0 up", "link set fveth1 up", "link set fbr0 up", "link set fpod0 up",
		// a VXLAN device of another VNI and port, with FDB and neighbour
		// entries
		"link add fvx0 type vxlan id 42 dstport 4790 dev eth0 local 172.31.1.2",
		"link set fvx0 up",
		"neigh add 10.98.9.9 lladdr 02:00:00:00:09:09 dev fvx0 nud permanent",
		// routes: several protocols, a blackhole, our protocol number in
		// another table, our pods' addresses in other tables
		"route add 10.97.1.0/24 dev fveth0 proto static",
		"route add 10.97.2.0/24 via 172.31.1.254 dev eth0",
		"route add 10.97.3.0/24 dev fveth0 proto 99 metric 50",
		"route add 10.97.4.0/24 dev fbr0 proto bird",
		"route add blackhole 10.97.5.0/24 proto static",
		"route add 10.97.6.0/24 dev fveth0 proto 154 table 100",
		"route add 10.244.1.10/32 dev fveth0 table 100 proto static",
		"route add 10.244.1.0/24 dev fbr0 table 101 proto static",
		"rule add from 10.97.0.0/16 table 100 priority 1000",
		// neighbours
		"neigh add 10.98.0.5 lladdr 02:00:00:00:00:05 dev fbr0 nud permanent",
		"neigh add proxy 10.98.0.6 dev fveth0",
	} {
		ip(t, ns, strings.Fields(c)...)
	}
	if out, err := exec.Command("bridge", "-n", ns, "fdb", "append", "00:00:00:00:00:00", "dev", "fvx0", "dst", "172.31.9.9").CombinedOutput(); err != nil {
		t.Fatalf("bridge fdb append: %v\n%s", err, out)
	}
	ip(t, fx, "link", "set", "fpod1", "up")
	ip(t, fx, "addr", "add", "10.98.1.2/24", "dev", "fpod1")
	for _, s := range []string{"net/ipv4/conf/fveth0/proxy_arp", "net/ipv4/conf/fbr0/accept_local"} {
		if err := nsutil.WriteSysctl(ns, s, "1"); err != nil {
			t.Fatal(err)
		}
	}

	// eBPF: a trivial program on tcx ingress of a foreign veth and tcx
	// egress of the uplink (links pinned in a foreign pin directory), on
	// clsact egress of the foreign bridge, and a pinned map.
	f.pinDir = "/sys/fs/bpf/nrforeign-" + l.id
	if err := os.MkdirAll(f.pinDir, 0o700); err != nil {
		t.Fatal(err)
	}
	f.ghostPin = filepath.Join(l.pinRoot, l.id+"ghost", "nr_config")
	f.ghostRec = filepath.Join(l.stateDir, l.id+"ghost", "netns", fy)
	t.Cleanup(func() {
		os.RemoveAll(f.pinDir)
		os.RemoveAll(filepath.Dir(f.ghostPin))
		os.RemoveAll(filepath.Dir(filepath.Dir(f.ghostRec)))
	})
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "foreign", Type: ebpf.SchedCLS, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, -1), asm.Return()}}) // TC_ACT_UNSPEC: next program
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	if err := prog.Pin(filepath.Join(f.pinDir, "prog")); err != nil {
		t.Fatal(err)
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "foreign", Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Put(uint32(1), uint32(42)); err != nil {
		t.Fatal(err)
	}
	if err := m.Pin(filepath.Join(f.pinDir, "map")); err != nil {
		t.Fatal(err)
	}
	// Named like one of ours, in a node directory of the lab's root that
	// no node of the file uses.
	if err := os.MkdirAll(filepath.Dir(f.ghostPin), 0o700); err != nil {
		t.Fatal(err)
	}
	ghost, err := ebpf.NewMap(&ebpf.MapSpec{Name: "ghost", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ghost.Close()
	if err := ghost.Pin(f.ghostPin); err != nil { // (Pin moves a pinned map: another map)
		t.Fatal(err)
	}
	err = nsutil.Do(ns, func() error {
		for _, a := range []struct {
			dev string
			at  ebpf.AttachType
		}{{"fveth0", ebpf.AttachTCXIngress}, {"eth0", ebpf.AttachTCXEgress}} {
			iface, err := net.InterfaceByName(a.dev)
			if err != nil {
				return err
			}
			lk, err := link.AttachTCX(link.TCXOptions{Interface: iface.Index, Program: prog, Attach: a.at})
			if err != nil {
				return err
			}
			err = lk.Pin(filepath.Join(f.pinDir, "link-"+a.dev))
			lk.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("attach foreign tcx programs: %v", err)
	}
	h, err := nsutil.Handle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	br, err := h.LinkByName("fbr0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.QdiscAdd(&netlink.GenericQdisc{QdiscType: "clsact", QdiscAttrs: netlink.QdiscAttrs{
		LinkIndex: br.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}}); err != nil {
		t.Fatalf("clsact on fbr0: %v", err)
	}
	if err := h.FilterAdd(&netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{LinkIndex: br.Attrs().Index,
		Parent: netlink.HANDLE_MIN_EGRESS, Handle: 1, Protocol: unix.ETH_P_ALL, Priority: 7},
		Fd: prog.FD(), Name: "foreign", DirectAction: true}); err != nil {
		t.Fatalf("bpf filter on fbr0: %v", err)
	}

	// Records of the node that is not in the file, claiming an existing
	// namespace.
	if err := os.MkdirAll(filepath.Dir(f.ghostRec), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.ghostRec, []byte("pod/t/x\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, lk := range links {
		if !strings.HasPrefix(lk.Attrs().Alias, "netreconcile/"+l.node("a")+"/") {
			f.links = append(f.links, lk.Attrs().Name)
		}
	}
	sort.Strings(f.links)
	f.settle()
	return f
}

// settle waits until IPv6 duplicate address detection is over on the
// foreign links, so that their addresses stop changing on their own.
func (f *foreignLab) settle() {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out := ip(f.t, f.ns, "-6", "addr", "show", "tentative")
		out += ip(f.t, f.netns[0], "-6", "addr", "show", "tentative")
		if strings.TrimSpace(out) == "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.t.Fatal("IPv6 addresses of the foreign links still tentative after 10 s")
}

// timers are the fields of `ip -d link show` that count time by
// themselves (bridge and bridge port timers).
var timers = regexp.MustCompile(`(\w+_timer)\s+[0-9.]+`)

// promisc is masked on the uplink only: the kernel counts macvlan
// children (netreconcile's pods and shim) into its promiscuity.
var promisc = regexp.MustCompile(`(promiscuity|allmulti) \d+`)

// state renders every foreign object: byte-for-byte `ip -d` output (timers
// masked), addresses, neighbours, FDB, qdiscs and filters, tcx program
// and link ids, sysctls of every foreign link; foreign routes of every
// table and the rules; the foreign namespaces and what they hold; the
// foreign pins (with object ids and map contents); the other node's
// records.
func (f *foreignLab) state() string {
	t := f.t
	var b strings.Builder
	out := func(args ...string) string {
		o, err := exec.Command(args[0], args[1:]...).Output()
		if err != nil {
			t.Fatalf("%s: %v", strings.Join(args, " "), err)
		}
		return string(o)
	}
	foreign := map[string]bool{}
	for _, name := range f.links {
		foreign[name] = true
		d := timers.ReplaceAllString(out("ip", "-n", f.ns, "-d", "link", "show", "dev", name), "$1 *")
		if name == "eth0" {
			d = promisc.ReplaceAllString(d, "$1 *")
		}
		fmt.Fprintf(&b, "=== link %s\n%s", name, d)
		b.WriteString(out("ip", "-n", f.ns, "addr", "show", "dev", name))
		b.WriteString(out("ip", "-n", f.ns, "neigh", "show", "dev", name, "nud", "permanent"))
		b.WriteString(out("ip", "-n", f.ns, "neigh", "show", "proxy", "dev", name))
		for _, line := range strings.Split(out("bridge", "-n", f.ns, "fdb", "show", "dev", name), "\n") {
			if name == "eth0" && strings.Contains(line, " self ") {
				continue // the uplink's address lists: MACs of macvlan children
			}
			if strings.Contains(line, "permanent") || strings.Contains(line, "static") {
				b.WriteString(line + "\n")
			}
		}
		b.WriteString(out("tc", "-n", f.ns, "qdisc", "show", "dev", name))
		b.WriteString(out("tc", "-n", f.ns, "filter", "show", "dev", name, "ingress"))
		b.WriteString(out("tc", "-n", f.ns, "filter", "show", "dev", name, "egress"))
		// Not forwarding: the kernel copies net.ipv4.ip_forward, which
		// netreconcile turns on and restores at destroy, into every
		// interface's forwarding.
		for _, s := range []string{"proxy_arp", "rp_filter", "accept_local", "send_redirects", "arp_ignore", "arp_announce"} {
			v, err := nsutil.ReadSysctl(f.ns, "net/ipv4/conf/"+name+"/"+s)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s=%s ", s, v)
		}
		b.WriteString("\n" + tcxIDs(t, f.ns, name))
	}
	b.WriteString("=== routes\n")
	devRE := regexp.MustCompile(` dev (\S+)`)
	for _, line := range strings.Split(out("ip", "-n", f.ns, "-4", "route", "show", "table", "all"), "\n") {
		dev := ""
		if m := devRE.FindStringSubmatch(line); m != nil {
			dev = m[1]
		}
		ours := strings.Contains(line, "proto 154") && !strings.Contains(line, " table ")
		if line != "" && !ours && (dev == "" || foreign[dev]) {
			b.WriteString(line + "\n")
		}
	}
	b.WriteString("=== rules\n" + out("ip", "-n", f.ns, "rule", "show"))
	for _, ns := range f.netns {
		fmt.Fprintf(&b, "=== netns %s (exists: %v)\n", ns, netnsExists(ns))
		d := timers.ReplaceAllString(out("ip", "-n", ns, "-d", "link", "show"), "$1 *")
		b.WriteString(d + out("ip", "-n", ns, "addr", "show"))
	}
	b.WriteString("=== pins\n")
	var pins []string
	for _, p := range pinsBelow(f.pinDir) {
		pins = append(pins, filepath.Join(f.pinDir, p))
	}
	for _, p := range append(pins, f.ghostPin) {
		fmt.Fprintf(&b, "%s %s\n", p, pinnedID(p))
	}
	rec, err := os.ReadFile(f.ghostRec)
	fmt.Fprintf(&b, "=== records of the ghost node: %q %v\n", rec, err)
	return b.String()
}

// pinnedID describes the object pinned at path: its kind and kernel id
// (and a map's contents).
func pinnedID(path string) string {
	if m, err := ebpf.LoadPinnedMap(path, nil); err == nil {
		defer m.Close()
		info, _ := m.Info()
		id, _ := info.ID()
		var k, v uint32
		var kv []string
		it := m.Iterate()
		for it.Next(&k, &v) {
			kv = append(kv, fmt.Sprintf("%d=%d", k, v))
		}
		return fmt.Sprintf("map %d {%s}", id, strings.Join(kv, " "))
	}
	if l, err := link.LoadPinnedLink(path, nil); err == nil {
		defer l.Close()
		info, _ := l.Info()
		return fmt.Sprintf("link %d program %d", info.ID, info.Program)
	}
	if p, err := ebpf.LoadPinnedProgram(path, nil); err == nil {
		defer p.Close()
		info, _ := p.Info()
		id, _ := info.ID()
		return fmt.Sprintf("program %d", id)
	}
	return "missing"
}

// tcxIDs lists the tcx programs (and their links) on both hooks of dev in
// namespace ns.
func tcxIDs(t *testing.T, ns, dev string) string {
	var b strings.Builder
	err := nsutil.Do(ns, func() error {
		iface, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		for _, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
			res, err := link.QueryPrograms(link.QueryOptions{Target: iface.Index, Attach: at})
			if err != nil {
				return err
			}
			for _, p := range res.Programs {
				if uplinkProgram(p.ID) {
					continue // netreconcile's own on the uplink, which the contract allows
				}
				lid, _ := p.LinkID()
				fmt.Fprintf(&b, "tcx %v program %d link %d\n", at, p.ID, lid)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("tcx programs of %s: %v", dev, err)
	}
	return b.String()
}

// uplinkProgram reports whether program id is one of the datapath's
// uplink programs (by its name).
func uplinkProgram(id ebpf.ProgramID) bool {
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return false
	}
	defer p.Close()
	info, err := p.Info()
	return err == nil && strings.HasPrefix(info.Name, "nr_uplink")
}

// briefWatch is the watch daemon started for a short while.
type briefWatch struct {
	t      *testing.T
	cmd    *exec.Cmd
	log    string
	done   chan struct{}
	notify *net.UnixConn
}

// startBriefWatch starts `netreconcile args...` (a watch command) with
// its own notify socket and waits until it says READY=1 (its first pass
// converged). The cleanup stops it if the test did not.
func startBriefWatch(t *testing.T, bin string, args ...string) *briefWatch {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	d := &briefWatch{t: t, log: filepath.Join(dir, "watch.log"), done: make(chan struct{}), notify: conn}
	logf, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("$ netreconcile %s  # pid %d", strings.Join(args, " "), d.cmd.Process.Pid)
	go func() {
		_ = d.cmd.Wait()
		logf.Close()
		close(d.done)
	}()
	t.Cleanup(func() {
		d.stop()
		conn.Close()
	})
	buf := make([]byte, 4096)
	deadline := time.Now().Add(60 * time.Second)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		n, err := conn.Read(buf)
		if err == nil && strings.Contains(string(buf[:n]), "READY=1") {
			return d
		}
		select {
		case <-d.done:
			t.Fatalf("watch exited before READY=1\n%s", d.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no READY=1 from watch in 60 s\n%s", d.logs())
		}
	}
}

func (d *briefWatch) logs() string {
	b, _ := os.ReadFile(d.log)
	return string(b)
}

// stop sends SIGTERM to the daemon (the process we started, by pid) and
// waits; after 15 s it kills its process group. It returns the exit code.
func (d *briefWatch) stop() int {
	select {
	case <-d.done:
	default:
		_ = syscall.Kill(d.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(15 * time.Second):
			d.t.Errorf("watch pid %d ignored SIGTERM for 15 s; killing it", d.cmd.Process.Pid)
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.done
		}
	}
	return d.cmd.ProcessState.ExitCode()
}
