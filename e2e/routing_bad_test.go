package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/internal/nstest"
)

// snapshot is what a failed run must leave exactly as it was in ns.
func snapshot(t *testing.T, ns string) string {
	t.Helper()
	fdb, _ := exec.Command("bridge", "-n", ns, "fdb", "show").Output()
	return ip(t, ns, "-o", "link", "show") + ip(t, ns, "-o", "-4", "addr", "show") +
		ip(t, ns, "-4", "route", "show", "table", "all") + ip(t, ns, "neigh", "show", "nud", "permanent") +
		ip(t, ns, "neigh", "show", "proxy") + string(fdb)
}

// TestRoutingBadInput: on a live two-subnet lab, each bad file or bad
// node state fails plan and apply with a clear error and changes nothing.
func TestRoutingBadInput(t *testing.T) {
	m := newMulti(t, "rb")
	m.nodes = []mnode{
		{name: "a", addr: "172.31.1.2/24", cidr: "10.244.1.0/24"},
		{name: "c", addr: "172.31.2.2/24", cidr: "10.244.3.0/24"},
	}
	m.pods = []mpod{{"a1", "a", "10.244.1.10", "macvlan"}, {"c1", "c", "10.244.3.10", "veth"}}
	m.up()
	good := m.file
	nsA := m.nodeNS("a")

	expectFailure := func(name, want string) {
		t.Helper()
		m.write()
		before := snapshot(t, nsA)
		for _, cmd := range []string{"plan", "apply"} {
			out, errOut, code := m.run("a", cmd)
			if code != 1 || !strings.Contains(errOut, want) {
				t.Errorf("%s: %s: exit %d, want 1 with %q\n%s%s", name, cmd, code, want, out, errOut)
			}
		}
		if after := snapshot(t, nsA); after != before {
			t.Errorf("%s: the node changed:\nbefore:\n%s\nafter:\n%s", name, before, after)
		}
	}

	// direct across subnets: refused by validation, with the file position.
	m.routing = "direct"
	expectFailure("direct across subnets", "routing mode direct needs every node on one underlay subnet")
	if out, errOut, code := Run(t, m.bin, "validate", "-f", m.file); code != 1 || !strings.Contains(errOut, m.file+":") {
		t.Errorf("validate direct across subnets: exit %d\n%s%s", code, out, errOut)
	}
	m.routing = "auto"

	// An uplink the node namespace does not have.
	m.nodes[0].uplink = "eth9"
	expectFailure("missing uplink", `uplink "eth9" not found in the node namespace`)
	m.nodes[0].uplink = ""

	// A foreign VXLAN device already holds the VNI and port we want.
	ip(t, nsA, "link", "add", "fvx0", "type", "vxlan", "id", "2", "dstport", "4789", "dev", "eth0")
	m.vni = 2
	expectFailure("vxlan clash", "node/fvx0 already uses VNI 2 and UDP port 4789")
	ip(t, nsA, "link", "del", "fvx0")
	m.vni = 1

	// cluster.mtu leaving no room for the VXLAN header.
	m.mtu = 1500
	expectFailure("mtu", "use at most 1450")
	m.mtu = 0

	// A peer the node has no route to.
	ip(t, nsA, "route", "del", "default")
	expectFailure("unreachable peer", `peer node "`+m.node("c")+`" (172.31.2.2) is unreachable`)
	ip(t, nsA, "route", "add", "default", "via", "172.31.1.254", "dev", "eth0", "proto", "static")

	m.file = good
	if p := m.plan("a"); len(p.Changes) != 0 {
		t.Errorf("plan with the good file after the bad ones: %+v", p.Changes)
	}
	m.checkAll(func() []mpod { m.serve(m.pods); return m.pods }())
}

// kernelHasIPvlan creates an ipvlan in a throwaway namespace.
func kernelHasIPvlan(t *testing.T) bool {
	ns := nstest.TempNetns(t, "nrivp")
	ip(t, ns, "link", "add", "p0", "type", "veth", "peer", "name", "p1")
	return exec.Command("ip", "-n", ns, "link", "add", "iv0", "link", "p0", "type", "ipvlan", "mode", "l2").Run() == nil
}

// TestIPvlanUnavailable: on a kernel without ipvlan, a file with an ipvlan
// pod fails plan and apply with the probe's clear error, naming the pod,
// before any change (no namespace, no link).
func TestIPvlanUnavailable(t *testing.T) {
	nstest.RequireRoot(t)
	if kernelHasIPvlan(t) {
		t.Skip("this kernel has ipvlan: nothing to refuse")
	}
	m := newMulti(t, "iv")
	m.nodes = []mnode{{name: "a", addr: "172.31.1.2/24", cidr: "10.244.1.0/24"}}
	m.pods = []mpod{{"a1", "a", "10.244.1.10", "veth"}}
	m.up()
	nsA := m.nodeNS("a")
	m.pods = append(m.pods, mpod{"d", "a", "10.244.1.40", "ipvlan"}, mpod{"m", "a", "10.244.1.30", "macvlan"})
	m.pods[2].mode = "veth" // ipvlan and macvlan cannot share an uplink; keep the error about the kernel
	m.write()
	before := snapshot(t, nsA)
	for _, cmd := range [][]string{{"plan"}, {"plan", "-o", "json"}, {"apply"}, {"apply", "--dry-run"}} {
		out, errOut, code := m.run("a", cmd...)
		if code != 1 || !strings.Contains(errOut, "ipvlan is not available in this kernel: pod t/d") {
			t.Errorf("%v: exit %d, want 1 with the clear error\n%s%s", cmd, code, out, errOut)
		}
	}
	if after := snapshot(t, nsA); after != before {
		t.Errorf("the node changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	for _, p := range m.pods[1:] {
		if netnsExists(m.netns(p)) {
			t.Errorf("netns of pod %s was created", p.name)
		}
	}
}
