package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/internal/nstest"
)

// offlineTopo is a two-node lab with a service (so the plans hold
// datapath entries); edited changes a pod's IP, adds a pod and a service
// port, and removes a service.
func offlineTopo(id string, edited bool) string {
	extra, port, nothing := "", "", `
  - {name: nothing, namespace: o, clusterIP: 10.96.0.11, selector: {app: none}, ports: [{port: 80}]}`
	ip := "10.244.1.11"
	if edited {
		ip = "10.244.1.21"
		extra = fmt.Sprintf("\n  - {name: new, namespace: o, node: %[1]sb, ip: 10.244.2.12, netns: %[1]s-new, labels: {app: web}}", id)
		port, nothing = "\n      - {name: dns, port: 53, targetPort: 53, protocol: UDP}", ""
	}
	return fmt.Sprintf(`apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/16}
nodes:
  - {name: %[1]sa, address: 172.31.1.2/24, uplink: eth0, podCIDR: 10.244.1.0/24}
  - {name: %[1]sb, address: 172.31.1.3/24, uplink: eth0, podCIDR: 10.244.2.0/24}
pods:
  - {name: client, namespace: o, node: %[1]sa, ip: 10.244.1.10, netns: %[1]s-cl}
  - {name: web1, namespace: o, node: %[1]sa, ip: %[2]s, netns: %[1]s-w1, labels: {app: web}}
  - {name: web2, namespace: o, node: %[1]sb, ip: 10.244.2.11, mode: bridge, netns: %[1]s-w2, labels: {app: web}}%[3]s
services:
  - name: web
    namespace: o
    clusterIP: 10.96.0.10
    selector: {app: web}
    ports:
      - {name: http, port: 80, targetPort: 8080, protocol: TCP}%[4]s%[5]s
`, id, ip, extra, port, nothing)
}

// TestOfflinePlanUnprivileged: each lab node's show -o json, copied away,
// lets an unprivileged user plan an edited file with no kernel and no
// state directory, and the plan is the one the node makes itself (same
// JSON, byte for byte); plan --all-nodes --observed DIR agrees with the
// live plan --all-nodes of the lab.
func TestOfflinePlanUnprivileged(t *testing.T) {
	nstest.RequireRoot(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv not installed")
	}
	bin, id, stateDir := BuildBinary(t), UniqueName("op"), t.TempDir()
	pins := "/sys/fs/bpf/netreconcile-test-" + id
	t.Cleanup(func() { _ = os.Remove(pins) })
	nodes := []string{id + "a", id + "b"}
	file := WriteFile(t, "topo.yaml", offlineTopo(id, false))
	if out, errOut, code := Run(t, bin, "lab", "up", "-f", file, "--state-dir", stateDir, "--bpffs", pins); code != 0 {
		t.Fatalf("lab up: exit %d\n%s%s", code, out, errOut)
	}
	LabDown(t, bin, file, "--state-dir", stateDir, "--bpffs", pins)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", id+"-new").Run() })

	// What nobody can read: a 0755 directory of 0644 files and a 0755 copy
	// of the binary.
	pub := publicDir(t)
	edited := filepath.Join(pub, "edited.yaml")
	writePublic(t, edited, []byte(offlineTopo(id, true)), 0o644)
	binBytes, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	nobodyBin := filepath.Join(pub, "netreconcile")
	writePublic(t, nobodyBin, binBytes, 0o755)
	states := filepath.Join(pub, "states")
	if err := os.Mkdir(states, 0o755); err != nil {
		t.Fatal(err)
	}
	nobody := func(args ...string) (string, string, int) {
		return Run(t, setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", nobodyBin}, args...)...)
	}

	for _, node := range nodes {
		nodeArgs := []string{"--node", node, "--node-netns", "nrlab-" + node, "--state-dir", stateDir,
			"--bpffs", filepath.Join(pins, node)}
		out, errOut, code := Run(t, bin, append([]string{"show", "-o", "json", "-f", file}, nodeArgs...)...)
		if code != 0 {
			t.Fatalf("show %s: exit %d\n%s", node, code, errOut)
		}
		saved := filepath.Join(states, node+".json")
		writePublic(t, saved, []byte(out), 0o644)
		live, errOut, code := Run(t, bin, append([]string{"plan", "-o", "json", "-f", edited}, nodeArgs...)...)
		if code != 0 {
			t.Fatalf("live plan %s: exit %d\n%s", node, code, errOut)
		}
		// No --bpffs: the pin directory is the saved state's.
		off, errOut, code := nobody("plan", "-o", "json", "-f", edited, "--node", node, "--observed", saved,
			"--node-netns", "/nonexistent", "--state-dir", "/nonexistent")
		if code != 0 {
			t.Fatalf("offline plan %s as nobody: exit %d\n%s", node, code, errOut)
		}
		if off != live {
			t.Errorf("node %s: offline plan differs from the node's own\noffline:\n%s\nlive:\n%s", node, off, live)
		}
		if !strings.Contains(live, `"action": "create"`) {
			t.Errorf("node %s: the edit plans nothing to create:\n%s", node, live)
		}
		// The removed service's entry is named after it, from the record
		// apply wrote, in the saved state and in the plan.
		if !strings.Contains(out, `"owner": "service/o/nothing"`) {
			t.Errorf("node %s: show -o json does not name the service entry's owner:\n%s", node, out)
		}
		checkRemovedService(t, node, live)
	}

	// The whole lab: live, and offline from the saved states as nobody.
	live, errOut, code := Run(t, bin, "plan", "--all-nodes", "-o", "json", "-f", edited, "--state-dir", stateDir,
		"--bpffs", pins, "--detailed-exitcode")
	if code != 2 {
		t.Fatalf("live plan --all-nodes: exit %d, want 2\n%s", code, errOut)
	}
	off, errOut, code := nobody("plan", "--all-nodes", "-o", "json", "-f", edited, "--observed", states,
		"--detailed-exitcode")
	if code != 2 {
		t.Fatalf("offline plan --all-nodes as nobody: exit %d, want 2\n%s", code, errOut)
	}
	if off != live {
		t.Errorf("plan --all-nodes: offline differs from live\noffline:\n%s\nlive:\n%s", off, live)
	}
	var all struct {
		FormatVersion string `json:"format_version"`
		Plans         []struct {
			Node string `json:"node"`
		} `json:"plans"`
	}
	if err := json.Unmarshal([]byte(off), &all); err != nil || all.FormatVersion == "" || len(all.Plans) != 2 ||
		all.Plans[0].Node != nodes[0] || all.Plans[1].Node != nodes[1] {
		t.Errorf("plan --all-nodes JSON: %+v, %v", all, err)
	}
}

// checkRemovedService checks that the JSON plan deletes the entry of
// service o/nothing under its name, marked removed from the file.
func checkRemovedService(t *testing.T, node, plan string) {
	t.Helper()
	var p struct {
		Changes []struct {
			Action, Kind, Key, Owner string
			OwnerRemoved             bool `json:"owner_removed"`
		} `json:"changes"`
	}
	if err := json.Unmarshal([]byte(plan), &p); err != nil {
		t.Fatalf("node %s: plan JSON: %v", node, err)
	}
	for _, c := range p.Changes {
		if c.Kind == "service" && c.Key == "10.96.0.11:80/TCP" {
			if c.Action != "delete" || c.Owner != "service/o/nothing" || !c.OwnerRemoved {
				t.Errorf("node %s: service entry of o/nothing: %+v, want a delete owned by service/o/nothing, owner_removed", node, c)
			}
			return
		}
	}
	t.Errorf("node %s: the plan does not delete the entry of service o/nothing", node)
}

// publicDir is a temporary directory every user can read (t.TempDir's
// parents are private), removed at the end of the test.
func publicDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nr-public-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writePublic(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

// TestPlanAllNodesEmptyExample: plan --all-nodes --observed empty of the
// three-node example is its summary table (each node's counts as its own
// plan --observed empty gives them), then each node's plan as that
// command prints it. Offline: run as nobody when the test runs as root.
func TestPlanAllNodesEmptyExample(t *testing.T) {
	repo, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	pub := publicDir(t)
	example, err := os.ReadFile(filepath.Join(repo, "examples", "multinode.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(pub, "multinode.yaml")
	writePublic(t, file, example, 0o644)
	binBytes, err := os.ReadFile(BuildBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(pub, "netreconcile")
	writePublic(t, bin, binBytes, 0o755)
	run := func(args ...string) string {
		t.Helper()
		cmd := bin
		if os.Geteuid() == 0 {
			cmd, args = "setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", bin}, args...)
		}
		out, errOut, code := Run(t, cmd, args...)
		if code != 0 && code != 2 {
			t.Fatalf("exit %d\n%s", code, errOut)
		}
		return out
	}
	want := "node  add  change  destroy\n"
	var plans strings.Builder
	for _, node := range []string{"mn-a", "mn-b", "mn-c"} {
		var p struct {
			Summary struct{ Add, Change, Destroy int } `json:"summary"`
		}
		if err := json.Unmarshal([]byte(run("plan", "-o", "json", "-f", file, "--node", node, "--observed", "empty")), &p); err != nil {
			t.Fatal(err)
		}
		if p.Summary.Add == 0 {
			t.Errorf("node %s from scratch: nothing to add", node)
		}
		want += fmt.Sprintf("%-4s  %-3d  %-6d  %d\n", node, p.Summary.Add, p.Summary.Change, p.Summary.Destroy)
		plans.WriteString("\n" + run("plan", "-f", file, "--node", node, "--observed", "empty"))
	}
	want += plans.String()
	if got := run("plan", "--all-nodes", "-f", file, "--observed", "empty"); got != want {
		t.Errorf("plan --all-nodes --observed empty:\n%s\nwant:\n%s", got, want)
	}
}
