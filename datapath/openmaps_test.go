package datapath

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestOpenMapsThenPrograms: OpenMapsWith gives a datapath whose entries
// can be written before any program is verified, and OpenWith then loads
// the programs against those very maps: what either writes the other
// reads, and the programs reference the pinned maps.
func TestOpenMapsThenPrograms(t *testing.T) {
	skipUnlessRoot(t)
	dir := filepath.Join(bpffsMount, "netreconcile-test-"+randID(t))
	t.Cleanup(func() {
		if err := Destroy(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	m, err := OpenMapsWith(dir, Sizes{})
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("eBPF datapath unavailable here: %v", err)
	}
	must(t, err, "open maps")
	t.Cleanup(func() { m.Close() })
	if _, err := os.Stat(filepath.Join(dir, progsDir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenMapsWith pinned programs (stat %s: %v)", progsDir, err)
	}
	cfg, err := m.Config()
	must(t, err, "config")
	if !cfg.FastPath || cfg.HairpinIP != DefaultHairpinIP {
		t.Errorf("fresh maps not stamped with the defaults: %+v", cfg)
	}
	backend := Backend{IP: netip.MustParseAddr("10.0.0.1"), Port: 8080}
	first := Service{Key: ServiceKey{IP: clusterIP, Port: 80, Proto: ProtoTCP}, Backends: []Backend{backend}}
	must(t, m.SetService(first), "set through the maps alone")
	if err := m.Attach("", "lo", HostIngress); !errors.Is(err, ErrInvalid) {
		t.Errorf("Attach without programs: %v, want ErrInvalid", err)
	}

	full := openDP(t, dir)
	got, err := full.Services()
	must(t, err, "services through the full datapath")
	if !equalService(got[first.Key], first) {
		t.Errorf("service written before the programs were loaded reads %+v, want %+v", got[first.Key], first)
	}
	second := Service{Key: ServiceKey{IP: clusterIP, Port: 81, Proto: ProtoUDP}, Backends: []Backend{backend}}
	must(t, full.SetService(second), "set through the full datapath")
	if got, err := m.Services(); err != nil || len(got) != 2 || !equalService(got[second.Key], second) {
		t.Errorf("maps-only datapath reads %v (%v), want both services", got, err)
	}
	id, err := identify(full.objs.NrFromPod)
	must(t, err, "program identity")
	info, err := m.objs.NrServices.Info()
	must(t, err, "map info")
	svcID, _ := info.ID()
	if !slices.Contains(id.maps, svcID) {
		t.Errorf("nr_from_pod uses maps %v, not the pinned nr_services (%d)", id.maps, svcID)
	}
	if _, err := os.Stat(filepath.Join(dir, progsDir)); err != nil {
		t.Errorf("OpenWith did not pin the programs: %v", err)
	}
}
