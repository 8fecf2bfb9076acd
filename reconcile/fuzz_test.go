package reconcile

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/netreconcile/netreconcile/reconcile/plan"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// model applies a plan's steps to an in-memory state the way the kernel
// would: what apply creates or updates becomes the desired object, what it
// deletes (or a namespace deletion takes with it) goes.
func model(obs *Observed, p *Plan) *Observed {
	next := observedFrom(obs.Owned)
	next.Foreign = obs.Foreign
	for _, c := range p.Steps() {
		k := plan.KindOf(c)
		switch c.Action {
		case Delete:
			next.Owned.Remove(k, c.Key)
		default:
			next.Owned.Put(c.Desired)
			if n, ok := c.Desired.(*state.Netns); ok {
				// created namespaces are recorded as ours
				cp := *n
				cp.Owned = true
				next.Owned.Put(&cp)
			}
		}
	}
	return next
}

// randomPods derives a node's pods from fuzz input: names, modes, IPs and
// namespaces drawn from small sets so that desired and observed overlap.
func randomPods(r *rand.Rand) []spec.ResolvedPod {
	var pods []spec.ResolvedPod
	used := map[string]bool{}
	for range r.IntN(6) {
		name := fmt.Sprintf("p%d", r.IntN(8))
		if used[name] {
			continue
		}
		used[name] = true
		mode := []string{"veth", "bridge"}[r.IntN(2)]
		p := pod(name, fmt.Sprintf("10.244.1.%d", 10+r.IntN(20)), mode)
		if r.IntN(4) == 0 {
			p.Netns = "alt-" + name
		}
		pods = append(pods, p)
	}
	// IPs must be unique on a node (validation guarantees it)
	seen := map[netip.Addr]bool{}
	out := pods[:0]
	for _, p := range pods {
		if !seen[p.IP] {
			seen[p.IP] = true
			out = append(out, p)
		}
	}
	return out
}

// mutate damages an observed state the way drift would.
func mutate(r *rand.Rand, obs *Observed) {
	for _, k := range state.Kinds() {
		for _, o := range obs.Owned.Of(k) {
			switch r.IntN(10) {
			case 0:
				obs.Owned.Remove(k, o.Key())
			case 1:
				if l, ok := o.(*state.Link); ok {
					l.MTU = 1400
					l.Up = false
				}
				if rt, ok := o.(*state.Route); ok {
					rt.Scope = "host"
				}
			}
		}
	}
}

// FuzzPlanConverges: for random desired and observed states, applying the
// plan to an in-memory model reaches the desired state (the next plan is
// empty), and a plan on a converged state is empty.
func FuzzPlanConverges(f *testing.F) {
	for _, seed := range []uint64{0, 1, 2, 3, 42, 1000} {
		f.Add(seed, seed+7)
	}
	f.Fuzz(func(t *testing.T, a, b uint64) {
		r := rand.New(rand.NewPCG(a, b))
		before := randomPods(r)
		after := randomPods(r)
		obs := observedFrom(mustDesired(t, testResolved(before...)))
		for _, o := range obs.Owned.Of(state.KindNetns) {
			o.(*state.Netns).Owned = true
		}
		mutate(r, obs)
		desired := mustDesired(t, testResolved(after...))
		p, err := Diff("n1", desired, obs)
		if err != nil {
			t.Fatalf("diff: %v", err)
		}
		next := model(obs, p)
		p2, err := Diff("n1", desired, next)
		if err != nil {
			t.Fatalf("diff after apply: %v", err)
		}
		if !p2.Empty() {
			t.Fatalf("not converged after one apply:\nfirst:\n%s\nsecond:\n%s", text(p), text(p2))
		}
		if p3 := model(next, p2); !p3.Owned.Equal(next.Owned) {
			t.Fatal("an empty plan changed the model")
		}
	})
}
