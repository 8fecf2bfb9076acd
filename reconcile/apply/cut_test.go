package apply

import (
	"slices"
	"testing"

	"github.com/netreconcile/netreconcile/reconcile/plan"
	"github.com/netreconcile/netreconcile/state"
)

// TestCutAtPrograms: a pod's steps are cut before the first attachment
// made or changed (the first step that needs the programs), never before a
// detachment, and a list without one is left whole.
func TestCutAtPrograms(t *testing.T) {
	netns := plan.Change{Action: plan.Create, Key: "ns", Desired: &state.Netns{Ref: "p"}}
	link := plan.Change{Action: plan.Create, Key: "link", Desired: &state.Link{Name: "v"}}
	detach := plan.Change{Action: plan.Delete, Key: "old", Observed: &state.Attach{Name: "old"}}
	attach := plan.Change{Action: plan.Create, Key: "in", Desired: &state.Attach{Name: "in"}}
	update := plan.Change{Action: plan.Update, Key: "out", Desired: &state.Attach{Name: "out"}, Observed: &state.Attach{Name: "out"}}
	addr := plan.Change{Action: plan.Create, Key: "addr", Desired: &state.Addr{Link: "v"}}
	keys := func(cs []plan.Change) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Key)
		}
		return out
	}
	for _, tc := range []struct {
		name         string
		in           []plan.Change
		before, from []string
	}{
		{"pod", []plan.Change{netns, link, attach, update, addr}, []string{"ns", "link"}, []string{"in", "out", "addr"}},
		{"update first", []plan.Change{link, update, addr}, []string{"link"}, []string{"out", "addr"}},
		{"detach only", []plan.Change{detach, link, addr}, []string{"old", "link", "addr"}, nil},
		{"attach first", []plan.Change{attach, addr}, nil, []string{"in", "addr"}},
		{"empty", nil, nil, nil},
	} {
		before, from := cutAtPrograms(tc.in)
		if !slices.Equal(keys(before), tc.before) || !slices.Equal(keys(from), tc.from) {
			t.Errorf("%s: cut %v | %v, want %v | %v", tc.name, keys(before), keys(from), tc.before, tc.from)
		}
	}
}
