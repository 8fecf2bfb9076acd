package reconcile

import (
	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/reconcile/desired"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// The desired state is computed in package desired; these keep the
// engine's callers working.

// ErrCapacity is wrapped by the error of a node whose entries do not fit
// its datapath maps.
var ErrCapacity = desired.ErrCapacity

// desiredConfig is what package desired needs of c.
func (c *Config) desiredConfig() *desired.Config {
	return &desired.Config{Node: c.Node, NodeNetns: c.NodeNetns, BPFFS: c.BPFFS, Drivers: c.Drivers, Shared: c.Shared}
}

// Shared is what the desired states of one file's nodes share
// (desired.Shared).
type Shared = desired.Shared

// NewShared prepares what the nodes of r share (desired.NewShared).
func NewShared(r *spec.Resolved) *Shared { return desired.NewShared(r) }

// NewSharedFrom is NewShared that keeps what prev computed and the
// changes from prev's file to r leave valid (desired.NewSharedFrom);
// prev must not be used afterwards.
func NewSharedFrom(prev *Shared, r *spec.Resolved) *Shared { return desired.NewSharedFrom(prev, r) }

// Desired builds the kernel objects node cfg.Node needs (desired.Build).
func Desired(cfg *Config, r *spec.Resolved, up Uplink) (*state.State, error) {
	return desired.Build(cfg.desiredConfig(), r, up)
}

// Preflight checks what the file needs of this node before any change
// (desired.Preflight).
func Preflight(cfg *Config, r *spec.Resolved, up Uplink, k *drivers.Kernel) error {
	return desired.Preflight(cfg.desiredConfig(), r, up, k)
}

// CheckCapacity checks, offline, that every node's entries fit its
// datapath maps (desired.CheckCapacity).
func CheckCapacity(r *spec.Resolved, pos *spec.Positions) error { return desired.CheckCapacity(r, pos) }

// Backends lists "ip:port" of the pods that back one port of svc
// (desired.Backends).
func Backends(r *spec.Resolved, svc *spec.ResolvedService, port spec.ServicePort) []string {
	return desired.Backends(r, svc, port)
}
