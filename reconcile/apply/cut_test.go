package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// TestCutAfterDatapath: the node's steps are cut just after the step that
// creates or updates the datapath; a deletion of it does not count.
func TestCutAfterDatapath(t *testing.T) {
	link := plan.Change{Action: plan.Create, Key: "link", Desired: &state.Link{Name: "nrsvc0"}}
	gone := plan.Change{Action: plan.Delete, Key: "old-dp", Observed: &state.Datapath{}}
	dp := plan.Change{Action: plan.Create, Key: "dp", Desired: &state.Datapath{}}
	svc := plan.Change{Action: plan.Create, Key: "svc", Desired: &state.Service{}}
	for _, tc := range []struct {
		name          string
		in            []plan.Change
		through, rest []string
	}{
		{"create", []plan.Change{link, dp, svc}, []string{"link", "dp"}, []string{"svc"}},
		{"deleted only", []plan.Change{gone, link, svc}, []string{"old-dp", "link", "svc"}, nil},
		{"last", []plan.Change{link, dp}, []string{"link", "dp"}, nil},
	} {
		through, rest := cutAfterDatapath(tc.in)
		if !slices.Equal(keysOf(through), tc.through) || !slices.Equal(keysOf(rest), tc.rest) {
			t.Errorf("%s: cut %v | %v, want %v | %v", tc.name, keysOf(through), keysOf(rest), tc.through, tc.rest)
		}
	}
}

func keysOf(cs []plan.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Key)
	}
	return out
}

// TestBeside: both sides run; a failure of one stops the other, and only
// the real failure is returned, not the other side's stop; a cancel from
// the caller is returned as such.
func TestBeside(t *testing.T) {
	refused := errors.New("kernel refused")
	// waits until stopped, as a run between two changes would notice
	waiter := func(ctx context.Context) error {
		<-ctx.Done()
		return fmt.Errorf("stopped before create pod x: %w", ctx.Err())
	}
	fails := func(context.Context) error { return fmt.Errorf("create service s: %w", refused) }
	ok := func(context.Context) error { return nil }

	if err := beside(context.Background(), ok, ok); err != nil {
		t.Errorf("both fine: %v", err)
	}
	for name, sides := range map[string][2]func(context.Context) error{
		"node fails": {fails, waiter},
		"pods fail":  {waiter, fails},
	} {
		err := beside(context.Background(), sides[0], sides[1])
		if !errors.Is(err, refused) || errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v, want the refusal alone", name, err)
		}
	}
	joined := func(context.Context) error { return errors.Join(fails(nil), errors.New("other pod refused")) }
	if err := beside(context.Background(), waiter, joined); !errors.Is(err, refused) || !strings.Contains(err.Error(), "other pod") {
		t.Errorf("joined failures: %v, want both", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := beside(ctx, waiter, waiter); !errors.Is(err, context.Canceled) {
		t.Errorf("caller's cancel: %v, want context.Canceled", err)
	}
}

// TestServiceRun: only service ports created or updated count, from the
// start; a deletion or another object ends the run.
func TestServiceRun(t *testing.T) {
	put := plan.Change{Action: plan.Create, Desired: &state.Service{}}
	upd := plan.Change{Action: plan.Update, Desired: &state.Service{}, Observed: &state.Service{}}
	del := plan.Change{Action: plan.Delete, Observed: &state.Service{}}
	ep := plan.Change{Action: plan.Create, Desired: &state.Endpoint{}}
	for _, tc := range []struct {
		in   []plan.Change
		want int
	}{
		{[]plan.Change{put, upd, put, ep, put}, 3},
		{[]plan.Change{del, put}, 0},
		{[]plan.Change{put, del, put}, 1},
		{[]plan.Change{put, put}, 2},
		{nil, 0},
	} {
		if got := serviceRun(tc.in); got != tc.want {
			t.Errorf("serviceRun(%d changes) = %d, want %d", len(tc.in), got, tc.want)
		}
	}
}
