package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/drivers"
)

type statusOut struct {
	Nodes []struct {
		Source  string `json:"source"`
		State   string `json:"state"`
		Pending int    `json:"pending"`
		Objects int    `json:"objects"`
		Daemon  *struct {
			PID          int `json:"pid"`
			DriftRepairs int `json:"drift_repairs"`
		} `json:"daemon"`
	} `json:"nodes"`
}

// TestStatus: status plans a node without a daemon live (converged, then
// drifted with --detailed-exitcode 2 once a pod's veth is deleted) and
// asks the node's watch daemon when one runs (its pid, its drift repairs).
func TestStatus(t *testing.T) {
	w := newWorld(t)
	pods := []podDef{{"a", "10.244.1.10", "veth", w.id + "-a"}, {"b", "10.244.1.11", "veth", w.id + "-b"}}
	w.write(pods)
	t.Cleanup(func() {
		w.labDown(w.file)
		for _, p := range pods {
			_ = exec.Command("ip", "netns", "del", p.netns).Run()
		}
	})
	w.mustRun("lab", "up", "-f", w.file, "--state-dir", w.stateDir)
	status := func(wantCode int) statusOut {
		t.Helper()
		out, errOut, code := Run(t, w.bin, w.nodeArgs("status", "-o", "json", "--detailed-exitcode")...)
		var s statusOut
		if err := json.Unmarshal([]byte(out), &s); code != wantCode || err != nil || len(s.Nodes) != 1 {
			t.Fatalf("status: exit %d (want %d), %v\n%s%s", code, wantCode, err, out, errOut)
		}
		return s
	}
	if s := status(0); s.Nodes[0].Source != "live" || s.Nodes[0].State != "converged" || s.Nodes[0].Objects == 0 {
		t.Fatalf("after lab up: %+v", s.Nodes[0])
	}
	ip(t, w.nodeNS, "link", "del", drivers.HostIfName(w.node, "t/a"))
	if s := status(2); s.Nodes[0].State != "drifted" || s.Nodes[0].Pending == 0 {
		t.Fatalf("after a veth was deleted: %+v", s.Nodes[0])
	}
	out, _, _ := Run(t, w.bin, w.nodeArgs("status")...)
	if !strings.Contains(out, "drifted") || !strings.Contains(out, "changes pending") {
		t.Errorf("text status:\n%s", out)
	}

	d := startWatch(t, w)
	s := status(0)
	if n := s.Nodes[0]; n.Source != "watch" || n.State != "converged" || n.Daemon == nil || n.Daemon.PID != d.pid() {
		t.Fatalf("with a daemon: %+v", n)
	}
	ip(t, w.nodeNS, "link", "del", drivers.HostIfName(w.node, "t/b"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		if n := status(0).Nodes[0]; n.Daemon != nil && n.Daemon.DriftRepairs >= 1 && n.State == "converged" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon reports no drift repair:\n%+v", status(0))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
