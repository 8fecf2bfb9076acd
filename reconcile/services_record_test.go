package reconcile

import (
	"maps"
	"net/netip"
	"testing"

	"github.com/netreconcile/netreconcile/state"
)

// TestServiceOwnersFromRecord: a service entry the file still has takes
// the file's owner; one it no longer has takes the recorded owner, so its
// deletion names the service it was. Before apply the record holds both;
// once converged, only the file's.
func TestServiceOwnersFromRecord(t *testing.T) {
	svc := func(ip, owner string) *state.Service {
		return &state.Service{IP: netip.MustParseAddr(ip), Port: 80, Proto: "TCP", OwnerK: owner}
	}
	desired, owned := state.New(), state.New()
	for _, o := range []state.Object{svc("10.96.0.10", "service/x/web")} {
		if err := desired.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range []state.Object{svc("10.96.0.10", ""), svc("10.96.0.11", "")} {
		if err := owned.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	recorded := map[string]string{"10.96.0.10:80/TCP": "service/x/old", "10.96.0.11:80/TCP": "service/x/gone",
		"10.96.0.12:80/TCP": "service/x/absent"}
	setOwners(owned, desired, recorded)
	got := map[string]string{}
	for key, o := range owned.All(state.KindService) {
		got[key] = o.Owner()
	}
	want := map[string]string{"10.96.0.10:80/TCP": "service/x/web", "10.96.0.11:80/TCP": "service/x/gone"}
	if !maps.Equal(got, want) {
		t.Errorf("owners %v, want %v", got, want)
	}

	cfg := &Config{Node: "n1", StateDir: t.TempDir()}
	if err := cfg.recordServices(desired, owned); err != nil {
		t.Fatal(err)
	}
	if rec, _, err := cfg.records().ServiceOwners(); err != nil || !maps.Equal(rec, want) {
		t.Errorf("recorded before apply: %v, %v; want %v", rec, err, want)
	}
	if err := cfg.recordServices(desired, nil); err != nil {
		t.Fatal(err)
	}
	if rec, _, err := cfg.records().ServiceOwners(); err != nil || len(rec) != 1 || rec["10.96.0.10:80/TCP"] != "service/x/web" {
		t.Errorf("recorded once converged: %v, %v; want the file's service alone", rec, err)
	}
}
