package datapath

import (
	"fmt"
	"path/filepath"

	"github.com/cilium/ebpf"

	"github.com/netreconcile/netreconcile/bpf"
)

// Sizes are the numbers of entries of the datapath's maps. Zero keeps the
// object's own size (NR_MAX_* in bpf/). A map pinned with another size is
// incompatible: Open replaces every map, so entries and connection
// tracking start empty.
type Sizes struct {
	Services         uint32 // nr_services and nr_svc_ids
	Backends         uint32 // nr_backends
	Endpoints        uint32 // nr_endpoints
	Affinity         uint32 // nr_affinity
	Conntrack        uint32 // nr_ct
	PolicyIdentities uint32 // nr_pol_ids
	PolicyPods       uint32 // nr_pol_pods
	PolicyRules      uint32 // nr_pol_rules
}

// fields maps each sized map to its field of s.
func (s *Sizes) fields() map[string]*uint32 {
	return map[string]*uint32{
		bpf.NrMapNrServices: &s.Services, bpf.NrMapNrSvcIds: &s.Services,
		bpf.NrMapNrBackends: &s.Backends, bpf.NrMapNrEndpoints: &s.Endpoints,
		bpf.NrMapNrAffinity: &s.Affinity, bpf.NrMapNrCt: &s.Conntrack,
		bpf.NrMapNrPolIds: &s.PolicyIdentities, bpf.NrMapNrPolPods: &s.PolicyPods,
		bpf.NrMapNrPolRules: &s.PolicyRules,
	}
}

// apply sets the sizes in spec before it is loaded.
func (s Sizes) apply(spec *ebpf.CollectionSpec) error {
	for name, v := range s.fields() {
		if *v == 0 {
			continue
		}
		ms, ok := spec.Maps[name]
		if !ok {
			return fmt.Errorf("size map %s: not in the object: %w", name, ErrInvalid)
		}
		ms.MaxEntries = *v
	}
	return nil
}

// DefaultSizes returns the sizes the object declares.
func DefaultSizes() (Sizes, error) {
	spec, err := nrSpec()
	if err != nil {
		return Sizes{}, err
	}
	var s Sizes
	for name, v := range s.fields() {
		*v = spec.Maps[name].MaxEntries
	}
	return s, nil
}

// PinnedSizes returns the sizes of the maps pinned in pinDir (zero for a
// map that is not pinned), changing nothing.
func PinnedSizes(pinDir string) Sizes {
	var s Sizes
	for name, v := range s.fields() {
		m, err := ebpf.LoadPinnedMap(filepath.Join(pinDir, name), &ebpf.LoadPinOptions{ReadOnly: true})
		if err != nil {
			continue
		}
		*v = m.MaxEntries()
		m.Close()
	}
	return s
}

// Sizes returns the sizes of the maps the datapath uses.
func (d *Datapath) Sizes() Sizes {
	d.mu.Lock()
	defer d.mu.Unlock()
	o := &d.objs.NrMaps
	return Sizes{
		Services: o.NrServices.MaxEntries(), Backends: o.NrBackends.MaxEntries(), Endpoints: o.NrEndpoints.MaxEntries(),
		Affinity: o.NrAffinity.MaxEntries(), Conntrack: o.NrCt.MaxEntries(), PolicyIdentities: o.NrPolIds.MaxEntries(),
		PolicyPods: o.NrPolPods.MaxEntries(), PolicyRules: o.NrPolRules.MaxEntries(),
	}
}

// OpenWith is Open with the maps sized by sizes: pinned maps of other
// sizes are replaced (see Notes).
func OpenWith(pinDir string, sizes Sizes) (*Datapath, error) {
	if pinDir == "" {
		return nil, fmt.Errorf("open datapath: empty pin directory: %w", ErrInvalid)
	}
	pinDir = filepath.Clean(pinDir)
	d, err := open(pinDir, sizes)
	if err != nil {
		return nil, fmt.Errorf("open datapath %s: %w", pinDir, err)
	}
	return d, nil
}
