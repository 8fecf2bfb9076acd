package datapath

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/netreconcile/netreconcile/bpf"
)

// DropReason says why the datapath dropped a packet (bpf/guard.h).
type DropReason uint32

// Drop reasons, mirrored from NR_DROP_* in bpf/guard.h.
const (
	DropSource    DropReason = 1  // source address or MAC not the pod's own
	DropARP       DropReason = 2  // ARP whose sender is not the pod
	DropNotIPv4   DropReason = 3  // neither IPv4 nor ARP
	DropMalformed DropReason = 4  // headers unreadable
	DropFragment  DropReason = 5  // a later fragment without an allowed first
	DropEgress    DropReason = 6  // policy: the sender's egress denies it
	DropIngress   DropReason = 7  // policy: the receiver's ingress denies it
	DropCtFull    DropReason = 8  // no room to track the connection
	DropNoBinding DropReason = 9  // the interface has no source binding
	DropNAT       DropReason = 10 // translation failed
	DropNoBackend DropReason = 11 // from outside, to a service with no backend here
	DropRoute     DropReason = 12 // a translated packet has no route
	DropSNATPorts DropReason = 13 // no free SNAT port for a new connection from outside
)

var dropNames = map[DropReason]string{
	DropSource: "source", DropARP: "arp", DropNotIPv4: "not-ipv4", DropMalformed: "malformed",
	DropFragment: "fragment", DropEgress: "policy-egress", DropIngress: "policy-ingress",
	DropCtFull: "conntrack-full", DropNoBinding: "no-binding", DropNAT: "nat",
	DropNoBackend: "no-backend", DropRoute: "no-route", DropSNATPorts: "snat-ports",
}

func (r DropReason) String() string {
	if n, ok := dropNames[r]; ok {
		return n
	}
	return fmt.Sprintf("reason-%d", uint32(r))
}

// Drop counts the packets dropped for one local pod (the pod the hook
// belongs to, never an address a packet claims; invalid when the hook had
// no binding) and one reason.
type Drop struct {
	Pod     netip.Addr
	Reason  DropReason
	Packets uint64
}

// Drops reads the drop counters, summed over CPUs, sorted by pod and
// reason.
func (d *Datapath) Drops() ([]Drop, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var (
		k    bpf.NrDropKey
		vals []uint64
		out  []Drop
	)
	it := d.objs.NrDrops.Iterate()
	for it.Next(&k, &vals) {
		dr := Drop{Reason: DropReason(k.Reason)}
		if k.Pod != 0 {
			dr.Pod = addrFrom(k.Pod)
		}
		for _, v := range vals {
			dr.Packets += v
		}
		out = append(out, dr)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read nr_drops: %w", err)
	}
	slices.SortFunc(out, func(a, b Drop) int {
		return cmp.Or(a.Pod.Compare(b.Pod), cmp.Compare(a.Reason, b.Reason))
	})
	return out, nil
}

// GCStats describes the in-kernel conntrack collector (bpf/ct.h).
type GCStats struct {
	Runs    uint64        // walks so far (timer and RunGC)
	Scanned uint64        // entries the last walk looked at
	Deleted uint64        // expired entries it deleted
	Took    time.Duration // how long RunGC's walk took (RunGC only)
}

// RunGC walks the conntrack tables once now, as the collector's timer does
// every ten seconds, and returns what the walk did.
func (d *Datapath) RunGC() (GCStats, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.objs.NrGcRun == nil {
		return GCStats{}, fmt.Errorf("run conntrack gc: programs not loaded: %w", ErrInvalid)
	}
	in := make([]byte, 64) // a minimal frame: the program reads none of it
	_, took, err := d.objs.NrGcRun.Benchmark(in, 1, nil)
	if err != nil {
		return GCStats{}, fmt.Errorf("run conntrack gc: %w", err)
	}
	st, err := d.gcStats()
	st.Took = took
	return st, err
}

func (d *Datapath) gcStats() (GCStats, error) {
	var v bpf.NrGcState
	if err := d.objs.NrGc.Lookup(uint32(0), &v); err != nil {
		return GCStats{}, fmt.Errorf("read nr_gc: %w", err)
	}
	return GCStats{Runs: v.Runs, Scanned: v.LastScanned, Deleted: v.LastDeleted}, nil
}

// ConntrackUse is how many entries one source holds in each table.
type ConntrackUse struct {
	Source          netip.Addr
	Service, Policy uint32
}

// ConntrackUsage reads the per-source accounting of the conntrack tables.
func (d *Datapath) ConntrackUsage() ([]ConntrackUse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []ConntrackUse
	err := scan(d.objs.NrCtCount, func(k *uint32, v *bpf.NrCtCount) {
		out = append(out, ConntrackUse{Source: addrFrom(*k), Service: v.Svc, Policy: v.Pol})
	})
	if err != nil {
		return nil, fmt.Errorf("read nr_ct_count: %w", err)
	}
	slices.SortFunc(out, func(a, b ConntrackUse) int { return a.Source.Compare(b.Source) })
	return out, nil
}
