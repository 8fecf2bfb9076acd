package datapath

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/netreconcile/netreconcile/bpf"
)

// TestPutMany writes more entries than one batch holds into a hash map
// (batched), and into a devmap, which has no batch update (one at a time),
// and reads every one back from the kernel; a refusal is an error either
// way.
func TestPutMany(t *testing.T) {
	skipUnlessRoot(t)
	hash, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 3 * putBatch})
	must(t, err, "hash map")
	defer hash.Close()
	devs, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.DevMap, KeySize: 4, ValueSize: 4, MaxEntries: 300})
	must(t, err, "devmap")
	defer devs.Close()
	if _, err := devs.BatchUpdate([]uint32{0}, []uint32{1}, nil); !errors.Is(err, ebpf.ErrNotSupported) {
		t.Fatalf("a devmap takes batch updates here (%v): the fallback is not what this test runs", err)
	}

	n := 2*putBatch + 7
	keys, vals := make([]uint32, n), make([]uint32, n)
	for i := range n {
		keys[i], vals[i] = uint32(i), uint32(i)*3+1
	}
	if err := putMany(hash, keys, vals); err != nil {
		t.Fatalf("hash: %v", err)
	}
	readBack(t, hash, keys, vals)

	// A devmap's values are ifindexes: the loopback's (1) in every slot.
	dkeys, dvals := make([]uint32, 300), make([]uint32, 300)
	for i := range dkeys {
		dkeys[i], dvals[i] = uint32(i), 1
	}
	if err := putMany(devs, dkeys, dvals); err != nil {
		t.Fatalf("devmap: %v", err)
	}
	readBack(t, devs, dkeys, dvals)

	// Too many entries for the map: an error, in batches and one by one.
	small, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 10})
	must(t, err, "small map")
	defer small.Close()
	if err := putMany(small, keys[:20], vals[:20]); err == nil {
		t.Error("20 entries into a map of 10: no error")
	}
	if err := putMany(devs, []uint32{300}, []uint32{1}); err == nil {
		t.Error("a key beyond the devmap's size: no error")
	}
}

func readBack[K comparable, V comparable](t *testing.T, m *ebpf.Map, keys []K, vals []V) {
	t.Helper()
	for i := range keys {
		var got V
		if err := m.Lookup(&keys[i], &got); err != nil || got != vals[i] {
			t.Fatalf("%v: read %v (%v), want %v", keys[i], got, err, vals[i])
		}
	}
	count := 0
	var k K
	var v V
	for it := m.Iterate(); it.Next(&k, &v); {
		count++
	}
	if count < len(keys) {
		t.Fatalf("the map holds %d entries, want at least %d", count, len(keys))
	}
}

// TestSetServices: thousands of new ports, one already programmed (whose
// backends change) and one listed twice, read back as SetService would
// have left them, each with an id of its own that names it.
func TestSetServices(t *testing.T) {
	dir := tempPinDir(t)
	d := openDP(t, dir)
	backend := func(i int) Backend {
		return Backend{IP: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Port: 8080}
	}
	key := func(i int) ServiceKey {
		return ServiceKey{IP: netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}), Port: 80, Proto: ProtoTCP}
	}
	old := Service{Key: key(0), Backends: []Backend{backend(1), backend(2)}}
	must(t, d.SetService(old), "program one first")

	want := map[ServiceKey]Service{}
	var svcs []Service
	for i := range putBatch + 100 {
		s := Service{Key: key(i), Backends: []Backend{backend(i), backend(i + 1), backend(i + 2)}, Affinity: i%7 == 0}
		if i%5 == 0 {
			s.Backends = nil // refuses
		}
		svcs = append(svcs, s)
		want[s.Key] = s
	}
	twice := Service{Key: key(3), Backends: []Backend{backend(9)}, SNAT: true}
	svcs = append(svcs, twice)
	want[twice.Key] = twice
	must(t, d.SetServices(svcs), "set services")

	got, err := d.Services()
	must(t, err, "read services")
	if len(got) != len(want) {
		t.Fatalf("%d services programmed, want %d", len(got), len(want))
	}
	for k, w := range want {
		if !equalService(got[k], w) {
			t.Fatalf("service %s reads %+v, want %+v", k, got[k], w)
		}
	}
	ids := map[uint32]bpf.NrSvcKey{}
	must(t, scan(d.objs.NrSvcIds, func(id *uint32, k *bpf.NrSvcKey) { ids[*id] = *k }), "read ids")
	must(t, scan(d.objs.NrServices, func(k *bpf.NrSvcKey, v *bpf.NrSvcValue) {
		if ids[v.Id] != *k {
			t.Errorf("service %v has id %d, which names %v", serviceKeyFrom(*k), v.Id, serviceKeyFrom(ids[v.Id]))
		}
	}), "read services")
	if len(ids) != len(want) {
		t.Errorf("%d ids claimed for %d services", len(ids), len(want))
	}
	if c := mustID(t, d, old.Key); c == 0 {
		t.Errorf("service programmed first has no id")
	}
}
