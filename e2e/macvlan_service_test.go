package e2e

import (
	"testing"

	"github.com/netreconcile/netreconcile/internal/nstest"
)

// TestMacvlanServiceStaysOnL2 shows that a macvlan client's clusterIP
// traffic to a macvlan backend on its node goes straight over the uplink's
// macvlan bridge, as its pod-IP traffic does, not through the node's shim:
// once the backend has answered (and so announced its MAC), the datapath
// readdresses translated frames to it. A bulk transfer through the
// service must leave the shim (almost) untouched.
func TestMacvlanServiceStaysOnL2(t *testing.T) {
	l := newSvcLab(t, "ml")
	l.nodes = []svcNode{{"a", "172.31.1.2/24", "10.244.1.0/24"}}
	l.pods = []svcPod{
		{name: "cl", node: "a", ip: "10.244.1.30", mode: "macvlan"},
		{name: "be", node: "a", ip: "10.244.1.31", mode: "macvlan", labels: map[string]string{"app": "sink"}},
	}
	l.services = []svcService{{name: "sink", ip: "10.96.0.20", selector: map[string]string{"app": "sink"},
		ports: []string{"{name: tcp, port: 80, targetPort: 9000}"}}}
	l.up()
	nstest.StartSink(t, l.netns("be"), "10.244.1.31:9000")

	// One exchange first: the backend's reply ARPs for the client, which
	// learns the backend's MAC.
	if _, _, err := nstest.Transfer(l.netns("cl"), "10.96.0.20:80", 1000); err != nil {
		t.Fatal(err)
	}
	shim0, _ := linkCounters(t, l.nodeNS("a"), "nrmv0")
	_, client0 := linkCounters(t, l.netns("cl"), "eth0")
	const n = 64 << 20
	got, d, err := nstest.Transfer(l.netns("cl"), "10.96.0.20:80", n)
	if err != nil || got != n {
		t.Fatalf("transfer through the clusterIP: %d of %d bytes, %v", got, n, err)
	}
	shim, _ := linkCounters(t, l.nodeNS("a"), "nrmv0")
	_, client := linkCounters(t, l.netns("cl"), "eth0")
	shim, client = shim-shim0, client-client0
	t.Logf("64 MiB through the clusterIP in %v: client sent %d packets, the shim received %d", d, client, shim)
	if client < 1000 || shim*20 > client {
		t.Errorf("the shim received %d of the client's %d packets: translated traffic detours through the node\nclient's neighbours:\n%s",
			shim, client, ip(t, l.netns("cl"), "neigh", "show"))
	}
}
