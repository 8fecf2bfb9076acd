package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/internal/nstest"
)

// multi is a lab of several nodes built from a generated topology, with
// unique node and netns names and its own state directory.
type multi struct {
	t        *testing.T
	bin      string
	id       string
	stateDir string
	file     string
	routing  string // cluster.routing.mode
	mtu      int    // cluster.mtu (0: derived)
	vni      int
	nodes    []mnode
	pods     []mpod
}

type mnode struct{ name, addr, cidr, uplink string }

type mpod struct{ name, node, ip, mode string }

func newMulti(t *testing.T, prefix string) *multi {
	nstest.RequireRoot(t)
	return &multi{t: t, bin: BuildBinary(t), id: UniqueName(prefix), stateDir: t.TempDir(), routing: "auto", vni: 1}
}

// node names the node with suffix s; netns its pod's namespace.
func (m *multi) node(s string) string   { return m.id + s }
func (m *multi) nodeNS(s string) string { return "nrlab-" + m.node(s) }
func (m *multi) netns(p mpod) string    { return m.id + "-" + p.name }

func (m *multi) topo() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: netreconcile/v1\nkind: Topology\ncluster:\n  podCIDR: 10.244.0.0/16\n")
	fmt.Fprintf(&b, "  routing: {mode: %s, vxlan: {vni: %d, port: 4789}}\n", m.routing, m.vni)
	if m.mtu != 0 {
		fmt.Fprintf(&b, "  mtu: %d\n", m.mtu)
	}
	b.WriteString("nodes:\n")
	for _, n := range m.nodes {
		up := n.uplink
		if up == "" {
			up = "eth0"
		}
		fmt.Fprintf(&b, "  - {name: %s, address: %s, uplink: %s, podCIDR: %s}\n", m.node(n.name), n.addr, up, n.cidr)
	}
	b.WriteString("pods:\n")
	for _, p := range m.pods {
		fmt.Fprintf(&b, "  - {name: %s, namespace: t, node: %s, ip: %s, mode: %s, netns: %s}\n",
			p.name, m.node(p.node), p.ip, p.mode, m.netns(p))
	}
	return b.String()
}

// write writes the current topology to a new file and returns its path.
func (m *multi) write() string {
	m.file = WriteFile(m.t, fmt.Sprintf("%s-%d.yaml", m.id, time.Now().UnixNano()), m.topo())
	return m.file
}

// up writes the topology and runs lab up; the first call registers the
// cleanup (lab down with the file current at the end, which names the
// same nodes and so the same underlay, and deletion of pod namespaces).
func (m *multi) up() {
	m.t.Helper()
	first := m.file == ""
	m.write()
	if first {
		m.t.Cleanup(func() {
			if m.t.Failed() {
				var refs []string
				for _, n := range m.nodes {
					refs = append(refs, m.nodeNS(n.name))
				}
				DumpState(m.t, refs...)
			}
			if _, errOut, code := Run(m.t, m.bin, "lab", "down", "-f", m.file, "--state-dir", m.stateDir); code != 0 {
				m.t.Errorf("lab down: exit %d\n%s", code, errOut)
			}
			for _, p := range m.pods {
				_ = exec.Command("ip", "netns", "del", m.netns(p)).Run()
			}
		})
	}
	out, errOut, code := Run(m.t, m.bin, "lab", "up", "-f", m.file, "--state-dir", m.stateDir)
	if code != 0 {
		m.t.Fatalf("lab up: exit %d\n%s%s", code, out, errOut)
	}
}

// run runs a node command (plan, apply) for node suffix s with the
// current file.
func (m *multi) run(s string, args ...string) (string, string, int) {
	m.t.Helper()
	return Run(m.t, m.bin, append(args, "-f", m.file, "--node", m.node(s), "--node-netns", m.nodeNS(s),
		"--state-dir", m.stateDir)...)
}

func (m *multi) plan(s string) planJSON {
	m.t.Helper()
	out, errOut, code := m.run(s, "plan", "-o", "json")
	if code != 0 {
		m.t.Fatalf("plan node %s: exit %d\n%s", s, code, errOut)
	}
	var p planJSON
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		m.t.Fatalf("plan json: %v\n%s", err, out)
	}
	return p
}

// serve starts a TCP and a UDP echo server in every pod.
func (m *multi) serve(pods []mpod) {
	for _, p := range pods {
		nstest.StartEchoTCP(m.t, m.netns(p), p.ip+":7000", p.name)
		nstest.StartEchoUDP(m.t, m.netns(p), p.ip+":7001", p.name)
	}
}

// checkAll requires a TCP and a UDP round trip between every ordered pair.
func (m *multi) checkAll(pods []mpod) {
	m.t.Helper()
	for _, from := range pods {
		for _, to := range pods {
			if from == to {
				continue
			}
			if got, err := nstest.TryTCP(m.netns(from), to.ip+":7000", nstest.CheckTimeout); err != nil || got != to.name {
				m.t.Errorf("tcp %s (%s) -> %s (%s): %q, %v", from.name, from.mode, to.name, to.mode, got, err)
			}
			if got, err := nstest.TryUDP(m.netns(from), to.ip+":7001", nstest.CheckTimeout); err != nil || got != to.name {
				m.t.Errorf("udp %s (%s) -> %s (%s): %q, %v", from.name, from.mode, to.name, to.mode, got, err)
			}
		}
	}
}

// linkCounters returns the rx and tx packet counters of dev in ns.
func linkCounters(t *testing.T, ns, dev string) (rx, tx uint64) {
	t.Helper()
	var ls []struct {
		Stats struct {
			Rx struct{ Packets uint64 } `json:"rx"`
			Tx struct{ Packets uint64 } `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(ip(t, ns, "-j", "-s", "link", "show", "dev", dev)), &ls); err != nil || len(ls) != 1 {
		t.Fatalf("counters of %s in %s: %v", dev, ns, err)
	}
	return ls[0].Stats.Rx.Packets, ls[0].Stats.Tx.Packets
}

// ipStats returns the Ip: counters of /proc/net/snmp in ns.
func ipStats(t *testing.T, ns string) map[string]int64 {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").Output()
	if err != nil {
		t.Fatalf("snmp of %s: %v", ns, err)
	}
	var names, values []string
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "Ip: "); ok {
			if names == nil {
				names = strings.Fields(rest)
			} else {
				values = strings.Fields(rest)
			}
		}
	}
	m := map[string]int64{}
	for i := range min(len(names), len(values)) {
		m[names[i]], _ = strconv.ParseInt(values[i], 10, 64)
	}
	return m
}

// podIfindexes maps "pod" to the ifindex of eth0 in each pod's namespace.
func (m *multi) podIfindexes() map[string]int {
	out := map[string]int{}
	for _, p := range m.pods {
		out[p.name] = ifindexes(m.t, m.netns(p))["eth0"]
	}
	return out
}

// TestRoutingThreeNodes is the multi-node scenario. Nodes a and b
// share 172.31.1.0/24, c sits in 172.31.2.0/24 behind the lab's router.
// Every pod (veth, bridge and macvlan, mixed on every node) reaches every
// other over TCP and UDP; a routes to b directly and to c over VXLAN, and
// a-b traffic leaves the VXLAN device's counters still; a 16 MB stream
// crosses VXLAN at MTU 1450 with no fragmentation; moving b into c's subnet
// switches only b's entries on the next apply, recreating nothing.
func TestRoutingThreeNodes(t *testing.T) {
	m := newMulti(t, "r")
	m.nodes = []mnode{
		{name: "a", addr: "172.31.1.2/24", cidr: "10.244.1.0/24"},
		{name: "b", addr: "172.31.1.3/24", cidr: "10.244.2.0/24"},
		{name: "c", addr: "172.31.2.2/24", cidr: "10.244.3.0/24"},
	}
	m.pods = []mpod{
		{"a1", "a", "10.244.1.10", "veth"}, {"a2", "a", "10.244.1.20", "bridge"},
		{"a3", "a", "10.244.1.30", "macvlan"}, {"a4", "a", "10.244.1.31", "macvlan"},
		{"b1", "b", "10.244.2.10", "veth"}, {"b2", "b", "10.244.2.20", "bridge"}, {"b3", "b", "10.244.2.30", "macvlan"},
		{"c1", "c", "10.244.3.10", "veth"}, {"c2", "c", "10.244.3.20", "bridge"}, {"c3", "c", "10.244.3.30", "macvlan"},
	}
	m.up()
	nsA, nsB, nsC := m.nodeNS("a"), m.nodeNS("b"), m.nodeNS("c")

	// Every pod reaches every other pod, and its own node through the
	// gateway (the shim for macvlan pods).
	m.serve(m.pods)
	for _, n := range m.nodes {
		nstest.StartEchoTCP(t, m.nodeNS(n.name), strings.Split(n.addr, "/")[0]+":7000", "node-"+n.name)
	}
	m.checkAll(m.pods)
	for _, p := range m.pods {
		for _, n := range m.nodes {
			if n.name == p.node {
				if got := nstest.CheckTCP(t, m.netns(p), strings.Split(n.addr, "/")[0]+":7000"); got != "node-"+n.name {
					t.Errorf("pod %s -> its node: %q", p.name, got)
				}
			}
		}
	}

	// Route tables: direct for the same-subnet peer, VXLAN for the other.
	if r := ip(t, nsA, "route", "show", "10.244.2.0/24"); !strings.Contains(r, "via 172.31.1.3 dev eth0 proto 154") {
		t.Errorf("a -> b must be a direct route: %q", r)
	}
	if r := ip(t, nsA, "route", "show", "10.244.3.0/24"); !strings.Contains(r, "via 10.244.3.0 dev nrvxlan0 proto 154 onlink") {
		t.Errorf("a -> c must go over VXLAN: %q", r)
	}
	for _, dst := range []string{"10.244.1.0/24", "10.244.2.0/24"} {
		if r := ip(t, nsC, "route", "show", dst); !strings.Contains(r, "dev nrvxlan0") {
			t.Errorf("c -> %s must go over VXLAN: %q", dst, r)
		}
	}
	dev := ip(t, nsA, "-d", "link", "show", "nrvxlan0")
	for _, want := range []string{"mtu 1450", "vxlan id 1 ", "local 172.31.1.2", "dev eth0", "dstport 4789", "nolearning", "0e:58:0a:f4:01:00"} {
		if !strings.Contains(dev, want) {
			t.Errorf("nrvxlan0 on a lacks %q:\n%s", want, dev)
		}
	}
	if n := ip(t, nsA, "neigh", "show", "dev", "nrvxlan0"); !strings.Contains(n, "10.244.3.0 lladdr 0e:58:0a:f4:03:00 PERMANENT") ||
		strings.Contains(n, "10.244.2.0") {
		t.Errorf("a's VXLAN neighbours: %q", n)
	}
	if f, _ := exec.Command("bridge", "-n", nsA, "fdb", "show", "dev", "nrvxlan0").CombinedOutput(); !strings.Contains(string(f), "0e:58:0a:f4:03:00 dst 172.31.2.2 self permanent") {
		t.Errorf("a's VXLAN FDB: %q", f)
	}
	for _, p := range m.pods {
		if l := ip(t, m.netns(p), "link", "show", "eth0"); !strings.Contains(l, "mtu 1450") {
			t.Errorf("pod %s: MTU must leave room for VXLAN: %s", p.name, l)
		}
	}
	for _, n := range []string{"a", "b", "c"} {
		if p := m.plan(n); len(p.Changes) != 0 {
			t.Errorf("node %s: plan after lab up: %+v", n, p.Changes)
		}
	}

	// a <-> b traffic never touches either VXLAN device.
	rxA, txA := linkCounters(t, nsA, "nrvxlan0")
	rxB, txB := linkCounters(t, nsB, "nrvxlan0")
	ab := []mpod{m.pods[0], m.pods[2], m.pods[4], m.pods[6]}
	m.checkAll(ab)
	nstest.StartSink(t, m.netns(m.pods[6]), m.pods[6].ip+":7002")
	if got, _, err := nstest.Transfer(m.netns(m.pods[2]), m.pods[6].ip+":7002", 1<<20); err != nil || got != 1<<20 {
		t.Errorf("a3 -> b3 transfer: %d, %v", got, err)
	}
	if rx, tx := linkCounters(t, nsA, "nrvxlan0"); rx != rxA || tx != txA {
		t.Errorf("a <-> b traffic went through a's nrvxlan0: rx %d -> %d, tx %d -> %d", rxA, rx, txA, tx)
	}
	if rx, tx := linkCounters(t, nsB, "nrvxlan0"); rx != rxB || tx != txB {
		t.Errorf("a <-> b traffic went through b's nrvxlan0: rx %d -> %d, tx %d -> %d", rxB, rx, txB, tx)
	}

	// 16 MB across VXLAN, at MTU 1450, with no fragmentation anywhere.
	const size = 16 << 20
	src, dst := m.pods[3], m.pods[7] // macvlan on a -> veth on c
	nstest.StartSink(t, m.netns(dst), dst.ip+":7002")
	before := map[string]map[string]int64{nsA: ipStats(t, nsA), nsC: ipStats(t, nsC)}
	got, took, err := nstest.Transfer(m.netns(src), dst.ip+":7002", size)
	if err != nil || got != size {
		t.Fatalf("16 MB a4 -> c1 over VXLAN: %d bytes, %v", got, err)
	}
	t.Logf("16 MB over VXLAN in %v", took)
	if rx, tx := linkCounters(t, nsA, "nrvxlan0"); rx == rxA || tx == txA {
		t.Errorf("a -> c traffic did not use nrvxlan0: rx %d tx %d", rx, tx)
	}
	for ns, b := range before {
		a := ipStats(t, ns)
		for _, k := range []string{"FragCreates", "FragFails", "ReasmReqds"} {
			if a[k] != b[k] {
				t.Errorf("%s: %s %d -> %d: packets needed fragmentation", ns, k, b[k], a[k])
			}
		}
	}
	if r := ip(t, m.netns(src), "route", "get", dst.ip); strings.Contains(r, "mtu") {
		t.Errorf("the sender learned a smaller path MTU: %q", r)
	}

	// Move b into c's subnet: on a and c, only b's entries change.
	linksA, linksC := ifindexes(t, nsA), ifindexes(t, nsC)
	pods := m.podIfindexes()
	m.nodes[1].addr = "172.31.2.3/24"
	m.write()
	pa := m.plan("a")
	// (masquerade: b's address is one of the node addresses it exempts)
	want := map[string]string{
		"route node/10.244.2.0/24":                                 "update",
		"neighbour node/nrvxlan0/10.244.2.0":                       "create",
		"neighbour node/nrvxlan0/fdb/0e:58:0a:f4:02:00/172.31.2.3": "create",
		"masquerade node/netreconcile":                             "update",
	}
	checkPlan(t, "a", pa, want)
	pc := m.plan("c")
	checkPlan(t, "c", pc, map[string]string{
		"route node/10.244.2.0/24":                                 "update",
		"neighbour node/nrvxlan0/10.244.2.0":                       "delete",
		"neighbour node/nrvxlan0/fdb/0e:58:0a:f4:02:00/172.31.1.3": "delete",
		"masquerade node/netreconcile":                             "update",
	})
	m.up() // rebuilds b's uplink in the other subnet, then applies every node
	for ns, before := range map[string]map[string]int{nsA: linksA, nsC: linksC} {
		after := ifindexes(t, ns)
		for name, idx := range before {
			if after[name] != idx {
				t.Errorf("%s: link %s recreated (ifindex %d -> %d)", ns, name, idx, after[name])
			}
		}
	}
	for name, idx := range pods {
		if now := m.podIfindexes()[name]; now != idx {
			t.Errorf("pod %s: eth0 recreated (ifindex %d -> %d)", name, idx, now)
		}
	}
	if r := ip(t, nsA, "route", "show", "10.244.2.0/24"); !strings.Contains(r, "via 10.244.2.0 dev nrvxlan0") {
		t.Errorf("a -> b must now go over VXLAN: %q", r)
	}
	if r := ip(t, nsC, "route", "show", "10.244.2.0/24"); !strings.Contains(r, "via 172.31.2.3 dev eth0") {
		t.Errorf("c -> b must now be direct: %q", r)
	}
	for _, n := range []string{"a", "b", "c"} {
		if p := m.plan(n); len(p.Changes) != 0 {
			t.Errorf("node %s: plan after the move: %+v", n, p.Changes)
		}
	}
	m.checkAll(m.pods)
	rxC, txC := linkCounters(t, nsC, "nrvxlan0")
	m.checkAll([]mpod{m.pods[5], m.pods[6], m.pods[8], m.pods[9]})
	if rx, tx := linkCounters(t, nsC, "nrvxlan0"); rx != rxC || tx != txC {
		t.Errorf("b <-> c traffic still goes through c's nrvxlan0 after the move")
	}
}

// checkPlan requires that a plan holds exactly the wanted changes.
func checkPlan(t *testing.T, node string, p planJSON, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, c := range p.Changes {
		got[c.Kind+" "+c.Key] = c.Action
	}
	for k, a := range want {
		if got[k] != a {
			t.Errorf("node %s: want %s %s, plan has %q", node, a, k, got[k])
		}
	}
	for k, a := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("node %s: unexpected change %s %s", node, a, k)
		}
	}
}
