package reconcile

import (
	"slices"
	"testing"

	"github.com/netreconcile/netreconcile/reconcile/plan"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// without returns a copy of s without the objects drop selects.
func without(s *state.State, drop func(state.Object) bool) *state.State {
	out := state.New()
	for _, k := range state.Kinds() {
		for _, o := range s.Of(k) {
			if !drop(o) {
				out.Put(o)
			}
		}
	}
	return out
}

// stepIndex returns the index of the first step that match selects, or -1.
func stepIndex(steps []Change, match func(Change) bool) int {
	return slices.IndexFunc(steps, match)
}

func ofKind(k state.Kind, owner string, deleted bool) func(Change) bool {
	return func(c Change) bool {
		return plan.KindOf(c) == k && (owner == "" || c.Owner == owner) && (c.Action == Delete) == deleted
	}
}

// TestPlanNewIsolatedPodOrder: a pod that a policy isolates, added to a
// node that runs the datapath, gets its attachments, its identity and its
// isolation before its fast-path endpoint, addresses and routes (the
// engine keeps its attachments in place); a pod that is reachable already
// has its attachment deferred; a deleted pod stops being reachable before
// its isolation is lifted.
func TestPlanNewIsolatedPodOrder(t *testing.T) {
	cfg := testCfg()
	cfg.BPFFS = "/sys/fs/bpf/netreconcile/n1"
	desired, err := Desired(cfg, modelResolved(t, fromY), testUplink)
	if err != nil {
		t.Fatal(err)
	}
	const owner, ip = "pod/x/a", "10.244.1.11"
	isA := func(o state.Object) bool {
		switch v := o.(type) {
		case *state.PodPolicy:
			return v.IP.String() == ip
		case *state.PolicyIdentity:
			return v.Prefix.String() == ip+"/32"
		case *state.PolicyRevision:
			return true // the file changed: so does the revision
		}
		return o.Owner() == owner
	}
	// x/c's program is another build's: an update of a reachable pod.
	obs := observedFrom(without(desired, isA))
	for _, o := range obs.Owned.Of(state.KindAttach) {
		if a := o.(*state.Attach); a.OwnerK == "pod/x/c" {
			a.Live = false
			break
		}
	}
	p, err := Diff("n1", desired, obs)
	if err != nil {
		t.Fatal(err)
	}
	attach := stepIndex(p.Steps(), ofKind(state.KindAttach, owner, false))
	isolate := stepIndex(p.Steps(), func(c Change) bool {
		return plan.KindOf(c) == state.KindPodPolicy && len(c.PolicyWrites()) > 0 && c.PolicyWrites()[0].Op == plan.OpIsolate &&
			c.Desired.(*state.PodPolicy).IP.String() == ip
	})
	identity := stepIndex(p.Steps(), func(c Change) bool { return plan.KindOf(c) == state.KindPolicyIdentity && c.Key == ip+"/32" })
	revision := stepIndex(p.Steps(), ofKind(state.KindPolicyRevision, "", false))
	reach := len(p.Steps())
	for _, k := range []state.Kind{state.KindEndpoint, state.KindAddr, state.KindNeigh, state.KindRoute} {
		if i := stepIndex(p.Steps(), ofKind(k, owner, false)); i >= 0 {
			reach = min(reach, i)
		}
	}
	if attach < 0 || isolate < 0 || identity < 0 || revision < 0 || reach == len(p.Steps()) {
		t.Fatalf("steps missing (attach %d, isolate %d, identity %d, revision %d, reachable %d):\n%s",
			attach, isolate, identity, revision, reach, text(p))
	}
	for name, i := range map[string]int{"attachment": attach, "isolation": isolate, "identity": identity, "revision": revision} {
		if i > reach {
			t.Errorf("the pod's %s (step %d) comes after it is reachable (step %d)", name, i, reach)
		}
	}
	if w := p.Steps()[isolate].PolicyWrites(); len(w) < 2 || w[1].Op != plan.OpAddRule {
		t.Errorf("new side's writes %v: want isolation, then its rules", w)
	}
	rest, atts := plan.SplitAttaches(p)
	if i := stepIndex(rest.Steps(), ofKind(state.KindAttach, owner, false)); i < 0 {
		t.Errorf("the new pod's attachment is deferred past its routes")
	}
	if len(atts.Steps()) != 1 || atts.Steps()[0].Owner != "pod/x/c" {
		t.Errorf("deferred attachments %v, want the one of pod/x/c alone", atts.Steps())
	}

	// x/a deleted: its node route, endpoint and namespace go before its
	// isolation.
	r := modelResolved(t, fromY)
	r.Pods = slices.DeleteFunc(r.Pods, func(p spec.ResolvedPod) bool { return p.Key == "x/a" })
	after, err := Desired(cfg, r, testUplink)
	if err != nil {
		t.Fatal(err)
	}
	p, err = Diff("n1", after, observedFrom(desired))
	if err != nil {
		t.Fatal(err)
	}
	lift := stepIndex(p.Steps(), ofKind(state.KindPodPolicy, "policy/x/a", true))
	if lift < 0 {
		t.Fatalf("no deletion of x/a's side:\n%s", text(p))
	}
	for _, k := range []state.Kind{state.KindRoute, state.KindEndpoint, state.KindNetns} {
		i := stepIndex(p.Steps(), ofKind(k, owner, true))
		if i < 0 || i > lift {
			t.Errorf("%s of x/a deleted at step %d, after its isolation is lifted (step %d)", k, i, lift)
		}
	}
}
