package routing

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

func node(name, addr, cidr string) spec.ResolvedNode {
	p := netip.MustParsePrefix(cidr)
	return spec.ResolvedNode{Name: name, Address: netip.MustParsePrefix(addr), Uplink: "eth0", PodCIDR: p, Gateway: p.Addr().Next()}
}

// cluster: a and b share 172.31.1.0/24, c is in 172.31.2.0/24.
func cluster(mode string) *spec.Resolved {
	return &spec.Resolved{Routing: mode, VNI: 7, VXLANPort: 8472, Nodes: []spec.ResolvedNode{
		node("a", "172.31.1.2/24", "10.244.1.0/24"),
		node("b", "172.31.1.3/24", "10.244.2.0/24"),
		node("c", "172.31.2.2/24", "10.244.3.0/24"),
	}}
}

func kinds(peers []Peer) string {
	var b strings.Builder
	for _, p := range peers {
		b.WriteString(p.Node.Name)
		if p.VXLAN {
			b.WriteString("=vxlan ")
		} else {
			b.WriteString("=direct ")
		}
	}
	return strings.TrimSpace(b.String())
}

func TestPeers(t *testing.T) {
	for _, tc := range []struct {
		mode, node, want string
	}{
		{"", "a", "b=direct c=vxlan"},
		{spec.RoutingAuto, "a", "b=direct c=vxlan"},
		{spec.RoutingAuto, "c", "a=vxlan b=vxlan"},
		{spec.RoutingVXLAN, "a", "b=vxlan c=vxlan"},
		{spec.RoutingDirect, "b", "a=direct c=direct"},
	} {
		if got := kinds(Peers(cluster(tc.mode), tc.node)); got != tc.want {
			t.Errorf("mode %q node %s: %s, want %s", tc.mode, tc.node, got, tc.want)
		}
	}
	if Peers(cluster(""), "nope") != nil {
		t.Error("peers of an unknown node")
	}
}

func TestSameSubnetIsSymmetric(t *testing.T) {
	// A /16 that contains a /24's address is not a shared subnet unless
	// the /24 also contains the other: both nodes must agree.
	wide, narrow := netip.MustParsePrefix("172.31.9.9/16"), netip.MustParsePrefix("172.31.1.2/24")
	if SameSubnet(wide, narrow) || SameSubnet(narrow, wide) {
		t.Error("mismatched prefixes count as one subnet")
	}
	if !SameSubnet(netip.MustParsePrefix("172.31.1.2/24"), netip.MustParsePrefix("172.31.1.3/24")) {
		t.Error("same /24 is not one subnet")
	}
}

func TestPodMTU(t *testing.T) {
	flat := cluster(spec.RoutingAuto)
	flat.Nodes = flat.Nodes[:2]
	single := cluster(spec.RoutingVXLAN)
	single.Nodes = single.Nodes[:1]
	fixed := cluster(spec.RoutingAuto)
	fixed.MTU = 1400
	for _, tc := range []struct {
		name string
		r    *spec.Resolved
		want int
	}{
		{"auto, one pair across subnets: every node", cluster(spec.RoutingAuto), 1450},
		{"auto, one subnet", flat, 1500},
		{"direct", cluster(spec.RoutingDirect), 1500},
		{"vxlan, even alone", single, 1450},
		{"cluster.mtu wins", fixed, 1400},
	} {
		if got := PodMTU(tc.r, 1500); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestVTEP(t *testing.T) {
	n := node("c", "172.31.2.2/24", "10.244.3.0/24")
	if got := VTEP(&n); got != netip.MustParseAddr("10.244.3.0") {
		t.Errorf("VTEP %s", got)
	}
	if got := VTEPMAC(&n); got != "0e:58:0a:f4:03:00" {
		t.Errorf("VTEP MAC %s", got)
	}
}

func desired(t *testing.T, r *spec.Resolved, node string) *state.State {
	t.Helper()
	s := state.New()
	if err := Desired(r, node, 1500, s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDesiredAuto(t *testing.T) {
	s := desired(t, cluster(spec.RoutingAuto), "a")
	direct, _ := s.Get(state.KindRoute, "node/10.244.2.0/24").(*state.Route)
	if direct == nil || direct.Dev != "eth0" || direct.Gw.String() != "172.31.1.3" || direct.OnLink || direct.Owner() != "peer/b" {
		t.Errorf("direct route to b: %+v", direct)
	}
	dev, _ := s.Get(state.KindLink, "node/"+Device).(*state.Link)
	if dev == nil {
		t.Fatal("no vxlan device")
	}
	if dev.Type != "vxlan" || dev.VNI != 7 || dev.Port != 8472 || dev.Local.String() != "172.31.1.2" || dev.Learning ||
		dev.Parent != "eth0" || dev.MTU != 1450 || dev.HWAddr != "0e:58:0a:f4:01:00" || dev.Alias != "netreconcile/a/vxlan" {
		t.Errorf("vxlan device: %+v", dev)
	}
	if s.Get(state.KindAddr, "node/nrvxlan0/10.244.1.0/32") == nil {
		t.Error("no VTEP address")
	}
	nb, _ := s.Get(state.KindNeigh, "node/nrvxlan0/10.244.3.0").(*state.Neigh)
	if nb == nil || nb.MAC != "0e:58:0a:f4:03:00" {
		t.Errorf("neighbour of c's VTEP: %+v", nb)
	}
	if s.Get(state.KindNeigh, "node/nrvxlan0/fdb/0e:58:0a:f4:03:00/172.31.2.2") == nil {
		t.Error("no fdb entry for c")
	}
	rt, _ := s.Get(state.KindRoute, "node/10.244.3.0/24").(*state.Route)
	if rt == nil || rt.Dev != Device || rt.Gw.String() != "10.244.3.0" || !rt.OnLink {
		t.Errorf("vxlan route to c: %+v", rt)
	}
	// b is direct: nothing for it on the VXLAN device.
	if s.Get(state.KindNeigh, "node/nrvxlan0/10.244.2.0") != nil {
		t.Error("a neighbour for a direct peer")
	}
	if got := s.Len(); got != 6 {
		t.Errorf("%d objects, want 6 (device, address, route to b, neighbour+fdb+route to c)", got)
	}
}

func TestDesiredDirectOnly(t *testing.T) {
	r := cluster(spec.RoutingAuto)
	r.Nodes = r.Nodes[:2]
	s := desired(t, r, "a")
	if s.Get(state.KindLink, "node/"+Device) != nil || s.Len() != 1 {
		t.Errorf("a flat cluster needs one route and no device; got %d objects", s.Len())
	}
	r.Nodes = r.Nodes[:1]
	if s := desired(t, r, "a"); s.Len() != 0 {
		t.Errorf("a single node needs nothing; got %d objects", s.Len())
	}
}

func TestDesiredDefaults(t *testing.T) {
	r := cluster(spec.RoutingVXLAN)
	r.VNI, r.VXLANPort = 0, 0
	dev := desired(t, r, "a").Get(state.KindLink, "node/"+Device).(*state.Link)
	if dev.VNI != spec.DefaultVNI || dev.Port != spec.DefaultVXLANPort {
		t.Errorf("defaults: vni %d port %d", dev.VNI, dev.Port)
	}
}

// Moving b into c's subnet changes, on a, only b's objects (its route
// moves to the VXLAN device and gains a neighbour and an FDB entry), and,
// on c, only b's objects the other way round.
func TestMoveChangesOnlyThatPeer(t *testing.T) {
	before := cluster(spec.RoutingAuto)
	after := cluster(spec.RoutingAuto)
	after.Nodes[1].Address = netip.MustParsePrefix("172.31.2.3/24")
	for _, n := range []string{"a", "c"} {
		was, now := desired(t, before, n), desired(t, after, n)
		for _, k := range state.Kinds() {
			for _, o := range now.Of(k) {
				prev := was.Get(k, o.Key())
				if prev != nil && len(state.Diff(prev, o)) == 0 {
					continue
				}
				if o.Owner() != "peer/b" {
					t.Errorf("node %s: %s %s changed (owner %s)", n, k, o.Key(), o.Owner())
				}
			}
			for _, o := range was.Of(k) {
				if now.Get(k, o.Key()) == nil && o.Owner() != "peer/b" {
					t.Errorf("node %s: %s %s removed (owner %s)", n, k, o.Key(), o.Owner())
				}
			}
		}
	}
	a := desired(t, after, "a")
	if rt := a.Get(state.KindRoute, "node/10.244.2.0/24").(*state.Route); rt.Dev != Device {
		t.Errorf("on a, b is now behind the router: route %+v", rt)
	}
	c := desired(t, after, "c")
	if rt := c.Get(state.KindRoute, "node/10.244.2.0/24").(*state.Route); rt.Dev != "eth0" {
		t.Errorf("on c, b is now a neighbour: route %+v", rt)
	}
}

func TestCheckMTU(t *testing.T) {
	r := cluster(spec.RoutingAuto)
	r.MTU = 1480
	err := Check(r, "a", 1500)
	if !errors.Is(err, ErrMTU) || !strings.Contains(err.Error(), "use at most 1450") {
		t.Errorf("Check: %v", err)
	}
	r.Nodes = r.Nodes[:2] // no VXLAN peer: any MTU the uplink carries
	if err := Check(r, "a", 1500); err != nil {
		t.Errorf("flat: %v", err)
	}
}

// TestClusterUsesVXLANPairs: the one look at each node that equal prefix
// lengths allow answers as every pair does, mixed lengths included (where
// being in one subnet is not transitive).
func TestClusterUsesVXLANPairs(t *testing.T) {
	pairs := func(r *spec.Resolved) bool {
		for i := range r.Nodes {
			for j := range r.Nodes {
				if !SameSubnet(r.Nodes[i].Address, r.Nodes[j].Address) {
					return true
				}
			}
		}
		return false
	}
	rng := rand.New(rand.NewPCG(1, 2))
	lengths := []int{16, 24, 23}
	for run := range 2000 {
		r := &spec.Resolved{}
		for i := range 1 + rng.IntN(5) {
			addr := netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(3)), byte(1 + rng.IntN(3))})
			bits := lengths[0]
			if run%2 == 1 {
				bits = lengths[rng.IntN(len(lengths))]
			}
			r.Nodes = append(r.Nodes, spec.ResolvedNode{Name: "n" + strconv.Itoa(i), Address: netip.PrefixFrom(addr, bits)})
		}
		if got, want := ClusterUsesVXLAN(r), pairs(r); got != want {
			t.Fatalf("nodes %v: ClusterUsesVXLAN %v, every pair says %v", r.Nodes, got, want)
		}
	}
}
