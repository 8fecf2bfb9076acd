// Package ipvlan is the ipvlan mode: each pod's eth0 is an L2-mode ipvlan
// child of the node's uplink, with a host-side ipvlan shim carrying the
// pods' gateway: the macvlan mode's design (see package macvlan), with
// these differences.
//
// Design notes. Shim "nrip0", pod children in mode l2. Children share the
// uplink's MAC, so none is set (the kernel refuses one) and the node's ARP
// caches never go stale when a pod is re-created. A frame an L2 child
// sends to the shared MAC for an address no child owns is handed to the
// uplink's own stack rather than to the shim: the node still routes it,
// and its replies go back through the pod's /32 route via the shim.
//
// A device is either a macvlan or an ipvlan parent, never both, so a node
// whose pods use both modes is refused before any change.
//
// Some kernels are built without ipvlan. The engine probes for it before
// planning (an ipvlan create request that the kernel rejects before it
// changes anything: "not supported" when the type is missing), and Check
// then fails with ErrUnavailable, which the engine reports with the pod:
// "ipvlan is not available in this kernel: pod x/d", before any change.
package ipvlan

import (
	"errors"
	"fmt"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/drivers/shim"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// Shim is the host-side ipvlan carrying the gateway.
const Shim = "nrip0"

// Owner owns the node-wide objects of the mode.
const Owner = "ipvlan"

var (
	// ErrUnavailable is returned by Check on a kernel without ipvlan.
	ErrUnavailable = errors.New("ipvlan is not available in this kernel")
	// ErrMixed is returned when one node has both macvlan and ipvlan pods.
	ErrMixed = errors.New("macvlan and ipvlan pods cannot share an uplink")
)

var kind = shim.Kind{Mode: spec.ModeIPvlan, LinkType: state.LinkIPvlan, LinkMode: "l2", Name: Shim, Owner: Owner}

// Driver implements drivers.Driver for mode ipvlan.
type Driver struct{}

// Mode implements drivers.Driver.
func (Driver) Mode() string { return spec.ModeIPvlan }

// Check implements drivers.Driver: it fails when a probe found no ipvlan.
func (Driver) Check(k *drivers.Kernel) error {
	if ok, probed := k.LinkTypes[state.LinkIPvlan]; probed && !ok {
		return ErrUnavailable
	}
	return nil
}

// Node implements drivers.Driver.
func (Driver) Node(n *drivers.Node, s *state.State) error {
	for _, p := range n.Cluster.PodsOn(n.Name) {
		if p.Mode == spec.ModeMacvlan {
			return fmt.Errorf("%w (a device is either a macvlan or an ipvlan parent): uplink %q has macvlan pod %s",
				ErrMixed, n.Spec.Uplink, p.Key)
		}
	}
	return shim.Node(n, s, kind)
}

// Pod implements drivers.Driver.
func (Driver) Pod(n *drivers.Node, p *spec.ResolvedPod, s *state.State) error {
	return shim.Pod(n, p, s, kind)
}
