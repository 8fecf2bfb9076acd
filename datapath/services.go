package datapath

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/bpf"
)

// Protocols of a ServiceKey.
const (
	ProtoTCP uint8 = unix.IPPROTO_TCP
	ProtoUDP uint8 = unix.IPPROTO_UDP
)

// Mirrors of the #defines in bpf/datapath.c.
const (
	svcFlagAffinity = 1 // NR_SVC_AFFINITY
	svcFlagHash     = 2 // NR_SVC_HASH
	svcFlagSNAT     = 4 // NR_SVC_SNAT
	ctFwd           = 1 // NR_CT_FWD
	ctRev           = 2 // NR_CT_REV
	ctFlagHairpin   = 1 // NR_CT_HAIRPIN
	ctFlagSNAT      = 2 // NR_CT_SNAT
	maxBackends     = 1<<16 - 1
	maxServiceIDs   = 1 << 16 // nr_svc_ids max_entries
)

// ServiceKey is one port of a service: what a client connects to.
// Addresses are IPv4 (4-byte netip.Addr).
type ServiceKey struct {
	IP    netip.Addr
	Port  uint16
	Proto uint8 // ProtoTCP or ProtoUDP
}

func (k ServiceKey) String() string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(k.IP, k.Port), ProtoName(k.Proto))
}

// ProtoName is "TCP", "UDP" or the number.
func ProtoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "TCP"
	case ProtoUDP:
		return "UDP"
	}
	return fmt.Sprintf("proto-%d", p)
}

// Backend is where a service port sends connections: a pod address and
// its targetPort.
type Backend struct {
	IP   netip.Addr
	Port uint16
}

func (b Backend) String() string { return netip.AddrPortFrom(b.IP, b.Port).String() }

func compareBackends(a, b Backend) int {
	return cmp.Or(a.IP.Compare(b.IP), cmp.Compare(a.Port, b.Port))
}

// Service is a service port as programmed: its backends and how one is
// chosen for a new connection.
type Service struct {
	Key ServiceKey
	// Backends in any order; Services returns them sorted. None: the
	// service refuses (TCP RST, ICMP port unreachable).
	Backends []Backend
	// Affinity is sessionAffinity: ClientIP. A client keeps its backend
	// for new connections while the backend stays and the client has
	// not been idle for AffinityTimeout.
	Affinity bool
	// AffinityTimeout is the ClientIP affinity idle timeout, whole
	// seconds; 0 is the default, DefaultAffinityTimeout. Without Affinity
	// it is not stored (reads back as 0).
	AffinityTimeout time.Duration
	// Hash chooses by a hash of the 5-tuple instead of at random.
	Hash bool
	// SNAT: a new connection that arrives on the uplink (from outside the
	// node, nr_uplink_in) leaves with the node's address (Config.NodeAddr)
	// and a port in 61001-65535 as its source, so that the backend's
	// replies come back through this node (externalTrafficPolicy Cluster).
	SNAT bool
}

// DefaultAffinityTimeout is the affinity idle timeout of a Service whose
// AffinityTimeout is 0 (Kubernetes' default).
const DefaultAffinityTimeout = 10800 * time.Second

func (k ServiceKey) validate() error {
	switch {
	case !k.IP.Is4():
		return fmt.Errorf("address %v is not IPv4: %w", k.IP, ErrInvalid)
	case k.Port == 0:
		return fmt.Errorf("port 0: %w", ErrInvalid)
	case k.Proto != ProtoTCP && k.Proto != ProtoUDP:
		return fmt.Errorf("protocol %d is not TCP or UDP: %w", k.Proto, ErrInvalid)
	}
	return nil
}

func (s Service) validate() error {
	if err := s.Key.validate(); err != nil {
		return err
	}
	if t := s.AffinityTimeout; t < 0 || t%time.Second != 0 || t/time.Second > math.MaxUint32 {
		return fmt.Errorf("affinity timeout %v: not a whole number of seconds in range: %w", t, ErrInvalid)
	}
	if len(s.Backends) > maxBackends {
		return fmt.Errorf("%d backends, at most %d: %w", len(s.Backends), maxBackends, ErrInvalid)
	}
	seen := make(map[Backend]bool, len(s.Backends))
	for _, b := range s.Backends {
		switch {
		case !b.IP.Is4() || b.IP.IsUnspecified():
			return fmt.Errorf("backend %v: address is not IPv4: %w", b, ErrInvalid)
		case b.Port == 0:
			return fmt.Errorf("backend %v: port 0: %w", b, ErrInvalid)
		case seen[b]:
			return fmt.Errorf("backend %v listed twice: %w", b, ErrInvalid)
		}
		seen[b] = true
	}
	return nil
}

func (k ServiceKey) mapKey() bpf.NrSvcKey {
	return bpf.NrSvcKey{Ip: be32(k.IP), Port: be16(k.Port), Proto: k.Proto}
}

func serviceKeyFrom(k bpf.NrSvcKey) ServiceKey {
	return ServiceKey{IP: addrFrom(k.Ip), Port: portFrom(k.Port), Proto: k.Proto}
}

func (s Service) flags() uint8 {
	var f uint8
	if s.Affinity {
		f |= svcFlagAffinity
	}
	if s.Hash {
		f |= svcFlagHash
	}
	if s.SNAT {
		f |= svcFlagSNAT
	}
	return f
}

// affinitySeconds is the timeout as stored: only with affinity.
func (s Service) affinitySeconds() uint32 {
	if !s.Affinity {
		return 0
	}
	return uint32(s.AffinityTimeout / time.Second)
}

// Services reads every programmed service port.
func (d *Datapath) Services() (map[ServiceKey]Service, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[ServiceKey]Service{}
	byID := map[uint32]ServiceKey{}
	err := scan(d.objs.NrServices, func(k *bpf.NrSvcKey, v *bpf.NrSvcValue) {
		key := serviceKeyFrom(*k)
		out[key] = Service{
			Key:             key,
			Backends:        make([]Backend, v.Count),
			Affinity:        v.Flags&svcFlagAffinity != 0,
			AffinityTimeout: time.Duration(v.AffinityS) * time.Second,
			Hash:            v.Flags&svcFlagHash != 0,
			SNAT:            v.Flags&svcFlagSNAT != 0,
		}
		byID[v.Id] = key
	})
	if err != nil {
		return nil, fmt.Errorf("read services: %w", err)
	}
	err = scan(d.objs.NrBackends, func(bk *bpf.NrBackendKey, bv *bpf.NrBackend) {
		key, ok := byID[bk.SvcId]
		if !ok || int(bk.Slot) >= len(out[key].Backends) {
			return // a slot beyond the count: being added or removed
		}
		out[key].Backends[bk.Slot] = Backend{IP: addrFrom(bv.Ip), Port: portFrom(bv.Port)}
	})
	if err != nil {
		return nil, fmt.Errorf("read backends: %w", err)
	}
	for key, s := range out {
		// A missing slot shows as a missing backend, so that a diff
		// against the desired service rewrites it.
		s.Backends = slices.DeleteFunc(s.Backends, func(b Backend) bool { return !b.IP.IsValid() })
		slices.SortFunc(s.Backends, compareBackends)
		out[key] = s
	}
	return out, nil
}

// SetService programs one service port and its backends, writing only
// what differs. Backends that stay keep their slot, new backends fill the
// slots of removed ones, and slots are written before the count grows and
// before it shrinks, so every slot a packet can pick holds a live backend
// at every moment. Established connections keep their backend; those to
// removed UDP backends are forgotten so that their next datagram picks a
// remaining backend (removed TCP backends drain).
func (d *Datapath) SetService(s Service) error {
	if err := s.validate(); err != nil {
		return fmt.Errorf("service %s: %w", s.Key, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.setService(s); err != nil {
		return fmt.Errorf("service %s: %w", s.Key, err)
	}
	return nil
}

func (d *Datapath) setService(s Service) error {
	key := s.Key.mapKey()
	var cur bpf.NrSvcValue
	err := d.objs.NrServices.Lookup(&key, &cur)
	exists := err == nil
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("read: %w", err)
	}

	var old []Backend
	id := cur.Id
	if exists {
		if old, err = d.readSlots(id, int(cur.Count)); err != nil {
			return err
		}
	} else if id, err = d.claimID(key); err != nil {
		return err
	}

	slots := assignSlots(old, s.Backends)
	for i, b := range slots {
		if i < len(old) && old[i] == b {
			continue
		}
		bk := bpf.NrBackendKey{SvcId: id, Slot: uint32(i)}
		bv := bpf.NrBackend{Ip: be32(b.IP), Port: be16(b.Port)}
		if err := d.objs.NrBackends.Put(&bk, &bv); err != nil {
			if !exists {
				d.dropService(id, i, false)
			}
			return fmt.Errorf("write backend %v in slot %d: %w", b, i, err)
		}
	}
	val := bpf.NrSvcValue{Id: id, Count: uint16(len(slots)), Flags: s.flags(), AffinityS: s.affinitySeconds()}
	if !exists || val != cur {
		if err := d.objs.NrServices.Put(&key, &val); err != nil {
			if !exists {
				d.dropService(id, len(slots), false)
			}
			return fmt.Errorf("write: %w", err)
		}
	}
	for i := len(slots); i < len(old); i++ {
		bk := bpf.NrBackendKey{SvcId: id, Slot: uint32(i)}
		if err := d.objs.NrBackends.Delete(&bk); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete slot %d: %w", i, err)
		}
	}

	// Connections to a backend that left end (purgeConntrack).
	removed := map[Backend]bool{}
	for _, b := range old {
		if b.IP.IsValid() {
			removed[b] = true
		}
	}
	for _, b := range slots {
		delete(removed, b)
	}
	if len(removed) > 0 {
		if err := d.purgeConntrack(id, removed); err != nil {
			return err
		}
	}
	return nil
}

// readSlots returns the backends in slots [0, count); a missing slot is a
// zero Backend.
func (d *Datapath) readSlots(id uint32, count int) ([]Backend, error) {
	out := make([]Backend, count)
	for i := range out {
		bk := bpf.NrBackendKey{SvcId: id, Slot: uint32(i)}
		var bv bpf.NrBackend
		err := d.objs.NrBackends.Lookup(&bk, &bv)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read slot %d: %w", i, err)
		}
		out[i] = Backend{IP: addrFrom(bv.Ip), Port: portFrom(bv.Port)}
	}
	return out, nil
}

// assignSlots lays want out over slots [0, len(want)): a backend already
// in such a slot keeps it (its affinity entries stay valid), the others
// fill the remaining slots in the order given.
func assignSlots(old, want []Backend) []Backend {
	wanted := make(map[Backend]bool, len(want))
	for _, b := range want {
		wanted[b] = true
	}
	slots := make([]Backend, len(want))
	placed := make(map[Backend]bool, len(want))
	for i := 0; i < len(slots) && i < len(old); i++ {
		if b := old[i]; wanted[b] && !placed[b] {
			slots[i], placed[b] = b, true
		}
	}
	free := 0
	for _, b := range want {
		if placed[b] {
			continue
		}
		for slots[free].IP.IsValid() {
			free++
		}
		slots[free], placed[b] = b, true
	}
	return slots
}

// claimID reserves a free service id for key in nr_svc_ids. The insert is
// exclusive in the kernel, so two writers never share an id.
func (d *Datapath) claimID(key bpf.NrSvcKey) (uint32, error) {
	for range maxServiceIDs + 1 {
		id := d.nextID
		d.nextID++
		if d.nextID == 0 {
			d.nextID = 1
		}
		if id == 0 {
			continue
		}
		err := d.objs.NrSvcIds.Update(id, &key, ebpf.UpdateNoExist)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, ebpf.ErrKeyExist) {
			return 0, fmt.Errorf("claim service id: %w", err)
		}
	}
	return 0, fmt.Errorf("claim service id: all %d in use", maxServiceIDs)
}

// DeleteService removes a service port: no new connection is translated
// for it. Established TCP connections keep their translation while they
// last; UDP flows and affinity entries of the service are forgotten.
// Deleting a service that does not exist is success.
func (d *Datapath) DeleteService(k ServiceKey) error {
	if err := k.validate(); err != nil {
		return fmt.Errorf("service %s: %w", k, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	key := k.mapKey()
	var cur bpf.NrSvcValue
	err := d.objs.NrServices.Lookup(&key, &cur)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("service %s: read: %w", k, err)
	}
	if err := d.objs.NrServices.Delete(&key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("service %s: delete: %w", k, err)
	}
	if err := d.dropService(cur.Id, int(cur.Count), true); err != nil {
		return fmt.Errorf("service %s: %w", k, err)
	}
	return nil
}

// dropService removes what belongs to service id once nothing points to
// it any more; the id is released last.
func (d *Datapath) dropService(id uint32, count int, purge bool) error {
	var errs []error
	for i := range count {
		bk := bpf.NrBackendKey{SvcId: id, Slot: uint32(i)}
		if err := d.objs.NrBackends.Delete(&bk); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("delete slot %d: %w", i, err))
		}
	}
	if purge {
		errs = append(errs, d.purgeConntrack(id, nil), d.purgeAffinity(id))
	}
	if err := d.objs.NrSvcIds.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		errs = append(errs, fmt.Errorf("release id %d: %w", id, err))
	}
	return errors.Join(errs...)
}

// purgeConntrack ends the connections (both entries) of service id whose
// backend is in backends (all when nil). It expires the entries rather
// than deleting them: the datapath (or its collector) deletes them on
// their next use and charges their source back, which only it can do
// without racing its own counts (bpf/ct.h). The connection's next packet
// finds no state: a TCP connection is reset by whichever backend it then
// reaches, a UDP flow picks a new backend.
func (d *Datapath) purgeConntrack(id uint32, backends map[Backend]bool) error {
	var del []bpf.NrCtKey
	err := scan(d.objs.NrCt, func(k *bpf.NrCtKey, v *bpf.NrCtValue) {
		if v.SvcId != id {
			return
		}
		var b Backend
		switch v.Type {
		case ctFwd:
			b = Backend{IP: addrFrom(v.Addr), Port: portFrom(v.Port)}
		case ctRev:
			b = Backend{IP: addrFrom(k.Saddr), Port: portFrom(k.Sport)}
		default:
			return
		}
		if backends == nil || backends[b] {
			del = append(del, *k)
		}
	})
	if err != nil {
		return fmt.Errorf("read conntrack: %w", err)
	}
	for i := range del {
		var v bpf.NrCtValue
		if err := d.objs.NrCt.Lookup(&del[i], &v); err != nil {
			continue // gone meanwhile
		}
		v.SeenNs = 1 // long past: expired whatever the state
		err := d.objs.NrCt.Update(&del[i], &v, ebpf.UpdateExist)
		if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("expire conntrack entry: %w", err)
		}
	}
	return nil
}

func (d *Datapath) purgeAffinity(id uint32) error {
	var del []bpf.NrAffinityKey
	err := scan(d.objs.NrAffinity, func(k *bpf.NrAffinityKey, _ *bpf.NrAffinityValue) {
		if k.SvcId == id {
			del = append(del, *k)
		}
	})
	if err != nil {
		return fmt.Errorf("read affinity: %w", err)
	}
	for i := range del {
		if err := d.objs.NrAffinity.Delete(&del[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete affinity entry: %w", err)
		}
	}
	return nil
}

// Conn is a translated connection as conntrack records it.
type Conn struct {
	Proto   uint8
	Client  netip.AddrPort // source, as the client sends
	Service netip.AddrPort // destination, as the client sends
	Backend netip.AddrPort
	Hairpin bool // the client is its own backend; it sees the hairpin address
	// SNAT is the source the backend sees for a connection from outside
	// that was source-NATed to the node (Service.SNAT); invalid otherwise.
	SNAT netip.AddrPort
}

// Conntrack lists the translated connections (one per forward entry).
// Entries outlive their connections until they expire (bpf/ct.h).
func (d *Datapath) Conntrack() ([]Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Conn
	err := scan(d.objs.NrCt, func(k *bpf.NrCtKey, v *bpf.NrCtValue) {
		if v.Type != ctFwd {
			return
		}
		c := Conn{
			Proto:   k.Proto,
			Client:  netip.AddrPortFrom(addrFrom(k.Saddr), portFrom(k.Sport)),
			Service: netip.AddrPortFrom(addrFrom(k.Daddr), portFrom(k.Dport)),
			Backend: netip.AddrPortFrom(addrFrom(v.Addr), portFrom(v.Port)),
			Hairpin: v.Flags&ctFlagHairpin != 0,
		}
		if v.Flags&ctFlagSNAT != 0 {
			c.SNAT = netip.AddrPortFrom(addrFrom(v.NatAddr), portFrom(v.NatPort))
		}
		out = append(out, c)
	})
	if err != nil {
		return nil, fmt.Errorf("read conntrack: %w", err)
	}
	slices.SortFunc(out, func(a, b Conn) int {
		return cmp.Or(a.Client.Compare(b.Client), a.Service.Compare(b.Service), cmp.Compare(a.Proto, b.Proto))
	})
	return out, nil
}
