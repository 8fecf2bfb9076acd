package datapath

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	"github.com/netreconcile/netreconcile/bpf"
)

// Endpoint is a pod of this node that packets may reach by the fast path:
// nr_from_pod redirects packets for its address straight into it.
type Endpoint struct {
	// IfIndex is the pod's host-side veth in the node's namespace (veth
	// and bridge pods; macvlan and ipvlan pods have none and get no entry).
	IfIndex int
}

// Endpoints reads the local endpoints.
func (d *Datapath) Endpoints() (map[netip.Addr]Endpoint, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[netip.Addr]Endpoint{}
	err := scan(d.objs.NrEndpoints, func(k *uint32, v *bpf.NrEndpoint) {
		out[addrFrom(*k)] = Endpoint{IfIndex: int(v.Ifindex)}
	})
	if err != nil {
		return nil, fmt.Errorf("read endpoints: %w", err)
	}
	return out, nil
}

// SetEndpoint writes the local endpoint ip.
func (d *Datapath) SetEndpoint(ip netip.Addr, e Endpoint) error {
	switch {
	case !ip.Is4():
		return fmt.Errorf("endpoint %v: address is not IPv4: %w", ip, ErrInvalid)
	case e.IfIndex <= 0:
		return fmt.Errorf("endpoint %v: ifindex %d: %w", ip, e.IfIndex, ErrInvalid)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v := bpf.NrEndpoint{Ifindex: uint32(e.IfIndex)}
	if err := d.objs.NrEndpoints.Put(be32(ip), &v); err != nil {
		return fmt.Errorf("endpoint %v: write: %w", ip, err)
	}
	return nil
}

// DeleteEndpoint removes the local endpoint ip; a missing one is success.
func (d *Datapath) DeleteEndpoint(ip netip.Addr) error {
	if !ip.Is4() {
		return fmt.Errorf("endpoint %v: address is not IPv4: %w", ip, ErrInvalid)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.objs.NrEndpoints.Delete(be32(ip)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("endpoint %v: delete: %w", ip, err)
	}
	return nil
}
