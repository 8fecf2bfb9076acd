package state

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// TestCanonicalPrefixes: the canonical form holds exactly the addresses
// of the prefixes given, in the fewest disjoint prefixes (runs of /32s
// merged), whatever their order.
func TestCanonicalPrefixes(t *testing.T) {
	p := netip.MustParsePrefix
	got := CanonicalPrefixes([]netip.Prefix{p("10.0.0.3/32"), p("10.0.0.2/32"), p("10.0.0.0/31"), p("10.0.0.5/32"),
		p("10.0.0.9/32"), p("10.0.0.8/32"), p("10.0.0.1/32"), p("192.168.0.0/16"), p("192.168.4.0/24")})
	want := []netip.Prefix{p("10.0.0.0/30"), p("10.0.0.5/32"), p("10.0.0.8/31"), p("192.168.0.0/16")}
	if !slices.Equal(got, want) {
		t.Fatalf("CanonicalPrefixes = %v, want %v", got, want)
	}
	// Random sets of a small space: same addresses, disjoint, and no two
	// halves of one prefix left.
	rng := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		var in []netip.Prefix
		for range 1 + rng.IntN(12) {
			bits := 28 + rng.IntN(5)
			addr := netip.AddrFrom4([4]byte{10, 0, 0, byte(rng.IntN(32))})
			in = append(in, netip.PrefixFrom(addr, bits).Masked())
		}
		out := CanonicalPrefixes(in)
		for a := range 48 {
			addr := netip.AddrFrom4([4]byte{10, 0, 0, byte(a)})
			if slices.ContainsFunc(in, func(q netip.Prefix) bool { return q.Contains(addr) }) !=
				slices.ContainsFunc(out, func(q netip.Prefix) bool { return q.Contains(addr) }) {
				t.Fatalf("%v -> %v: %s is in one and not the other", in, out, addr)
			}
		}
		for i := 1; i < len(out); i++ {
			if out[i-1].Overlaps(out[i]) || halves(out[i-1], out[i]) || out[i-1].Addr().Compare(out[i].Addr()) >= 0 {
				t.Fatalf("%v -> %v: %s and %s are not canonical", in, out, out[i-1], out[i])
			}
		}
	}
}
