package reconcile

import (
	"fmt"
	"sync"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/drivers/bridge"
	"github.com/netreconcile/netreconcile/drivers/ipvlan"
	"github.com/netreconcile/netreconcile/drivers/macvlan"
	"github.com/netreconcile/netreconcile/drivers/veth"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// AllDrivers is every mode's driver, as the command line registers them
// (and PlanBetween, offline, builds with). Building touches no kernel.
// It is one registry (read-only), so that a daemon's passes, each with
// an engine of its own, are seen to build with the same drivers.
var AllDrivers = sync.OnceValue(func() *drivers.Registry {
	return drivers.NewRegistry(veth.Driver{}, bridge.Driver{}, macvlan.Driver{}, ipvlan.Driver{})
})

// PlanBetween is the plan that moving node from old to new means, offline:
// what netreconcile would own on the node after applying old stands in
// for what the node has, and new's desired state is the target. A node
// only one file has is planned from nothing, or to nothing. Either file
// may be nil (no nodes). It reads no kernel and no state directory.
func PlanBetween(old, new *spec.Resolved, node string) (*Plan, error) {
	return NewBetween(old, new).Plan(node)
}

// Between plans nodes from one file to another (PlanBetween), sharing
// what the nodes of each file share (Shared) from one node to the next.
// Safe for concurrent use.
type Between struct {
	old, new             *spec.Resolved
	oldShared, newShared *Shared
}

// NewBetween prepares planning nodes from old to new.
func NewBetween(old, new *spec.Resolved) *Between {
	return &Between{old: old, new: new, oldShared: NewShared(old), newShared: NewShared(new)}
}

// Plan is PlanBetween of node.
func (b *Between) Plan(node string) (*Plan, error) {
	have, err := desiredOffline(b.old, b.oldShared, node)
	if err != nil {
		return nil, fmt.Errorf("node %q in OLD: %w", node, err)
	}
	want, err := desiredOffline(b.new, b.newShared, node)
	if err != nil {
		return nil, fmt.Errorf("node %q in NEW: %w", node, err)
	}
	obs := state.NewObserved(node)
	obs.Owned = have
	p, err := Diff(node, want, obs)
	if err != nil {
		return nil, fmt.Errorf("node %q: plan OLD -> NEW: %w", node, err)
	}
	return p, nil
}

// desiredOffline is node's desired state in r, built against the uplink
// EmptyObserved assumes; empty when r lacks the node.
func desiredOffline(r *spec.Resolved, shared *Shared, node string) (*state.State, error) {
	if r == nil || r.Node(node) == nil {
		return state.New(), nil
	}
	obs, err := EmptyObserved(r, node)
	if err != nil {
		return nil, err
	}
	cfg := &Config{Node: node, BPFFS: "/sys/fs/bpf/netreconcile/" + node, Uplink: r.Node(node).Uplink, Drivers: AllDrivers(),
		Shared: shared}
	up := obs.Facts.UplinkFrom(cfg.Uplink, peerAddrs(r, node))
	return Desired(cfg, r, up)
}
