package datapath

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/netreconcile/netreconcile/bpf"
)

// SetServices programs svcs as SetService does each. Ports already
// programmed are compared and changed one at a time; new ones are
// written in batches (putMany): every backend slot, then their entries,
// so that no entry points to a slot not yet written (their ids are
// claimed one at a time, exclusively). Thousands
// of new ports (a node's first apply) then cost a few system calls
// instead of a dozen each.
func (d *Datapath) SetServices(svcs []Service) error {
	for _, s := range svcs {
		if err := s.validate(); err != nil {
			return fmt.Errorf("service %s: %w", s.Key, err)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	programmed := map[bpf.NrSvcKey]bool{}
	if err := scan(d.objs.NrServices, func(k *bpf.NrSvcKey, _ *bpf.NrSvcValue) { programmed[*k] = true }); err != nil {
		return fmt.Errorf("read services: %w", err)
	}
	var fresh, each []Service
	for _, s := range svcs {
		if k := s.Key.mapKey(); programmed[k] {
			each = append(each, s) // also a port listed twice: its last setting wins
		} else {
			programmed[k] = true
			fresh = append(fresh, s)
		}
	}
	if err := d.createServices(fresh); err != nil {
		return err
	}
	for _, s := range each {
		if err := d.setService(s); err != nil {
			return fmt.Errorf("service %s: %w", s.Key, err)
		}
	}
	return nil
}

// createServices writes services that are not programmed; d.mu is held.
// After a failure it removes what it wrote of them.
func (d *Datapath) createServices(svcs []Service) error {
	if len(svcs) == 0 {
		return nil
	}
	used := map[uint32]bool{}
	if err := scan(d.objs.NrSvcIds, func(id *uint32, _ *bpf.NrSvcKey) { used[*id] = true }); err != nil {
		return fmt.Errorf("read service ids: %w", err)
	}
	ids, keys := make([]uint32, len(svcs)), make([]bpf.NrSvcKey, len(svcs))
	for i, s := range svcs {
		// One at a time: a batch cannot be exclusive (BPF_NOEXIST), and
		// the exclusive insert is what keeps two writers from one id.
		id, err := d.claimFree(s.Key.mapKey(), used)
		if err != nil {
			d.releaseIDs(ids[:i])
			return fmt.Errorf("service %s: %w", s.Key, err)
		}
		ids[i], keys[i] = id, s.Key.mapKey()
	}
	var bks []bpf.NrBackendKey
	var bvs []bpf.NrBackend
	vals := make([]bpf.NrSvcValue, len(svcs))
	for i, s := range svcs {
		for slot, b := range s.Backends {
			bks = append(bks, bpf.NrBackendKey{SvcId: ids[i], Slot: uint32(slot)})
			bvs = append(bvs, bpf.NrBackend{Ip: be32(b.IP), Port: be16(b.Port)})
		}
		vals[i] = bpf.NrSvcValue{Id: ids[i], Count: uint16(len(s.Backends)), Flags: s.flags(), AffinityS: s.affinitySeconds()}
	}
	if err := putMany(d.objs.NrBackends, bks, bvs); err != nil {
		d.dropNew(svcs, ids, false)
		return fmt.Errorf("write the backends of %d services: %w", len(svcs), err)
	}
	if err := putMany(d.objs.NrServices, keys, vals); err != nil {
		d.dropNew(svcs, ids, true)
		return fmt.Errorf("write %d services: %w", len(svcs), err)
	}
	return nil
}

// claimFree claims for key the next service id that is not in used (the
// ids read from the kernel, and those claimed since), as claimID does.
func (d *Datapath) claimFree(key bpf.NrSvcKey, used map[uint32]bool) (uint32, error) {
	for range maxServiceIDs + 1 {
		id := d.nextID
		d.nextID++
		if d.nextID == 0 {
			d.nextID = 1
		}
		if id == 0 || used[id] {
			continue
		}
		used[id] = true
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

// releaseIDs gives back ids claimed for services never written.
func (d *Datapath) releaseIDs(ids []uint32) {
	for _, id := range ids {
		_ = d.objs.NrSvcIds.Delete(id)
	}
}

// dropNew removes what createServices wrote of svcs (ids[i] is svcs[i]'s):
// their entries first (when written), so that none points to a slot or
// an id that is gone.
func (d *Datapath) dropNew(svcs []Service, ids []uint32, entries bool) {
	for i, s := range svcs {
		if entries {
			key := s.Key.mapKey()
			_ = d.objs.NrServices.Delete(&key)
		}
		_ = d.dropService(ids[i], len(s.Backends), false)
	}
}
