package policy

import (
	"slices"
	"testing"

	"github.com/netreconcile/netreconcile/internal/policymodel"
	"github.com/netreconcile/netreconcile/spec"
)

// The standard model of the Kubernetes network-policy e2e tests, shared
// with the compiler's and the end-to-end tests: see internal/policymodel.
var stdPods = policymodel.Pods

// modelYAML writes the standard model with the given policies (YAML list
// items, indented by two spaces). webPort, when not nil, also gives every
// pod a TCP port named "web" on 80, or on the number webPort lists for it,
// to show that named ports resolve per destination pod.
func modelYAML(policies string, webPort map[string]int, o policymodel.Options) string {
	return policymodel.YAML(policymodel.Scenario{Policies: policies, WebPort: webPort}, o)
}

func loadModel(t *testing.T, policies string, webPort map[string]int) *spec.Resolved {
	t.Helper()
	src := modelYAML(policies, webPort, policymodel.Options{})
	r, err := spec.LoadBytes("model.yaml", []byte(src))
	if err != nil {
		t.Fatalf("load model: %v\n%s", err, src)
	}
	return r
}

// grid parses a hand-written expected table over the standard pods.
func grid(t *testing.T, text string) [][]bool {
	t.Helper()
	names, m, err := ParseMatrix(text)
	if err != nil {
		t.Fatalf("expected table: %v", err)
	}
	if !slices.Equal(names, stdPods) {
		t.Fatalf("expected table names %v, want %v", names, stdPods)
	}
	return m
}
