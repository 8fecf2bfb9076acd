package reconcile

import (
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/internal/policymodel"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

func modelResolved(t *testing.T, policies string) *spec.Resolved {
	t.Helper()
	src := policymodel.YAML(policymodel.Scenario{Policies: policies}, policymodel.Options{Nodes: [2]string{"n1", "n2"}})
	r, err := spec.LoadBytes("model.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

const fromY = `
  - name: from-y
    namespace: x
    spec:
      podSelector: {}
      ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}], ports: [{port: 80}]}]
`

// TestPolicyPlan: policy objects exist with the datapath, run in apply's
// serial part in kind order (the revision after every entry), and a
// policy change touches only the sides it is about, shown as rule lists.
func TestPolicyPlan(t *testing.T) {
	cfg := testCfg()
	cfg.BPFFS = "/sys/fs/bpf/netreconcile/n1"
	r := modelResolved(t, fromY)
	desired, err := Desired(cfg, r, testUplink)
	if err != nil {
		t.Fatal(err)
	}
	// x/a and x/c are on n1 and isolated for ingress; n1 holds the
	// identities of its 5 pods, of the 2 pods of y on n2 (the peers its
	// rules name: not n2's pods of x and z) and of its address and gateway.
	if n := len(desired.Of(state.KindPodPolicy)); n != 2 {
		t.Errorf("%d pod policies, want 2 (x/a, x/c ingress)", n)
	}
	if n := len(desired.Of(state.KindPolicyIdentity)); n != 9 {
		t.Errorf("%d identities, want 9", n)
	}
	if n := len(desired.Of(state.KindPolicyRevision)); n != 1 {
		t.Fatalf("%d revisions, want 1", n)
	}
	p, err := Diff("n1", desired, observedFrom(state.New()))
	if err != nil {
		t.Fatal(err)
	}
	last, rev := -1, -1
	for i, c := range p.Steps() {
		switch c.Desired.(type) {
		case *state.PolicyIdentity, *state.PodPolicy:
			last = i
			if strings.HasPrefix(c.Owner, "pod/") {
				t.Errorf("%s %s owned by %s: apply would run it in parallel, after the revision", c.Kind, c.Key, c.Owner)
			}
		case *state.PolicyRevision:
			rev = i
		}
	}
	if rev < last {
		t.Errorf("revision at step %d, before a policy entry at %d", rev, last)
	}

	// Converged (through the JSON of show -o json): nothing to do. Then
	// one policy changes its port: one side per isolated pod and the
	// revision change, nothing else.
	obs := observedFrom(desired)
	if p, err := Diff("n1", desired, obs); err != nil || !p.Empty() {
		t.Fatalf("converged node: %v\n%s", err, text(p))
	}
	r2 := modelResolved(t, strings.Replace(fromY, "port: 80", "port: 81", 1))
	desired2, err := Desired(cfg, r2, testUplink)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := Diff("n1", desired2, obs)
	if err != nil {
		t.Fatal(err)
	}
	if got := p2.Summary; got != (Summary{Change: 3}) {
		t.Fatalf("summary %+v, want 3 changes\n%s", got, text(p2))
	}
	out := text(p2)
	for _, want := range []string{"~ rules: +", "/TCP/81", "-", "policy-revision"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}

	// Without policies (a service keeps the datapath) only the revision
	// stays; identities and sides go.
	r3 := modelResolved(t, "")
	r3.Services = []spec.ResolvedService{{Key: "y/web", Name: "web", Namespace: "y"}}
	desired3, err := Desired(cfg, r3, testUplink)
	if err != nil {
		t.Fatal(err)
	}
	p3, err := Diff("n1", desired3, obs)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p3.Changes {
		if c.Kind == "policy-identity" || c.Kind == "pod-policy" {
			if c.Action != Delete {
				t.Errorf("%s %s %s, want delete", c.Action, c.Kind, c.Key)
			}
		}
	}
	if len(desired3.Of(state.KindPolicyRevision)) != 1 {
		t.Error("the revision object goes away while the datapath stays")
	}
}
