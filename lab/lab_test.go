package lab

import (
	"context"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/netreconcile/netreconcile/internal/nstest"
	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/spec"
)

// testLab returns a 3-node topology (a, b in 172.31.1.0/24; c in
// 172.31.2.0/24) with node names unique to this run, and tears its lab
// down at cleanup, checking that nothing is left.
func testLab(t *testing.T) *spec.Resolved {
	t.Helper()
	nstest.RequireRoot(t)
	sfx := nstest.UniqueName("")[1:7]
	r := &spec.Resolved{Nodes: []spec.ResolvedNode{
		{Name: "a" + sfx, Address: netip.MustParsePrefix("172.31.1.2/24"), Uplink: "eth0"},
		{Name: "b" + sfx, Address: netip.MustParsePrefix("172.31.1.3/24"), Uplink: "eth0"},
		{Name: "c" + sfx, Address: netip.MustParsePrefix("172.31.2.2/24"), Uplink: "uplink0"},
	}}
	rootLinks := linkNames(t, "")
	t.Cleanup(func() {
		if err := Teardown(r); err != nil {
			t.Errorf("teardown: %v", err)
		}
		for _, ns := range append(nodeNetns(r), UnderlayNetns(r)) {
			if _, err := os.Stat(nsutil.Path(ns)); !os.IsNotExist(err) {
				t.Errorf("netns %s left behind (stat: %v)", ns, err)
			}
		}
		if got := linkNames(t, ""); !slices.Equal(got, rootLinks) {
			t.Errorf("root netns links changed: %v, were %v", got, rootLinks)
		}
	})
	return r
}

func nodeNetns(r *spec.Resolved) []string {
	var out []string
	for _, n := range r.Nodes {
		out = append(out, NodeNetns(n.Name))
	}
	return out
}

// handle returns a netlink handle on ns, closed at cleanup.
func handle(t *testing.T, ns string) *netlink.Handle {
	t.Helper()
	h, err := nsutil.Handle(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func linkNames(t *testing.T, ns string) []string {
	t.Helper()
	links, err := listRetry(handle(t, ns).LinkList)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	return names
}

// indexes maps "netns/link" to ifindex for every link of the lab.
func indexes(t *testing.T, in *Info) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, ns := range append(nodeNetnsOf(in), in.Underlay) {
		links, err := listRetry(handle(t, ns).LinkList)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links {
			out[ns+"/"+l.Attrs().Name] = l.Attrs().Index
		}
	}
	return out
}

func nodeNetnsOf(in *Info) []string {
	var out []string
	for _, n := range in.Nodes {
		out = append(out, n.Netns)
	}
	return out
}

// checkNode verifies a node's uplink (veth, up, MTU, only its address) and
// its only default route.
func checkNode(t *testing.T, n NodeInfo) {
	t.Helper()
	h := handle(t, n.Netns)
	l, err := h.LinkByName(n.Uplink)
	if err != nil {
		t.Fatalf("node %s: uplink: %v", n.Name, err)
	}
	if _, ok := l.(*netlink.Veth); !ok || l.Attrs().Flags&net.FlagUp == 0 || l.Attrs().MTU != 1500 {
		t.Errorf("node %s: uplink %s is %s, flags %v, mtu %d", n.Name, n.Uplink, l.Type(), l.Attrs().Flags, l.Attrs().MTU)
	}
	addrs, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || addrs[0].IPNet.String() != n.Address.String() {
		t.Errorf("node %s: uplink addresses %v, want only %s", n.Name, addrs, n.Address)
	}
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var defaults []netlink.Route
	for _, r := range routes {
		if r.Dst == nil || isZeroPrefix(r.Dst) {
			defaults = append(defaults, r)
		}
	}
	if len(defaults) != 1 || defaults[0].Gw.String() != n.Router.String() || defaults[0].LinkIndex != l.Attrs().Index {
		t.Errorf("node %s: default routes %v, want one via %s dev %s", n.Name, defaults, n.Router, n.Uplink)
	}
}

// checkTraffic requires TCP and UDP round trips from the first node to
// the two others: b on the same bridge, c through the underlay router.
func checkTraffic(t *testing.T, in *Info) {
	t.Helper()
	from := in.Nodes[0]
	for _, to := range in.Nodes[1:] {
		// Port 0: servers of earlier checks are still listening.
		addr := netip.AddrPortFrom(to.Address.Addr(), 0).String()
		tcp := nstest.StartEchoTCP(t, to.Netns, addr, to.Name).Addr().String()
		udp := nstest.StartEchoUDP(t, to.Netns, addr, to.Name).LocalAddr().String()
		if got := nstest.CheckTCP(t, from.Netns, tcp); got != to.Name {
			t.Errorf("tcp %s -> %s answered by %q", from.Name, to.Name, got)
		}
		if got := nstest.CheckUDP(t, from.Netns, udp); got != to.Name {
			t.Errorf("udp %s -> %s answered by %q", from.Name, to.Name, got)
		}
	}
}

func TestBuild(t *testing.T) {
	r := testLab(t)
	rootForward, err := nsutil.ReadSysctl("", "net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in, err := Build(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built:\n%s", in)
	if len(in.Changes) == 0 {
		t.Error("first build reports no changes")
	}
	for _, ns := range append(nodeNetns(r), UnderlayNetns(r)) {
		if !nsutil.Exists(ns) {
			t.Errorf("netns %s missing", ns)
		}
	}
	if v, err := nsutil.ReadSysctl(in.Underlay, "net/ipv4/ip_forward"); err != nil || v != "1" {
		t.Errorf("underlay ip_forward = %q, %v; want 1", v, err)
	}
	if v, _ := nsutil.ReadSysctl("", "net/ipv4/ip_forward"); v != rootForward {
		t.Errorf("root netns ip_forward changed: %s -> %s", rootForward, v)
	}
	for _, n := range in.Nodes {
		checkNode(t, n)
	}
	if in.Nodes[0].Bridge != in.Nodes[1].Bridge || in.Nodes[0].Bridge == in.Nodes[2].Bridge {
		t.Errorf("bridges: a %s, b %s, c %s; want a and b together, c apart", in.Nodes[0].Bridge, in.Nodes[1].Bridge, in.Nodes[2].Bridge)
	}
	checkTraffic(t, in)

	t.Run("second build changes nothing", func(t *testing.T) {
		before := indexes(t, in)
		again, err := Build(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if len(again.Changes) != 0 {
			t.Errorf("second build changed: %q", again.Changes)
		}
		if after := indexes(t, in); !maps.Equal(before, after) {
			t.Errorf("ifindexes changed:\nbefore %v\nafter  %v", before, after)
		}
	})

	t.Run("partial state is completed", func(t *testing.T) {
		a, b, c := in.Nodes[0], in.Nodes[1], in.Nodes[2]
		before := indexes(t, in)
		hb := handle(t, b.Netns)
		l, err := hb.LinkByName(b.Uplink)
		if err != nil {
			t.Fatal(err)
		}
		if err := hb.LinkDel(l); err != nil {
			t.Fatal(err)
		}
		hc := handle(t, c.Netns)
		routes, err := hc.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, rt := range routes {
			if rt.Dst == nil || isZeroPrefix(rt.Dst) {
				if err := hc.RouteDel(&rt); err != nil {
					t.Fatal(err)
				}
			}
		}
		ha := handle(t, a.Netns)
		la, err := ha.LinkByName(a.Uplink)
		if err != nil {
			t.Fatal(err)
		}
		extra, _ := netlink.ParseAddr("172.31.1.99/24")
		if err := ha.AddrAdd(la, extra); err != nil {
			t.Fatal(err)
		}
		if err := nsutil.WriteSysctl(in.Underlay, "net/ipv4/ip_forward", "0"); err != nil {
			t.Fatal(err)
		}
		if err := nsutil.Delete(c.Netns); err != nil {
			t.Fatal(err)
		}

		fixed, err := Build(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("repairs: %q", fixed.Changes)
		if len(fixed.Changes) == 0 {
			t.Error("repairing build reports no changes")
		}
		for _, n := range fixed.Nodes {
			checkNode(t, n)
		}
		after := indexes(t, in)
		if key := a.Netns + "/" + a.Uplink; before[key] != after[key] {
			t.Errorf("node a's intact uplink was recreated: ifindex %d -> %d", before[key], after[key])
		}
		checkTraffic(t, fixed)
		if again, err := Build(ctx, r); err != nil || len(again.Changes) != 0 {
			t.Errorf("build after repair: changes %q, err %v", again.Changes, err)
		}
	})

	t.Run("teardown is idempotent", func(t *testing.T) {
		if err := Teardown(r); err != nil {
			t.Fatal(err)
		}
		if err := Teardown(r); err != nil {
			t.Fatalf("second teardown: %v", err)
		}
		for _, ns := range append(nodeNetns(r), UnderlayNetns(r)) {
			if nsutil.Exists(ns) {
				t.Errorf("netns %s still exists", ns)
			}
		}
	})
}

// TestBuildMovesNode changes a node's subnet between two builds: its
// uplink moves to the new subnet's bridge and the unused bridge goes.
func TestBuildMovesNode(t *testing.T) {
	r := testLab(t)
	ctx := context.Background()
	if _, err := Build(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.Nodes[1].Address = netip.MustParsePrefix("172.31.2.3/24") // b joins c
	r.Nodes[0].Address = netip.MustParsePrefix("172.31.3.2/24") // a alone elsewhere
	in, err := Build(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("changes: %q", in.Changes)
	for _, n := range in.Nodes {
		checkNode(t, n)
	}
	var bridges []string
	for _, name := range linkNames(t, in.Underlay) {
		if l, err := handle(t, in.Underlay).LinkByName(name); err == nil {
			if _, ok := l.(*netlink.Bridge); ok {
				bridges = append(bridges, name)
			}
		}
	}
	want := []string{in.Subnets[0].Bridge, in.Subnets[1].Bridge}
	slices.Sort(want)
	if !slices.Equal(bridges, want) {
		t.Errorf("underlay bridges %v, want %v", bridges, want)
	}
	checkTraffic(t, in)
}

func TestBuildCanceled(t *testing.T) {
	r := testLab(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Build(ctx, r); err == nil {
		t.Fatal("build with a canceled context succeeded")
	}
	// Whatever it did is completed by the next build.
	in, err := Build(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	checkTraffic(t, in)
}

// TestBuildIPv6 builds a lab on IPv6 underlay subnets: the router is the
// subnet's last address, DAD does not hold addresses back, and the
// underlay forwards IPv6.
func TestBuildIPv6(t *testing.T) {
	r := testLab(t)
	r.Nodes[0].Address = netip.MustParsePrefix("fd00:31:1::2/64")
	r.Nodes[1].Address = netip.MustParsePrefix("fd00:31:1::3/64")
	r.Nodes[2].Address = netip.MustParsePrefix("fd00:31:2::2/64")
	in, err := Build(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if got := in.Nodes[0].Router.String(); got != "fd00:31:1:0:ffff:ffff:ffff:ffff" {
		t.Errorf("router = %s", got)
	}
	if v, err := nsutil.ReadSysctl(in.Underlay, "net/ipv6/conf/all/forwarding"); err != nil || v != "1" {
		t.Errorf("underlay ipv6 forwarding = %q, %v", v, err)
	}
	checkTraffic(t, in)
	if again, err := Build(context.Background(), r); err != nil || len(again.Changes) != 0 {
		t.Errorf("second build: changes %q, err %v", again.Changes, err)
	}
}

// TestBuildReplacesStaleNetnsFile: a file left where a lab namespace
// should be (an interrupted `ip netns add`) is replaced, not trusted.
func TestBuildReplacesStaleNetnsFile(t *testing.T) {
	r := testLab(t)
	stale := nsutil.Path(NodeNetns(r.Nodes[0].Name))
	if err := os.MkdirAll(nsutil.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	in, err := Build(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	checkNode(t, in.Nodes[0])
	checkTraffic(t, in)
}
