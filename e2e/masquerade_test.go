package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/internal/nstest"
)

// masqLab is a two-node lab (a: 172.31.1.2, b: 172.31.1.3) with veth
// pods, an outside host on the underlay, and a file whose cluster.egress
// and policies each step sets.
type masqLab struct {
	t                  *testing.T
	bin, id            string
	stateDir, pinRoot  string
	dir, file          string
	egress, policies   string // YAML under cluster: / after pods:
	underlay           string
	outTCP, outUDPAddr string
	outUDP             *udpSources
}

// masqPods are the lab's pods: name, node, address, labels.
var masqPods = [][4]string{
	{"p1", "a", "10.244.1.10", "{app: client}"},
	{"ctl", "a", "10.244.1.11", "{app: control}"},
	{"p2", "b", "10.244.2.10", "{app: client}"},
}

func newMasqLab(t *testing.T) *masqLab {
	nstest.RequireRoot(t)
	id := UniqueName("mq")
	l := &masqLab{t: t, bin: BuildBinary(t), id: id, stateDir: t.TempDir(), dir: t.TempDir(),
		pinRoot: "/sys/fs/bpf/netreconcile-test-" + id}
	l.up()
	t.Cleanup(func() {
		if t.Failed() {
			DumpState(t, l.nodeNS("a"), l.nodeNS("b"), l.underlay)
		}
		if _, errOut, code := Run(t, l.bin, "lab", "down", "-f", l.file, "--state-dir", l.stateDir, "--bpffs", l.pinRoot); code != 0 {
			t.Errorf("lab down: exit %d\n%s", code, errOut)
		}
		for _, p := range masqPods {
			_ = exec.Command("ip", "netns", "del", l.netns(p[0])).Run()
		}
		if left := pinsBelow(l.pinRoot); len(left) > 0 {
			t.Errorf("pins left after lab down: %v", left)
		}
		os.RemoveAll(l.pinRoot)
	})
	l.underlay = underlayOf(t, l.file)
	addOutside(t, l.underlay, OutsideAddr)
	l.outTCP, l.outUDPAddr = OutsideAddr+":8080", OutsideAddr+":5353"
	svcServeTCP(t, l.underlay, OutsideAddr, 8080, "outside")
	l.outUDP = startUDPSources(t, l.underlay, l.outUDPAddr)
	return l
}

func (l *masqLab) nodeNS(s string) string  { return "nrlab-" + l.id + s }
func (l *masqLab) netns(pod string) string { return l.id + "-" + pod }

func (l *masqLab) topo() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: netreconcile/v1\nkind: Topology\ncluster:\n  podCIDR: 10.244.0.0/16\n  serviceCIDR: 10.96.0.0/16\n%s", l.egress)
	fmt.Fprintf(&b, "nodes:\n  - {name: %sa, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}\n", l.id)
	fmt.Fprintf(&b, "  - {name: %sb, address: 172.31.1.3/24, podCIDR: 10.244.2.0/24}\npods:\n", l.id)
	for _, p := range masqPods {
		fmt.Fprintf(&b, "  - {name: %s, namespace: t, node: %s%s, ip: %s, netns: %s, labels: %s}\n", p[0], l.id, p[1], p[2], l.netns(p[0]), p[3])
	}
	b.WriteString(l.policies)
	return b.String()
}

// up writes the file and runs lab up (which applies every node).
func (l *masqLab) up() {
	l.t.Helper()
	l.file = filepath.Join(l.dir, fmt.Sprintf("%s-%d.yaml", l.id, time.Now().UnixNano()))
	if err := os.WriteFile(l.file, []byte(l.topo()), 0o644); err != nil {
		l.t.Fatal(err)
	}
	if out, errOut, code := Run(l.t, l.bin, "lab", "up", "-f", l.file, "--state-dir", l.stateDir, "--bpffs", l.pinRoot); code != 0 {
		l.t.Fatalf("lab up: exit %d\n%s%s", code, out, errOut)
	}
}

func (l *masqLab) run(s string, args ...string) (string, string, int) {
	l.t.Helper()
	return Run(l.t, l.bin, append(args, "-f", l.file, "--node", l.id+s, "--node-netns", l.nodeNS(s),
		"--state-dir", l.stateDir, "--bpffs", filepath.Join(l.pinRoot, l.id+s))...)
}

// nft runs nft in node s's namespace.
func (l *masqLab) nft(s string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", l.nodeNS(s), "nft"}, args...)...).CombinedOutput()
	return string(out), err
}

// reachOutside requires pod to reach the outside host over TCP and UDP,
// seen as from.
func (l *masqLab) reachOutside(when, pod, from string) {
	l.t.Helper()
	h, err := tcpHit(l.netns(pod), l.outTCP)
	if err != nil || h.peer.String() != from {
		l.t.Errorf("%s: %s -> outside TCP: %v, %v; want seen as %s", when, pod, h, err, from)
	}
	l.outUDP.sources()
	if _, err := nstest.TryUDP(l.netns(pod), l.outUDPAddr, nstest.CheckTimeout); err != nil {
		l.t.Errorf("%s: %s -> outside UDP: %v", when, pod, err)
	}
	if got := l.outUDP.sources(); len(got) == 0 || got[0].String() != from {
		l.t.Errorf("%s: %s -> outside UDP seen as %v, want %s", when, pod, got, from)
	}
}

// noOutsideTCP requires pod's TCP connection to the outside host to fail.
func (l *masqLab) noOutsideTCP(when, pod string) {
	l.t.Helper()
	if h, err := nstest.TryTCP(l.netns(pod), l.outTCP, time.Second); err == nil {
		l.t.Errorf("%s: %s reached the outside host (%s)", when, pod, h)
	}
}

func nftAvailable(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed (apt-get install nftables): the drift test deletes the table with it")
	}
}

// TestMasquerade: pods reach a host outside the cluster as their node,
// over TCP and UDP, from both nodes, while pods still see each other's
// own addresses; a deleted table shows in plan and apply repairs it;
// nonMasqueradeCIDRs covering the host let the pod's own address out (and
// the underlay, with no route to pod CIDRs, sends nothing back);
// masquerade false leaves no table; destroy removes it.
func TestMasquerade(t *testing.T) {
	nftAvailable(t)
	l := newMasqLab(t)
	l.reachOutside("masquerade on", "p1", "172.31.1.2")
	l.reachOutside("masquerade on", "p2", "172.31.1.3")
	svcServeTCP(t, l.netns("p2"), "10.244.2.10", 8080, "p2")
	if h, err := tcpHit(l.netns("p1"), "10.244.2.10:8080"); err != nil || h.peer.String() != "10.244.1.10" {
		t.Errorf("pod to pod on another node: %v, %v; want seen as 10.244.1.10", h, err)
	}
	for _, s := range []string{"a", "b"} {
		if out, errOut, code := l.run(s, "plan", "--detailed-exitcode"); code != 0 {
			t.Errorf("node %s: plan after apply: exit %d\n%s%s", s, code, out, errOut)
		}
	}
	listing, err := l.nft("a", "list", "table", "ip", "netreconcile")
	if err != nil || !strings.Contains(listing, `ip saddr 10.244.1.0/24 oifname "eth0" masquerade to :32768-60999`) {
		t.Errorf("nft list table: %v\n%s", err, listing)
	}

	// Drift: the table deleted by hand.
	if out, err := l.nft("a", "delete", "table", "ip", "netreconcile"); err != nil {
		t.Fatalf("nft delete table: %v\n%s", err, out)
	}
	l.noOutsideTCP("table deleted", "p1")
	out, errOut, code := l.run("a", "plan", "--detailed-exitcode")
	if code != 2 || !strings.Contains(out, "+   masquerade node/netreconcile (pod_cidr=10.244.1.0/24 uplink=eth0 except=10.96.0.0/16,10.244.0.0/16,172.31.1.2/31 ports=32768-60999 rules=4)") {
		t.Errorf("plan after the table was deleted: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := l.run("a", "apply"); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	l.reachOutside("repaired", "p1", "172.31.1.2")

	// nonMasqueradeCIDRs: the pod's own address leaves.
	l.egress = "  egress: {nonMasqueradeCIDRs: [198.51.100.0/24]}\n"
	l.up()
	l.noOutsideTCP("not masqueraded", "p1")
	l.outUDP.sources()
	if _, err := nstest.TryUDP(l.netns("p1"), l.outUDPAddr, time.Second); err == nil {
		t.Error("not masqueraded: an answer came back, but the underlay has no route to pod CIDRs")
	}
	if got := l.outUDP.sources(); !slices.Contains(got, netip.MustParseAddr("10.244.1.10")) {
		t.Errorf("not masqueraded: the outside saw %v, want 10.244.1.10", got)
	}

	// masquerade false: no table, and plan is clean.
	l.egress = "  egress: {masquerade: false}\n"
	l.up()
	if out, err := l.nft("a", "list", "table", "ip", "netreconcile"); err == nil {
		t.Errorf("masquerade false: the table is still there\n%s", out)
	}
	l.noOutsideTCP("masquerade false", "p1")

	l.egress = ""
	l.up()
	l.reachOutside("on again", "p2", "172.31.1.3")
	if out, errOut, code := l.run("b", "destroy"); code != 0 {
		t.Fatalf("destroy: exit %d\n%s%s", code, out, errOut)
	}
	if out, err := l.nft("b", "list", "tables"); err != nil || strings.Contains(out, "netreconcile") {
		t.Errorf("after destroy: %v\n%s", err, out)
	}
}

// TestMasqueradePolicy: with masquerade on, an egress policy judges the
// pod's connections by their real destination: an ipBlock of the outside
// host allows it, an ipBlock of something else denies it, and a pod the
// policy does not select still reaches the host.
func TestMasqueradePolicy(t *testing.T) {
	l := newMasqLab(t)
	policy := func(cidr string) string {
		return "policies:\n  - name: out\n    namespace: t\n    spec:\n      podSelector: {matchLabels: {app: client}}\n" +
			"      policyTypes: [Egress]\n      egress: [{to: [{ipBlock: {cidr: " + cidr + "}}]}]\n"
	}
	l.policies = policy(OutsideAddr + "/32")
	l.up()
	l.reachOutside("ipBlock allows", "p1", "172.31.1.2")
	l.reachOutside("ipBlock allows", "p2", "172.31.1.3")
	l.reachOutside("not selected", "ctl", "172.31.1.2")

	l.policies = policy("203.0.113.0/24")
	l.up()
	l.noOutsideTCP("ipBlock of another network", "p1")
	l.outUDP.sources()
	if _, err := nstest.TryUDP(l.netns("p2"), l.outUDPAddr, time.Second); err == nil {
		t.Error("ipBlock of another network: p2's UDP got an answer")
	}
	if got := l.outUDP.sources(); len(got) != 0 {
		t.Errorf("ipBlock of another network: the outside saw %v", got)
	}
	l.reachOutside("not selected", "ctl", "172.31.1.2")
}

// TestFrontendBadInput: each bad service or egress setting of issue 17
// fails validate, plan and apply with exit 1 and an error placed in the
// file, and leaves the node (links, addresses, routes, nftables) as it
// was.
func TestFrontendBadInput(t *testing.T) {
	nftAvailable(t)
	l := newMasqLab(t)
	good := l.topo()
	snap := func() string {
		tables, _ := l.nft("a", "list", "ruleset")
		return snapshot(t, l.nodeNS("a")) + tables
	}
	before := snap()
	svc := func(fields string) string {
		return good + "services:\n  - name: web\n    namespace: t\n    clusterIP: 10.96.0.10\n    selector: {app: client}\n" + fields
	}
	bad := []struct{ name, text, want string }{
		{"nodePort out of range", svc("    type: NodePort\n    ports: [{port: 80, nodePort: 40000}]\n"),
			"services[0].ports[0].nodePort: nodePort 40000 is outside cluster.nodePortRange 30000-32767"},
		{"nodePort on a ClusterIP service", svc("    ports: [{port: 80, nodePort: 30080}]\n"),
			"services[0].ports[0].nodePort: nodePort needs type NodePort (this service is ClusterIP)"},
		{"nodePort twice for one protocol", svc("    type: NodePort\n    ports: [{port: 80, nodePort: 30080}]\n") +
			"  - {name: api, namespace: t, clusterIP: 10.96.0.11, type: NodePort, ports: [{port: 81, nodePort: 30080}]}\n",
			`services[1].ports[0].nodePort: nodePort 30080/TCP is already used by services[0].ports[0] (service "t/web")`},
		{"externalTrafficPolicy on a ClusterIP service", svc("    externalTrafficPolicy: Local\n    ports: [{port: 80}]\n"),
			"services[0].externalTrafficPolicy: only for type NodePort or a service with externalIPs"},
		{"nonMasqueradeCIDRs not a CIDR", strings.Replace(good, "serviceCIDR: 10.96.0.0/16\n",
			"serviceCIDR: 10.96.0.0/16\n  egress: {nonMasqueradeCIDRs: [198.51.100.10]}\n", 1),
			`cluster.egress.nonMasqueradeCIDRs[0]: invalid CIDR "198.51.100.10": missing the prefix length`},
		{"nodePortRange", strings.Replace(good, "serviceCIDR: 10.96.0.0/16\n", "serviceCIDR: 10.96.0.0/16\n  nodePortRange: 32000-31000\n", 1),
			"cluster.nodePortRange: MIN 32000 is greater than MAX 31000"},
		{"externalIP a node address", svc("    externalIPs: [172.31.1.3]\n    ports: [{port: 80}]\n"),
			`services[0].externalIPs[0]: 172.31.1.3 is node "` + l.id + `b"'s underlay address`},
		{"affinity timeout without ClientIP", svc("    sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n    ports: [{port: 80}]\n"),
			"services[0].sessionAffinityConfig: only with sessionAffinity: ClientIP"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			file := filepath.Join(l.dir, strings.ReplaceAll(b.name, " ", "-")+".yaml")
			if err := os.WriteFile(file, []byte(b.text), 0o644); err != nil {
				t.Fatal(err)
			}
			goodFile := l.file
			l.file = file
			defer func() { l.file = goodFile }()
			for _, cmd := range []string{"plan", "apply"} {
				out, errOut, code := l.run("a", cmd)
				if code != 1 || !strings.Contains(errOut, b.want) || !strings.Contains(errOut, file+":") {
					t.Errorf("%s: exit %d, want 1 with a positioned %q\n%s%s", cmd, code, b.want, out, errOut)
				}
			}
			if out, errOut, code := Run(t, l.bin, "validate", "-f", file); code != 1 || !strings.Contains(errOut+out, b.want) {
				t.Errorf("validate: exit %d\n%s%s", code, out, errOut)
			}
			if after := snap(); after != before {
				t.Errorf("a bad file changed the node:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
	l.reachOutside("after the bad files", "p1", "172.31.1.2")
}
