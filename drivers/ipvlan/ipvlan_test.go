package ipvlan

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

func testNode(pods ...spec.ResolvedPod) *drivers.Node {
	r := &spec.Resolved{Nodes: []spec.ResolvedNode{{Name: "n1", Address: netip.MustParsePrefix("172.31.1.2/24"),
		Uplink: "eth0", PodCIDR: netip.MustParsePrefix("10.244.1.0/24"), Gateway: netip.MustParseAddr("10.244.1.1")}}, Pods: pods}
	return &drivers.Node{Name: "n1", Spec: &r.Nodes[0], Cluster: r, MTU: 1500}
}

func pod(name, ip, mode string) spec.ResolvedPod {
	return spec.ResolvedPod{Key: "x/" + name, Name: name, Namespace: "x", Node: "n1", IP: netip.MustParseAddr(ip), Mode: mode, Netns: "x-" + name}
}

func TestNodeAndPod(t *testing.T) {
	n := testNode(pod("d", "10.244.1.40", "ipvlan"), pod("v", "10.244.1.10", "veth"))
	s := state.New()
	if err := (Driver{}).Node(n, s); err != nil {
		t.Fatal(err)
	}
	if err := (Driver{}).Pod(n, &n.Cluster.Pods[0], s); err != nil {
		t.Fatal(err)
	}
	sh, _ := s.Get(state.KindLink, "node/"+Shim).(*state.Link)
	if sh == nil || sh.Type != "ipvlan" || sh.Mode != "l2" || sh.Parent != "eth0" || sh.HWAddr != "" {
		t.Errorf("shim: %+v", sh)
	}
	eth0, _ := s.Get(state.KindLink, "x-d/eth0").(*state.Link)
	if eth0 == nil || eth0.Type != "ipvlan" || eth0.Mode != "l2" || eth0.HWAddr != "" {
		t.Errorf("pod link (ipvlan children share the uplink's MAC): %+v", eth0)
	}
	for _, key := range []string{"node/nrip0/proxy/10.244.1.10", "node/nrip0/10.244.1.1/32"} {
		k := state.KindNeigh
		if key == "node/nrip0/10.244.1.1/32" {
			k = state.KindAddr
		}
		if s.Get(k, key) == nil {
			t.Errorf("missing %s", key)
		}
	}
	if s.Get(state.KindRoute, "node/10.244.1.40/32") == nil || s.Get(state.KindAddr, "x-d/eth0/10.244.1.40/24") == nil {
		t.Error("pod route or address missing")
	}
}

func TestMixedWithMacvlanRefused(t *testing.T) {
	n := testNode(pod("d", "10.244.1.40", "ipvlan"), pod("m", "10.244.1.30", "macvlan"))
	err := (Driver{}).Node(n, state.New())
	if !errors.Is(err, ErrMixed) {
		t.Fatalf("want ErrMixed, got %v", err)
	}
}

func TestCheck(t *testing.T) {
	if err := (Driver{}).Check(&drivers.Kernel{LinkTypes: map[string]bool{"ipvlan": false}}); err == nil ||
		err.Error() != "ipvlan is not available in this kernel" {
		t.Errorf("absent: %v", err)
	}
	if err := (Driver{}).Check(&drivers.Kernel{LinkTypes: map[string]bool{"ipvlan": true}}); err != nil {
		t.Errorf("present: %v", err)
	}
}
