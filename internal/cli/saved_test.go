package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSavedPlanFile: plan --out (offline) writes a versioned file with
// the topology, its digest and the observation; apply of it refuses, before
// any kernel access, a file another binary made, an edited topology, a
// --node it was not made for, and -f given as well.
func TestSavedPlanFile(t *testing.T) {
	file := writeFile(t, "topo.yaml", topoOnePod)
	obs := writeFile(t, "n1.json", emptyNode)
	saved := filepath.Join(t.TempDir(), "p.plan")
	out, code, msg := run(t, "plan", "-f", file, "--node", "n1", "--observed", obs, "--out", saved)
	if code != 0 || !strings.Contains(out, "Saved the plan to "+saved) || !strings.Contains(out, "Plan: ") {
		t.Fatalf("plan --out: exit %d %s\n%s", code, msg, out)
	}
	b, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	var sp map[string]any
	if err := json.Unmarshal(b, &sp); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"saved_plan_version", "netreconcile_version", "node", "file", "file_sha256", "topology",
		"observed_sha256", "observed", "plan"} {
		if _, ok := sp[f]; !ok {
			t.Errorf("saved plan has no %q", f)
		}
	}
	if sp["netreconcile_version"] != "test" || sp["node"] != "n1" || sp["topology"] != topoOnePod {
		t.Errorf("saved plan: version %v node %v topology %q", sp["netreconcile_version"], sp["node"], sp["topology"])
	}

	rewrite := func(field string, v any) string {
		m := map[string]any{}
		_ = json.Unmarshal(b, &m)
		m[field] = v
		nb, _ := json.Marshal(m)
		return writeFile(t, "edited.plan", string(nb))
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"other binary", []string{"apply", rewrite("netreconcile_version", "0.9")}, "was made by netreconcile 0.9; this is test"},
		{"edited topology", []string{"apply", rewrite("topology", topoNoPod)}, "does not match its digest"},
		{"newer format", []string{"apply", rewrite("saved_plan_version", "2.0")}, "version 2.0; this netreconcile reads 1."},
		{"other node", []string{"apply", saved, "--node", "n2"}, `--node "n2": the saved plan is for "n1"`},
		{"both", []string{"apply", saved, "-f", file}, "not both"},
		{"neither", []string{"apply"}, "apply needs -f FILE, or a saved plan"},
		{"not a plan", []string{"apply", file}, "saved plan"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(tc.args, "--state-dir", t.TempDir())
			_, code, msg := run(t, args...)
			if code != 1 || !strings.Contains(msg, tc.want) {
				t.Errorf("exit %d %q, want 1 and %q", code, msg, tc.want)
			}
		})
	}
}
