package datapath

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/bpf"
)

// The conntrack collector's cost (bpf/ct.h): one walk of both tables as
// the bpf_timer runs it every ten seconds, timed through RunGC.
//
//	sudo go test -run '^$' -bench ConntrackGC -benchtime 5x ./datapath/
//
// Each iteration fills nr_ct and nr_pol_ct with gcEntries entries between
// them (half each), charged to gcOwners sources in nr_ct_count as the
// programs would have charged them, of which a share expired a minute ago
// (TCP connections that saw their FIN: a 10 s lifetime) and the rest are
// live (established). The fill is not timed. Reported: ns/op (RunGC as a
// caller sees it, the BPF_PROG_RUN syscall included), walk-ns/op (the
// kernel's own measure of the program run), and the entries the walk
// scanned and deleted, which the benchmark checks. With NR_GC_PIN_ROOT
// set, the maps are pinned below that directory (on bpffs) instead of
// /sys/fs/bpf: e2e/bench/defences runs this benchmark and removes its own
// pin root on every exit path, also when it has to kill the test.

const (
	gcEntries = 100000
	gcOwners  = 1000
)

func BenchmarkConntrackGC(b *testing.B) {
	for _, expired := range []int{gcEntries / 2, 0} {
		b.Run(fmt.Sprintf("entries=%d/expired=%d", gcEntries, expired), func(b *testing.B) {
			benchGC(b, expired)
		})
	}
}

func benchGC(b *testing.B, expired int) {
	d := openDP(b, gcPinDir(b))
	var walk time.Duration
	var st GCStats
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		fillConntrack(b, d, expired)
		b.StartTimer()
		var err error
		if st, err = d.RunGC(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		walk += st.Took
		if st.Scanned != gcEntries || st.Deleted != uint64(expired) {
			b.Fatalf("walk scanned %d and deleted %d entries, want %d and %d", st.Scanned, st.Deleted, gcEntries, expired)
		}
		left := countEntries(b, d.objs.NrCt) + countEntries(b, d.objs.NrPolCt)
		if left != gcEntries-expired {
			b.Fatalf("%d entries left after the walk, want %d", left, gcEntries-expired)
		}
	}
	b.ReportMetric(float64(walk.Nanoseconds())/float64(b.N), "walk-ns/op")
	b.ReportMetric(float64(st.Scanned), "scanned/op")
	b.ReportMetric(float64(st.Deleted), "deleted/op")
}

func gcPinDir(b *testing.B) string {
	root := os.Getenv("NR_GC_PIN_ROOT")
	if root == "" {
		return tempPinDir(b)
	}
	skipUnlessRoot(b)
	dir := filepath.Join(root, "gc-"+randID(b))
	b.Cleanup(func() {
		if err := Destroy(dir); err != nil {
			b.Errorf("cleanup: %v", err)
		}
	})
	return dir
}

// fillConntrack writes gcEntries/2 entries to each table, the first
// expired/2 of each expired, and charges every source for what it holds.
func fillConntrack(b *testing.B, d *Datapath, expired int) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil { // bpf_ktime_get_ns's clock
		b.Fatal(err)
	}
	now := uint64(ts.Nano())
	old := now - uint64(time.Minute)
	half := gcEntries / 2
	ctKeys, ctVals := make([]bpf.NrCtKey, half), make([]bpf.NrCtValue, half)
	polKeys, polVals := make([]bpf.NrPolCtKey, half), make([]bpf.NrPolCt, half)
	counts := map[uint32]*bpf.NrCtCount{}
	for i := range half {
		src, dst := be32(gcAddr(10, 1, i%gcOwners)), be32(gcAddr(10, 96, i%50))
		sport, state, seen := be16(uint16(1024+i/gcOwners)), uint8(2), now // established
		if i < expired/2 {
			state, seen = 3, old // closing, its 10 s long gone
		}
		ctKeys[i] = bpf.NrCtKey{Saddr: src, Daddr: dst, Sport: sport, Dport: be16(80), Proto: unix.IPPROTO_TCP}
		ctVals[i] = bpf.NrCtValue{Addr: dst, Port: be16(8080), Type: 1, State: state, Owner: src, SeenNs: seen}
		polKeys[i] = bpf.NrPolCtKey{Saddr: src, Daddr: dst, Sport: sport, Dport: be16(8080), Proto: unix.IPPROTO_TCP, Dir: 2}
		polVals[i] = bpf.NrPolCt{Revision: 1, State: state, Owner: src, SeenNs: seen}
		c := counts[src]
		if c == nil {
			c = &bpf.NrCtCount{}
			counts[src] = c
		}
		c.Svc++
		c.Pol++
	}
	if _, err := d.objs.NrCt.BatchUpdate(ctKeys, ctVals, nil); err != nil {
		b.Fatalf("fill nr_ct: %v", err)
	}
	if _, err := d.objs.NrPolCt.BatchUpdate(polKeys, polVals, nil); err != nil {
		b.Fatalf("fill nr_pol_ct: %v", err)
	}
	for src, c := range counts {
		if err := d.objs.NrCtCount.Put(src, c); err != nil {
			b.Fatalf("fill nr_ct_count: %v", err)
		}
	}
}

// gcAddr is a.b.0.0 plus n.
func gcAddr(a, b byte, n int) netip.Addr {
	return netip.AddrFrom4([4]byte{a, b, byte(n >> 8), byte(n)})
}

func countEntries(b *testing.B, m *ebpf.Map) int {
	var k, v []byte
	n := 0
	it := m.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	if err := it.Err(); err != nil {
		b.Fatalf("count %v: %v", m, err)
	}
	return n
}
