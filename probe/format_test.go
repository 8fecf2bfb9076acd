package probe

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/netreconcile/netreconcile/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestWriteTextGolden keeps the compact matrix: one numbered table per
// port, a disagreement marked and listed, the services table with a cell
// the policies leave to the balancer.
func TestWriteTextGolden(t *testing.T) {
	pods := []string{"api/api1", "db/pg1", "web/front1"}
	exp := [][]bool{{true, true, false}, {false, true, false}, {true, false, true}}
	obs := [][]bool{{true, true, false}, {false, true, false}, {true, true, true}}
	d, err := policy.Compare(pods, exp, obs)
	if err != nil {
		t.Fatal(err)
	}
	r := &Result{
		Pods:     pods,
		Matrices: []Matrix{{Target: Target{5432, "TCP"}, Expected: exp, Observed: obs, Disagreements: d}},
		Services: &ServiceMatrix{
			Targets: []ServiceTarget{{Service: "db/postgres", Target: Target{5432, "TCP"}, IP: netip.MustParseAddr("10.96.0.30")},
				{Service: "api/api", Target: Target{80, "TCP"}, IP: netip.MustParseAddr("10.96.0.20")}},
			Expected: [][]int{{expectAllowed, expectEither}, {expectAllowed, expectDenied}, {expectDenied, expectAllowed}},
			Observed: [][]bool{{true, false}, {true, false}, {false, true}},
		},
		Notes: []string{"SCTP ports are not probed"},
	}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "matrix.txt")
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(b.Bytes(), want) {
		t.Errorf("%s differs (go test -update): %v\n%s", path, err, b.String())
	}
	if r.Agree() {
		t.Error("a disagreement, and Agree says yes")
	}
}
