package datapath

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/cilium/ebpf"
)

// Map keys and values hold addresses and ports in network byte order
// (__be32, __be16); cilium/ebpf marshals Go integers in host order. These
// helpers convert so that the bytes in the map are the bytes on the wire.

func be32(a netip.Addr) uint32 {
	b := a.Unmap().As4()
	return binary.NativeEndian.Uint32(b[:])
}

func addrFrom(v uint32) netip.Addr {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func be16(p uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], p)
	return binary.NativeEndian.Uint16(b[:])
}

func portFrom(v uint16) uint16 {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], v)
	return binary.BigEndian.Uint16(b[:])
}

// scanBatch is how many entries scan reads per system call.
const scanBatch = 4096

// scan calls fn for every entry of m, reading in batches where the kernel
// supports them and one entry at a time otherwise. Entries that the
// datapath adds or removes meanwhile may or may not be seen.
func scan[K, V any](m *ebpf.Map, fn func(k *K, v *V)) error {
	keys, vals := make([]K, scanBatch), make([]V, scanBatch)
	var cursor ebpf.MapBatchCursor
	for first := true; ; first = false {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		if first && errors.Is(err, ebpf.ErrNotSupported) {
			break
		}
		for i := range n {
			fn(&keys[i], &vals[i])
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	var (
		k K
		v V
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		fn(&k, &v)
	}
	return it.Err()
}

// putBatch is how many entries putMany writes per system call.
const putBatch = 4096

// putMany writes keys[i] -> values[i] for every i (creating or replacing
// each): in batches of putBatch entries, one system call each, or one
// entry at a time where the map type has no batch update (a devmap, or a
// kernel before 5.6). After an error, any of the entries may have been
// written: the kernel does not always say how many were.
func putMany[K, V any](m *ebpf.Map, keys []K, values []V) error {
	done := 0
	for done < len(keys) {
		end := min(done+putBatch, len(keys))
		_, err := m.BatchUpdate(keys[done:end], values[done:end], nil)
		if errors.Is(err, ebpf.ErrNotSupported) {
			break // refused before any entry
		}
		if err != nil {
			return err
		}
		done = end
	}
	for ; done < len(keys); done++ {
		if err := m.Put(&keys[done], &values[done]); err != nil {
			return err
		}
	}
	return nil
}
