package observe

import (
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/state"
)

// InspectDefences opens the datapath pinned in pinDir read-only and reads
// its defences; nil (and no error) when there is none this build can read.
func InspectDefences(pinDir string, names map[netip.Addr]string) (*state.Defences, error) {
	if pinDir == "" {
		return nil, nil
	}
	if _, err := os.Stat(pinDir); err != nil {
		return nil, nil
	}
	dp, _, err := datapath.InspectWith(pinDir, datapath.PinnedSizes(pinDir))
	if err != nil || dp == nil {
		return nil, err
	}
	defer dp.Close()
	return ReadDefences(dp, names)
}

// ReadDefences reads the defences of dp, naming addresses by names.
func ReadDefences(dp *datapath.Datapath, names map[netip.Addr]string) (*state.Defences, error) {
	binds, err := dp.Bindings()
	if err != nil {
		return nil, fmt.Errorf("read defences: %w", err)
	}
	drops, err := dp.Drops()
	if err != nil {
		return nil, fmt.Errorf("read defences: %w", err)
	}
	usage, err := dp.ConntrackUsage()
	if err != nil {
		return nil, fmt.Errorf("read defences: %w", err)
	}
	gc, err := dp.ReadGCStats()
	if err != nil {
		return nil, fmt.Errorf("read defences: %w", err)
	}
	d := &state.Defences{Collector: state.Collector{Runs: gc.Runs, LastScanned: gc.Scanned, LastDeleted: gc.Deleted}}
	byAddr := map[netip.Addr]*state.PodDefence{}
	pod := func(a netip.Addr) *state.PodDefence {
		if p, ok := byAddr[a]; ok {
			return p
		}
		p := &state.PodDefence{Pod: names[a], Address: a.String()}
		byAddr[a] = p
		return p
	}
	for _, b := range binds {
		if p := pod(b.IP); p.MAC == "" {
			p.MAC = b.MAC.String()
		}
	}
	for _, dr := range drops {
		if dr.Packets == 0 {
			continue
		}
		m := &d.Unbound
		if dr.Pod.IsValid() {
			m = &pod(dr.Pod).Drops
		}
		if *m == nil {
			*m = map[string]uint64{}
		}
		(*m)[dr.Reason.String()] += dr.Packets
	}
	for _, u := range usage {
		p := pod(u.Source)
		p.Conntrack.Service += u.Service
		p.Conntrack.Policy += u.Policy
	}
	d.Pods = make([]state.PodDefence, 0, len(byAddr))
	for _, a := range slices.SortedFunc(maps.Keys(byAddr), func(a, b netip.Addr) int { return a.Compare(b) }) {
		d.Pods = append(d.Pods, *byAddr[a])
	}
	return d, nil
}
