package datapath

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// DropEvent is one packet the datapath dropped while a monitor listened
// (bpf/events.h): policy denials, forged sources, connections from
// outside to a service without backends.
type DropEvent struct {
	Time time.Time
	// Src and Dst are the connection as the pods see it (after a
	// service's translation).
	Src, Dst netip.AddrPort
	Proto    uint8
	Reason   DropReason
	// Hook names where it was seen: "leaving pod", "entering pod", ...
	Hook string
	// Pod is the local pod charged (invalid for the node's edge).
	Pod netip.Addr
}

var hookNames = []string{"leaving pod", "entering pod", "leaving pod", "entering pod", "from outside", "from the node"}

// monitorLead is how far ahead of now a monitor keeps the programs'
// deadline: a monitor that dies stops the events within this time.
const monitorLead = 5 * time.Second

// eventSize is sizeof(struct event) in bpf/events.h.
const eventSize = 28

// Monitor streams the drop events of the datapath pinned in pinDir to fn
// until ctx ends, and tells lost, about once a second, how many events the
// programs could not write since the last report (the ring was full: a
// flood of drops outruns the reader). Only one monitor should run per
// node: they share the ring, and each event goes to one of them.
func Monitor(ctx context.Context, pinDir string, fn func(DropEvent), lost func(n uint64)) error {
	events, err := ebpf.LoadPinnedMap(filepath.Join(pinDir, "nr_events"), nil)
	if err != nil {
		return fmt.Errorf("monitor: open nr_events in %s (a datapath of this release?): %w", pinDir, err)
	}
	defer events.Close()
	gate, err := ebpf.LoadPinnedMap(filepath.Join(pinDir, "nr_monitor"), nil)
	if err != nil {
		return fmt.Errorf("monitor: open nr_monitor in %s: %w", pinDir, err)
	}
	defer gate.Close()
	rd, err := ringbuf.NewReader(events)
	if err != nil {
		return fmt.Errorf("monitor: read nr_events: %w", err)
	}
	defer rd.Close()
	if err := openGate(gate); err != nil {
		return err
	}
	defer gate.Put(uint32(0), uint64(0)) //nolint:errcheck // the deadline lapses anyway
	reported := lostEvents(gate)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := openGate(gate); err != nil {
				return err
			}
			if n := lostEvents(gate); n > reported {
				lost(n - reported)
				reported = n
			}
		default:
		}
		rd.SetDeadline(time.Now().Add(200 * time.Millisecond))
		rec, err := rd.Read()
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			continue
		case err != nil:
			return fmt.Errorf("monitor: read nr_events: %w", err)
		}
		if ev, ok := decodeEvent(rec.RawSample); ok {
			fn(ev)
		}
	}
}

// lostEvents reads nr_monitor[1]: the events lost to a full ring since
// the datapath was made (0 when unreadable).
func lostEvents(gate *ebpf.Map) uint64 {
	var n uint64
	_ = gate.Lookup(uint32(1), &n)
	return n
}

// openGate moves the programs' deadline to monitorLead from now.
func openGate(gate *ebpf.Map) error {
	now, err := monotonic()
	if err != nil {
		return err
	}
	if err := gate.Put(uint32(0), uint64(now+monitorLead)); err != nil {
		return fmt.Errorf("monitor: write nr_monitor: %w", err)
	}
	return nil
}

// monotonic is CLOCK_MONOTONIC, the clock of bpf_ktime_get_coarse_ns.
func monotonic() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, fmt.Errorf("monitor: clock: %w", err)
	}
	return time.Duration(ts.Nano()), nil
}

func decodeEvent(b []byte) (DropEvent, bool) {
	if len(b) < eventSize {
		return DropEvent{}, false
	}
	ts := time.Duration(binary.LittleEndian.Uint64(b[0:]))
	addr := func(o int) netip.Addr { return netip.AddrFrom4([4]byte(b[o : o+4])) }
	port := func(o int) uint16 { return binary.BigEndian.Uint16(b[o:]) }
	ev := DropEvent{
		Src:    netip.AddrPortFrom(addr(8), port(16)),
		Dst:    netip.AddrPortFrom(addr(12), port(18)),
		Proto:  b[20],
		Reason: DropReason(b[21]),
		Pod:    addr(24),
	}
	if int(b[22]) < len(hookNames) {
		ev.Hook = hookNames[b[22]]
	}
	if ev.Pod.IsUnspecified() {
		ev.Pod = netip.Addr{}
	}
	ev.Time = time.Now()
	if now, err := monotonic(); err == nil && now >= ts {
		ev.Time = ev.Time.Add(-(now - ts))
	}
	return ev, true
}
