package macvlan

import (
	"net/netip"
	"testing"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

func testNode(pods ...spec.ResolvedPod) *drivers.Node {
	r := &spec.Resolved{Nodes: []spec.ResolvedNode{{Name: "n1", Address: netip.MustParsePrefix("172.31.1.2/24"),
		Uplink: "ens3", PodCIDR: netip.MustParsePrefix("10.244.1.0/24"), Gateway: netip.MustParseAddr("10.244.1.1")}}, Pods: pods}
	return &drivers.Node{Name: "n1", Spec: &r.Nodes[0], Cluster: r, MTU: 1450}
}

func pod(name, ip, mode string) spec.ResolvedPod {
	return spec.ResolvedPod{Key: "x/" + name, Name: name, Namespace: "x", Node: "n1", IP: netip.MustParseAddr(ip), Mode: mode, Netns: "x-" + name}
}

func TestNodeAndPod(t *testing.T) {
	m, v, b := pod("m", "10.244.1.30", "macvlan"), pod("v", "10.244.1.10", "veth"), pod("b", "10.244.1.20", "bridge")
	n := testNode(m, v, b)
	s := state.New()
	if err := (Driver{}).Node(n, s); err != nil {
		t.Fatal(err)
	}
	if err := (Driver{}).Pod(n, &n.Cluster.Pods[0], s); err != nil {
		t.Fatal(err)
	}
	sh, _ := s.Get(state.KindLink, "node/"+Shim).(*state.Link)
	if sh == nil || sh.Type != "macvlan" || sh.Mode != "bridge" || sh.Parent != "ens3" || sh.MTU != 1450 ||
		sh.HWAddr != "0a:58:0a:f4:01:01" || sh.Sysctls["conf/arp_ignore"] != "1" || sh.Sysctls["conf/arp_announce"] != "2" ||
		sh.Sysctls["neigh/proxy_delay"] != "0" || sh.ProxyARP {
		t.Errorf("shim: %+v", sh)
	}
	if s.Get(state.KindAddr, "node/nrmv0/10.244.1.1/32") == nil {
		t.Error("gateway /32 on the shim missing")
	}
	for _, ip := range []string{"10.244.1.10", "10.244.1.20"} {
		if s.Get(state.KindNeigh, "node/nrmv0/proxy/"+ip) == nil {
			t.Errorf("no proxy entry for %s", ip)
		}
	}
	if s.Get(state.KindNeigh, "node/nrmv0/proxy/10.244.1.30") != nil {
		t.Error("a proxy entry for a macvlan pod: siblings answer for themselves")
	}
	if s.Get(state.KindSysctl, "node/net/ipv4/ip_forward") == nil {
		t.Error("forwarding not wanted")
	}
	eth0, _ := s.Get(state.KindLink, "x-m/eth0").(*state.Link)
	if eth0 == nil || eth0.Type != "macvlan" || eth0.Parent != "ens3" || eth0.Mode != "bridge" || eth0.HWAddr != "0a:58:0a:f4:01:1e" ||
		eth0.Alias != "netreconcile/n1/pod/x/m" || eth0.MTU != 1450 {
		t.Errorf("pod link: %+v", eth0)
	}
	if s.Get(state.KindAddr, "x-m/eth0/10.244.1.30/24") == nil {
		t.Error("pod address with the pod CIDR prefix missing")
	}
	if rt, _ := s.Get(state.KindRoute, "x-m/0.0.0.0/0").(*state.Route); rt == nil || rt.Gw.String() != "10.244.1.1" || !rt.OnLink {
		t.Errorf("pod default route: %+v", rt)
	}
	if rt, _ := s.Get(state.KindRoute, "node/10.244.1.30/32").(*state.Route); rt == nil || rt.Dev != Shim || rt.Scope != "link" {
		t.Errorf("node route to the pod: %+v", rt)
	}
}

func TestCheck(t *testing.T) {
	if err := (Driver{}).Check(&drivers.Kernel{LinkTypes: map[string]bool{}}); err != nil {
		t.Errorf("unprobed: %v", err)
	}
	if err := (Driver{}).Check(&drivers.Kernel{LinkTypes: map[string]bool{"macvlan": false}}); err != ErrUnavailable {
		t.Errorf("absent: %v", err)
	}
}
