package spec

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
)

// allocTopology puts the named pods (in the default namespace) on one
// node whose podCIDR is cidr.
func allocTopology(cidr string, pods ...Pod) *Topology {
	return &Topology{
		APIVersion: APIVersion,
		Kind:       Kind,
		Cluster:    Cluster{PodCIDR: "10.0.0.0/8"},
		Nodes:      []Node{{Name: "n", Address: "172.31.1.2/24", PodCIDR: cidr}},
		Pods:       pods,
	}
}

func podsNamed(names ...string) []Pod {
	var out []Pod
	for _, n := range names {
		out = append(out, Pod{Name: n, Node: "n"})
	}
	return out
}

// addresses resolves a topology and returns each pod's address by key.
func addresses(t *testing.T, top *Topology) map[string]netip.Addr {
	t.Helper()
	r, err := Resolve(top, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]netip.Addr{}
	for _, p := range r.Pods {
		out[p.Key] = p.IP
	}
	return out
}

// manyNames returns n pod names whose preferred addresses in cidr are all
// distinct, the case the stability guarantee covers.
func manyNames(t *testing.T, cidr string, n int) []string {
	t.Helper()
	a := newAllocator(netip.MustParsePrefix(cidr))
	seen := map[netip.Addr]bool{}
	var names []string
	for i := 0; len(names) < n; i++ {
		name := fmt.Sprintf("pod-%d", i)
		ip := a.preferred("default/" + name)
		if seen[ip] {
			continue
		}
		seen[ip] = true
		names = append(names, name)
	}
	return names
}

func assertSame(t *testing.T, before, after map[string]netip.Addr, what string) {
	t.Helper()
	for k, ip := range before {
		if got, ok := after[k]; ok && got != ip {
			t.Errorf("%s moved %s from %s to %s", what, k, ip, got)
		}
	}
}

func TestAllocationDeterministic(t *testing.T) {
	names := manyNames(t, "10.1.0.0/16", 50)
	first := addresses(t, allocTopology("10.1.0.0/16", podsNamed(names...)...))
	for range 5 {
		again := addresses(t, allocTopology("10.1.0.0/16", podsNamed(names...)...))
		assertSame(t, first, again, "a second run")
	}
	// The preferred address depends only on namespace/name and the CIDR.
	a := newAllocator(netip.MustParsePrefix("10.1.0.0/16"))
	if got := first["default/"+names[0]]; got != a.preferred("default/"+names[0]) {
		t.Errorf("first pod got %s, not its preferred %s", got, a.preferred("default/"+names[0]))
	}
}

func TestAllocationStableUnderAppend(t *testing.T) {
	const cidr = "10.1.0.0/16"
	names := manyNames(t, cidr, 41)
	base := addresses(t, allocTopology(cidr, podsNamed(names[:40]...)...))
	after := addresses(t, allocTopology(cidr, podsNamed(names...)...))
	assertSame(t, base, after, "appending a pod")
}

func TestAllocationStableUnderInsert(t *testing.T) {
	const cidr = "10.1.0.0/16"
	names := manyNames(t, cidr, 31)
	extra, rest := names[30], names[:30]
	base := addresses(t, allocTopology(cidr, podsNamed(rest...)...))
	for i := 0; i <= len(rest); i++ {
		withExtra := slices.Insert(slices.Clone(rest), i, extra)
		after := addresses(t, allocTopology(cidr, podsNamed(withExtra...)...))
		assertSame(t, base, after, fmt.Sprintf("inserting a pod at %d", i))
	}
}

func TestAllocationStableUnderRemove(t *testing.T) {
	const cidr = "10.1.0.0/16"
	names := manyNames(t, cidr, 30)
	base := addresses(t, allocTopology(cidr, podsNamed(names...)...))
	for i := range names {
		without := slices.Delete(slices.Clone(names), i, i+1)
		after := addresses(t, allocTopology(cidr, podsNamed(without...)...))
		assertSame(t, base, after, fmt.Sprintf("removing pod %d", i))
	}
}

func TestAllocationStableUnderExplicitIPElsewhere(t *testing.T) {
	const cidr = "10.1.0.0/16"
	names := manyNames(t, cidr, 20)
	base := addresses(t, allocTopology(cidr, podsNamed(names...)...))
	used := map[netip.Addr]bool{}
	for _, ip := range base {
		used[ip] = true
	}
	// An explicit ip nobody prefers changes nothing.
	ip := netip.MustParseAddr("10.1.0.2")
	for used[ip] {
		ip = ip.Next()
	}
	pods := append(podsNamed(names...), Pod{Name: "fixed", Node: "n", IP: ip.String()})
	assertSame(t, base, addresses(t, allocTopology(cidr, pods...)), "a pod with an explicit ip")
}

// TestAllocationCollision documents the one unstable case: two pods that
// hash to the same address. The earlier in the file keeps it; the later
// probes to the next free one.
func TestAllocationCollision(t *testing.T) {
	const cidr = "10.1.0.0/29" // five usable addresses: .2 to .6
	a := newAllocator(netip.MustParsePrefix(cidr))
	var x, y string
	byIP := map[netip.Addr]string{}
	for i := 0; x == ""; i++ {
		name := fmt.Sprintf("p%d", i)
		ip := a.preferred("default/" + name)
		if other, ok := byIP[ip]; ok {
			x, y = other, name
		}
		byIP[ip] = name
	}
	pref := a.preferred("default/" + x)
	got := addresses(t, allocTopology(cidr, podsNamed(x, y)...))
	if got["default/"+x] != pref {
		t.Errorf("earlier pod %s got %s, want its preferred %s", x, got["default/"+x], pref)
	}
	next := pref.Next()
	if next == netip.MustParseAddr("10.1.0.7") { // wrap past the broadcast to the first usable
		next = netip.MustParseAddr("10.1.0.2")
	}
	if got["default/"+y] != next {
		t.Errorf("later pod %s got %s, want the next address %s", y, got["default/"+y], next)
	}
	// Swapping them in the file swaps who keeps the address.
	swapped := addresses(t, allocTopology(cidr, podsNamed(y, x)...))
	if swapped["default/"+y] != pref {
		t.Errorf("after swap, %s got %s, want %s", y, swapped["default/"+y], pref)
	}
}

func TestAllocationAvoidsReservedAddresses(t *testing.T) {
	const cidr = "10.1.0.0/29"
	got := addresses(t, allocTopology(cidr, podsNamed("a", "b", "c", "d", "e")...))
	var ips []netip.Addr
	for _, ip := range got {
		ips = append(ips, ip)
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	want := []netip.Addr{
		netip.MustParseAddr("10.1.0.2"), netip.MustParseAddr("10.1.0.3"), netip.MustParseAddr("10.1.0.4"),
		netip.MustParseAddr("10.1.0.5"), netip.MustParseAddr("10.1.0.6"),
	}
	if !slices.Equal(ips, want) {
		t.Errorf("a full /29 got %v, want exactly the usable %v", ips, want)
	}
	// A sixth pod does not fit.
	_, err := Resolve(allocTopology(cidr, podsNamed("a", "b", "c", "d", "e", "f")...), nil)
	if err == nil || err.Error() != `pods[5]: no free address left for pod "default/f": node "n"'s podCIDR 10.1.0.0/29 is full` {
		t.Errorf("got %v", err)
	}
}

func TestAllocationSkipsExplicitIPs(t *testing.T) {
	const cidr = "10.1.0.0/16"
	a := newAllocator(netip.MustParsePrefix(cidr))
	pref := a.preferred("default/auto")
	// A later pod in the file holds auto's preferred address explicitly:
	// explicit addresses are reserved before any allocation.
	got := addresses(t, allocTopology(cidr, Pod{Name: "auto", Node: "n"}, Pod{Name: "fixed", Node: "n", IP: pref.String()}))
	if got["default/auto"] == pref || got["default/fixed"] != pref {
		t.Errorf("explicit ip not respected: %v", got)
	}
	if got["default/auto"] != pref.Next() {
		t.Errorf("auto got %s, want the next address %s", got["default/auto"], pref.Next())
	}
}

func TestAllocatorBigPrefix(t *testing.T) {
	// A /8 has 16M addresses; allocation must not scan them.
	a := newAllocator(netip.MustParsePrefix("10.0.0.0/8"))
	for i := range 1000 {
		if _, ok := a.allocate(fmt.Sprintf("ns/p%d", i)); !ok {
			t.Fatal("allocation failed")
		}
	}
}
