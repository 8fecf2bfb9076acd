package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// These tests run the command as main() does, on the offline paths only
// (validate, explain, plan --observed, and errors raised before any
// kernel access): they need no root and touch no kernel.

const topoOnePod = `apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16, mode: veth}
nodes:
  - {name: n1, address: 172.31.1.2/24, uplink: eth0, podCIDR: 10.244.1.0/24}
pods:
  - {name: a, namespace: t, node: n1, ip: 10.244.1.10}
  - {name: b, namespace: t, node: n1, ip: 10.244.1.11}
`

// topoNoPod asks for nothing an empty node lacks: its plan is empty.
const topoNoPod = `apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16, mode: veth}
nodes:
  - {name: n1, address: 172.31.1.2/24, uplink: eth0, podCIDR: 10.244.1.0/24}
`

// emptyNode is show -o json of a node that holds nothing of ours.
const emptyNode = `{"node": "n1", "uplink": {"name": "eth0", "found": true, "mtu": 1500,
 "addresses": ["172.31.1.2/24"]}, "owned": {}}`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// run executes the root command with args and returns what it printed,
// the exit status main() would take and its message.
func run(t *testing.T, args ...string) (stdout string, code int, message string) {
	t.Helper()
	root := NewRoot("test")
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	code, message = Exit(root.ExecuteContext(context.Background()))
	return out.String(), code, message
}

func TestExit(t *testing.T) {
	for _, c := range []struct {
		err     error
		code    int
		message string
	}{
		{nil, 0, ""},
		{exitError{2}, 2, ""},
		{fmt.Errorf("probe: %w", exitError{1}), 1, ""},
		{errors.New("node \"x\" is not in the file"), 1, "error: node \"x\" is not in the file"},
	} {
		code, message := Exit(c.err)
		if code != c.code || message != c.message {
			t.Errorf("Exit(%v) = %d, %q; want %d, %q", c.err, code, message, c.code, c.message)
		}
	}
}

// TestPlanDetailedExitcode: plan --detailed-exitcode exits 2 when there
// are changes and 0 when there are none; without the flag, 0 either way.
func TestPlanDetailedExitcode(t *testing.T) {
	observed := writeFile(t, "observed.json", emptyNode)
	changes, none := writeFile(t, "pods.yaml", topoOnePod), writeFile(t, "empty.yaml", topoNoPod)
	for _, c := range []struct {
		file     string
		detailed bool
		code     int
		out      string
	}{
		{changes, true, 2, "Plan: 14 to add, 0 to change, 0 to destroy.\n"},
		{changes, false, 0, "Plan: 14 to add, 0 to change, 0 to destroy.\n"},
		{none, true, 0, "No changes. Node n1 matches the file.\n"},
		{none, false, 0, "No changes. Node n1 matches the file.\n"},
	} {
		args := []string{"plan", "-f", c.file, "--node", "n1", "--observed", observed}
		if c.detailed {
			args = append(args, "--detailed-exitcode")
		}
		out, code, msg := run(t, args...)
		if code != c.code || msg != "" || !strings.HasSuffix(out, c.out) {
			t.Errorf("%v: exit %d %q, output:\n%s\nwant exit %d and output ending %q", args, code, msg, out, c.code, c.out)
		}
	}
}

// TestPlanJSON: -o json prints the plan as JSON.
func TestPlanJSON(t *testing.T) {
	out, code, msg := run(t, "plan", "-f", writeFile(t, "pods.yaml", topoOnePod), "--node", "n1",
		"--observed", writeFile(t, "observed.json", emptyNode), "-o", "json")
	var plan struct {
		Node    string            `json:"node"`
		Changes []json.RawMessage `json:"changes"`
	}
	if code != 0 {
		t.Fatalf("exit %d: %s", code, msg)
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil || plan.Node != "n1" || len(plan.Changes) != 14 {
		t.Errorf("plan -o json: %v, node %q, %d changes:\n%s", err, plan.Node, len(plan.Changes), out)
	}
}

// TestOutputFlag: every verb with -o refuses a value other than text,
// json or yaml with the same message, before reading the file or the
// kernel; yaml is the JSON document in YAML.
func TestOutputFlag(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	state := t.TempDir()
	for _, args := range [][]string{
		{"plan", "-f", missing, "--state-dir", state},
		{"plan", "-f", missing, "--observed", missing},
		{"show", "--state-dir", state, "--node-netns", "/nonexistent", "-f", missing},
		{"probe", "-f", missing},
	} {
		for _, o := range []string{"yml", "", "JSON"} {
			_, code, msg := run(t, append(args, "-o", o)...)
			if want := fmt.Sprintf("error: -o %q: want text, json or yaml", o); code != 1 || msg != want {
				t.Errorf("%v -o %q: exit %d %q, want exit 1 %q", args, o, code, msg, want)
			}
		}
	}
}

// TestRequiredFile: the verbs that need a file say so, and the flags
// before it are still checked first.
// TestFileSet: -f repeats and names directories; the files merge into
// one topology, and one file given twice is an error, never merged with
// itself.
func TestFileSet(t *testing.T) {
	head, pods, _ := strings.Cut(topoOnePod, "pods:\n")
	dir := t.TempDir()
	for name, text := range map[string]string{"a.yaml": head, "b.yaml": "apiVersion: netreconcile/v1\nkind: Topology\npods:\n" + pods} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	for _, args := range [][]string{{"-f", a, "-f", b}, {"-f", dir}} {
		out, code, msg := run(t, append([]string{"validate"}, args...)...)
		if code != 0 || !strings.Contains(out, "valid (1 nodes, 2 pods, 0 services, 0 policies)") {
			t.Errorf("validate %v: exit %d, %q %q", args, code, out, msg)
		}
	}
	_, code, msg := run(t, "validate", "-f", a, "-f", dir)
	if code != 1 || !strings.Contains(msg, "in the set twice") {
		t.Errorf("validate -f X -f DIR-with-X: exit %d, %q", code, msg)
	}
	_, code, msg = run(t, "validate", "--max-file-size", "100", "-f", dir)
	if code != 1 || !strings.Contains(msg, a+": file is ") || !strings.Contains(msg, "over the 100 bytes limit (--max-file-size)") {
		t.Errorf("validate --max-file-size 100: exit %d, %q", code, msg)
	}
	_, code, msg = run(t, "validate", "--max-file-size", "1Ti", "-f", dir)
	if code != 1 || !strings.Contains(msg, `want a positive size in bytes`) {
		t.Errorf("validate --max-file-size 1Ti: exit %d, %q", code, msg)
	}
}

func TestRequiredFile(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	for _, args := range [][]string{
		{"validate"}, {"plan"}, {"plan", "-o", "yaml"}, {"destroy"}, {"watch"},
		{"lab", "up"}, {"lab", "down"}, {"probe"}, {"explain", "x/a", "x/b", "80"},
	} {
		_, code, msg := run(t, append(args, "--state-dir", state)...)
		if want := `error: required flag(s) "file" not set`; code != 1 || msg != want {
			t.Errorf("%v: exit %d %q, want exit 1 %q", args, code, msg, want)
		}
	}
	// apply takes -f FILE or a saved plan.
	for _, args := range [][]string{{"apply"}, {"apply", "--dry-run"}} {
		_, code, msg := run(t, append(args, "--state-dir", state)...)
		if want := "error: apply needs -f FILE, or a saved plan (plan --out PLAN, then apply PLAN)"; code != 1 || msg != want {
			t.Errorf("%v: exit %d %q, want exit 1 %q", args, code, msg, want)
		}
	}
	_, code, msg := run(t, "plan", "--state-dir", state, "--attach-mode", "xdp")
	if want := `error: --attach-mode "xdp": want auto, tcx or tc`; code != 1 || msg != want {
		t.Errorf("plan --attach-mode xdp: exit %d %q, want %q", code, msg, want)
	}
}

// TestOfflineVerbs: validate, explain and plan --observed answer from the
// file alone and leave the state directory as it was (here: missing).
func TestOfflineVerbs(t *testing.T) {
	file := writeFile(t, "pods.yaml", topoOnePod)
	observed := writeFile(t, "observed.json", emptyNode)
	state := filepath.Join(t.TempDir(), "state")
	for _, c := range []struct {
		args []string
		out  string
	}{
		{[]string{"validate", "-f", file}, file + ": valid (1 nodes, 2 pods, 0 services, 0 policies)\n"},
		{[]string{"explain", "-f", file, "t/a", "t/b", "80"}, "ALLOWED t/a (10.244.1.10) -> t/b (10.244.1.11) 80/TCP"},
		{[]string{"plan", "-f", file, "--node", "n1", "--observed", observed}, "Plan: 14 to add"},
		{[]string{"version"}, "netreconcile test (topology netreconcile/v1, plan format 2.0)\n"},
		{[]string{"version", "-o", "json"}, `"plan_format": "2.0"`},
		{[]string{"version", "-o", "yaml"}, "plan_format: \"2.0\"\n"},
		{[]string{"plan", "-f", file, "--node", "n1", "--observed", observed, "-o", "yaml"}, "changes:\n  - action: create\n"},
		{[]string{"explain", "-f", file, "t/a", "t/b", "80", "-o", "json"}, `"verdict": "allowed",`},
		{[]string{"graph", "-f", file}, `"t/a" [label="t/a\n10.244.1.10 veth`},
		{[]string{"graph", "-f", file, "-o", "mermaid"}, "flowchart LR\n"},
		{[]string{"schema"}, `"$id": "https://github.com/netreconcile/netreconcile/schema/topology.schema.json"`},
	} {
		out, code, msg := run(t, append(c.args, "--state-dir", state)...)
		if code != 0 || !strings.Contains(out, c.out) {
			t.Errorf("%v: exit %d %q, output:\n%s\nwant %q in it", c.args, code, msg, out, c.out)
		}
	}
	if _, err := os.Lstat(state); !os.IsNotExist(err) {
		t.Errorf("the offline verbs made the state directory: %v", err)
	}
}

// TestObservedLegacyKeys: a show -o json written before format 2.0
// (camelCase keys, no format_version) still plans the same; a future
// major version is refused.
func TestObservedLegacyKeys(t *testing.T) {
	legacy := `{"node": "n1", "uplink": {"name": "eth0", "found": true, "mtu": 1500, "addresses": ["172.31.1.2/24"]},
 "owned": {"links": [{"ns": "node", "name": "nrbr0", "type": "bridge", "mtu": 1500, "up": true, "proxyArp": true}]}}`
	b, err := currentObserved([]byte(legacy))
	if err != nil || !strings.Contains(string(b), `"proxy_arp":true`) || strings.Contains(string(b), "proxyArp") {
		t.Errorf("legacy keys not renamed: %v\n%s", err, b)
	}
	if _, err := currentObserved([]byte(`{"format_version": "3.0", "node": "n1"}`)); err == nil || !strings.Contains(err.Error(), "3.0") {
		t.Errorf("format 3.0 taken: %v", err)
	}
	cur := []byte(`{"format_version": "2.0", "node": "n1", "owned": {}}`)
	if b, err := currentObserved(cur); err != nil || string(b) != string(cur) {
		t.Errorf("format 2.0 changed: %v %s", err, b)
	}
}
