package policy_test

import (
	"slices"
	"testing"

	"github.com/netreconcile/netreconcile/internal/policymodel"
	"github.com/netreconcile/netreconcile/policy"
	"github.com/netreconcile/netreconcile/spec"
)

// TestJudgeIsEvaluate: a Judge gives Evaluate's verdicts, reasons
// included, and Allowed gives their answer, on every pair, port and
// protocol of every scenario of the corpus.
func TestJudgeIsEvaluate(t *testing.T) {
	for _, sc := range policymodel.Scenarios {
		r, err := spec.LoadBytes("model.yaml", []byte(policymodel.YAML(sc, policymodel.Options{})))
		if err != nil {
			t.Fatalf("%s: %v", sc.Name, err)
		}
		j := policy.NewJudge(r)
		allowed := 0
		for _, src := range policymodel.Pods {
			for _, dst := range policymodel.Pods {
				for _, pp := range []struct {
					port  int
					proto string
				}{{80, "TCP"}, {81, "UDP"}, {80, "SCTP"}, {0, "ICMP"}} {
					s, d := policy.PodEndpoint(src), policy.PodEndpoint(dst)
					want := policy.Evaluate(r, s, d, pp.port, pp.proto)
					got := j.Evaluate(s, d, pp.port, pp.proto)
					if got.String() != want.String() || !slices.Equal(got.Ingress.AllowedBy, want.Ingress.AllowedBy) {
						t.Errorf("%s: %s -> %s %d/%s: Judge.Evaluate\n%s\nEvaluate\n%s", sc.Name, src, dst, pp.port, pp.proto, got, want)
					}
					if a := j.Allowed(s, d, pp.port, pp.proto); a != want.Allowed {
						t.Errorf("%s: %s -> %s %d/%s: Allowed %v, Evaluate %v", sc.Name, src, dst, pp.port, pp.proto, a, want.Allowed)
					}
					if want.Allowed {
						allowed++
					}
				}
			}
		}
		if allowed == 0 {
			t.Errorf("%s: nothing allowed; the comparison proves little", sc.Name)
		}
	}
}
