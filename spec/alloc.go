package spec

import (
	"encoding/binary"
	"hash/fnv"
	"net/netip"
)

// Pod address allocation.
//
// A pod without an ip gets one from its node's podCIDR. The address must
// not depend on the other pods more than unavoidable, because a pod whose
// address changes is torn down and rebuilt by the reconciler: adding or
// removing one pod in the file must leave every other pod where it is.
//
// So each pod has a preferred address, a hash (FNV-1a) of "namespace/name"
// over the usable host range of the podCIDR (network address, gateway and
// broadcast excluded). Explicit ips are reserved first; then pods are
// visited in file order and take their preferred address, or, when it is
// held, the next free one (linear probing, wrapping around).
//
// This is stable under every edit except a collision: a pod keeps its
// address when others are appended, inserted or removed, unless the
// changed pod's address lies on its probe path, i.e. unless two pods'
// preferred addresses collide (then the earlier pod in the file keeps the
// preferred address and the later one moves on) or an explicit ip claims
// the address. File order, rather than sorted order, decides collisions so
// that a pod appended at the end can never displace an existing one.

// allocator hands out the host addresses of one IPv4 podCIDR.
type allocator struct {
	first uint32 // first usable address: network + 2 (network + 1 is the gateway)
	size  uint32 // number of usable addresses
	taken map[uint32]bool
}

// newAllocator returns an allocator for prefix, an IPv4 prefix of /30 or
// shorter (validation guarantees both).
func newAllocator(prefix netip.Prefix) *allocator {
	network := addrToU32(prefix.Masked().Addr())
	total := uint64(1) << (32 - prefix.Bits())
	size := uint32(0)
	if total > 3 {
		size = uint32(total - 3)
	}
	return &allocator{first: network + 2, size: size, taken: map[uint32]bool{}}
}

// reserve marks an address as held, by an explicit ip or an earlier pod.
func (a *allocator) reserve(ip netip.Addr) {
	a.taken[addrToU32(ip)] = true
}

// preferred returns the address key hashes to, ignoring what is held.
func (a *allocator) preferred(key string) netip.Addr {
	return u32ToAddr(a.first + a.offset(key))
}

func (a *allocator) offset(key string) uint32 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return uint32(h.Sum64() % uint64(a.size))
}

// allocate returns the first free address at or after key's preferred one
// and reserves it; false when every usable address is held. It probes at
// most len(taken)+1 addresses, so a large podCIDR costs nothing extra.
func (a *allocator) allocate(key string) (netip.Addr, bool) {
	if a.size == 0 || uint64(len(a.taken)) >= uint64(a.size) && a.full() {
		return netip.Addr{}, false
	}
	off := a.offset(key)
	for range a.size {
		ip := a.first + off
		if !a.taken[ip] {
			a.taken[ip] = true
			return u32ToAddr(ip), true
		}
		off++
		if off == a.size {
			off = 0
		}
	}
	return netip.Addr{}, false
}

// full reports whether every usable address is held; taken may also hold
// addresses outside the usable range (an invalid explicit ip is reported
// elsewhere but never stops allocation), so counting alone is not enough.
func (a *allocator) full() bool {
	for ip := range a.size {
		if !a.taken[a.first+ip] {
			return false
		}
	}
	return true
}

func addrToU32(ip netip.Addr) uint32 {
	b := ip.As4()
	return binary.BigEndian.Uint32(b[:])
}

func u32ToAddr(u uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], u)
	return netip.AddrFrom4(b)
}
