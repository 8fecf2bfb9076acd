package datapath

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/netreconcile/netreconcile/bpf"
)

// BenchmarkPacketCost runs the program of a pod's host-side ingress on one
// packet of an established, tracked pod-to-pod TCP connection (no
// service, no isolation: what most packets are) with BPF_PROG_RUN, in the
// kernel, for
// this build's object and for the object of 020c136, the release before
// the defences against hostile pods (testdata/nr_bpfel-020c136.o). The
// figure is the kernel's time per run: the per-packet price of the
// defences, without the noise of iperf3 runs.
//
//	sudo go test -run '^$' -bench PacketCost -benchtime 2000000x ./datapath/
func BenchmarkPacketCost(b *testing.B) {
	skipUnlessRoot(b)
	for _, v := range []struct {
		name string
		load func() (*ebpf.CollectionSpec, error)
	}{
		{"before-defences", func() (*ebpf.CollectionSpec, error) {
			return ebpf.LoadCollectionSpec("testdata/nr_bpfel-020c136.o")
		}},
		{"with-defences", bpf.LoadNr},
	} {
		b.Run(v.name, func(b *testing.B) {
			spec, err := v.load()
			if err != nil {
				b.Fatal(err)
			}
			coll := loadUnpinned(b, spec)
			prog := coll.Programs["nr_from_pod"]
			src, dst := netip.MustParseAddr("10.244.1.11"), netip.MustParseAddr("10.244.1.12")
			if m := coll.Maps[bpf.NrMapNrSrc]; m != nil {
				bindLoopback(b, m, src)
			}
			// The SYN opens the connection (tracked, allowed); its ACKs
			// are what the benchmark sends.
			for _, pkt := range [][]byte{tcpSegment(src, dst, 0x02), tcpSegment(src, dst, 0x10)} {
				ret, _, err := prog.Benchmark(pkt, 1, nil)
				if err != nil {
					b.Fatal(err)
				}
				if ret != tcActUnspec {
					b.Fatalf("program returned %d, want %d (the packet passes on)", ret, tcActUnspec)
				}
			}
			pkt := tcpSegment(src, dst, 0x10)
			b.ResetTimer()
			_, per, err := prog.Benchmark(pkt, b.N, b.ResetTimer)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(per.Nanoseconds()), "kernel-ns/pkt")
			b.ReportMetric(0, "ns/op") // the figure is kernel-ns/pkt
		})
	}
}

const tcActUnspec = 0xffffffff // TC_ACT_UNSPEC (-1) as the kernel reports it

// loadUnpinned loads spec with every map private to this process.
func loadUnpinned(b *testing.B, spec *ebpf.CollectionSpec) *ebpf.Collection {
	b.Helper()
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(coll.Close)
	if m := coll.Maps[bpf.NrMapNrConfig]; m != nil {
		// Layout 1 and 2 share the first three fields: version, hairpin
		// address, flags (0: no fast path).
		var cfg [16]byte
		binary.LittleEndian.PutUint32(cfg[0:], 1)
		if err := m.Put(uint32(0), cfg[:]); err != nil {
			b.Fatal(err)
		}
	}
	return coll
}

// bindLoopback binds ip with the all-zero MAC to the loopback device of
// this thread's namespace, where BPF_PROG_RUN runs the program.
func bindLoopback(b *testing.B, m *ebpf.Map, ip netip.Addr) {
	b.Helper()
	cookie, err := netnsCookie()
	if err != nil {
		b.Fatal(err)
	}
	k := bpf.NrSrcKey{Netns: cookie, Ifindex: 1}
	v := bpf.NrSrcBinding{Ip: be32(ip), Ifindex: 1}
	if err := m.Put(&k, &v); err != nil {
		b.Fatal(err)
	}
}

// tcpSegment is an Ethernet frame of a TCP segment with flags from
// src:40000 to dst:8080, from the all-zero MAC.
func tcpSegment(src, dst netip.Addr, flags byte) []byte {
	f := make([]byte, 14+20+20+64)
	copy(f[0:6], net.HardwareAddr{0x0a, 0x58, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(f)-14))
	ip[8], ip[9] = 64, 6
	s, d := src.As4(), dst.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	tcp := ip[20:]
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 8080)
	tcp[12] = 5 << 4
	tcp[13] = flags
	return f
}
