package reconcile

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/state"
)

// TestCheckSaved: a saved plan passes against the same observation and
// plan, and is refused, naming each difference, when an owned object is
// gone, new or changed, a foreign object appeared, or the plan differs.
func TestCheckSaved(t *testing.T) {
	observed := func(mtu int, withRoute bool, foreign bool) *Observed {
		obs := state.NewObserved("n1")
		obs.Owned.Put(&state.Link{Name: "veth1", Type: state.LinkVeth, MTU: mtu, Alias: state.Alias("n1", "pod/x/a")})
		if withRoute {
			obs.Owned.Put(&state.Route{Dst: netip.MustParsePrefix("10.244.1.10/32"), Dev: "veth1", OwnerK: "pod/x/a"})
		}
		if foreign {
			obs.Foreign.Links["node/eth9"] = "dummy"
		}
		return obs
	}
	desired := state.New()
	desired.Put(&state.Link{Name: "veth1", Type: state.LinkVeth, MTU: 1500, Alias: state.Alias("n1", "pod/x/a")})
	desired.Put(&state.Route{Dst: netip.MustParsePrefix("10.244.1.10/32"), Dev: "veth1", OwnerK: "pod/x/a"})
	result := func(obs *Observed) *Result {
		p, err := Diff("n1", desired, obs)
		if err != nil {
			t.Fatal(err)
		}
		return &Result{Plan: p, Observed: obs}
	}
	base := observed(1500, true, false)
	digest, err := ObservedDigest(base)
	if err != nil {
		t.Fatal(err)
	}
	saved := &SavedPlan{Node: "n1", Observed: base, ObservedSHA256: digest, Plan: result(base).Plan}
	if err := CheckSaved(saved, result(observed(1500, true, false))); err != nil {
		t.Fatalf("same node: %v", err)
	}
	for _, tc := range []struct {
		name string
		obs  *Observed
		want []string
	}{
		{"route gone", observed(1500, false, false), []string{"route node/10.244.1.10/32: gone",
			"the plan now also has: create route node/10.244.1.10/32"}},
		{"mtu changed", observed(1450, true, false), []string{"link node/veth1: mtu 1500 -> 1450",
			"the plan now also has: update link node/veth1"}},
		{"foreign link", observed(1500, true, true), []string{"foreign link node/eth9: new"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckSaved(saved, result(tc.obs))
			if !errors.Is(err, ErrStalePlan) {
				t.Fatalf("got %v, want ErrStalePlan", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %q:\n%v", w, err)
				}
			}
		})
	}
}
