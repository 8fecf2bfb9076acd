package reconcile

import (
	"net/netip"

	"github.com/netreconcile/netreconcile/reconcile/observe"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// Defences is what the node's datapath does against hostile pods
// (state.Defences, read by observe.InspectDefences).
type Defences = state.Defences

// PodDefence is one source address's part of Defences.
type PodDefence = state.PodDefence

// ConntrackShare is a source's conntrack entries.
type ConntrackShare = state.ConntrackShare

// Collector is what the conntrack collector did.
type Collector = state.Collector

// InspectDefences opens the datapath pinned in pinDir read-only and reads
// its defences (observe.InspectDefences).
func InspectDefences(pinDir string, names map[netip.Addr]string) (*Defences, error) {
	return observe.InspectDefences(pinDir, names)
}

// PodNames maps every pod address of r to the pod's key (nil r: none).
func PodNames(r *spec.Resolved) map[netip.Addr]string {
	names := map[netip.Addr]string{}
	if r == nil {
		return names
	}
	for _, p := range r.Pods {
		if p.IP.IsValid() {
			names[p.IP] = p.Key
		}
	}
	return names
}
