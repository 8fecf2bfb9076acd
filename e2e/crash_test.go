package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCrashSafety kills apply with SIGKILL right after its k-th kernel
// change, for every k across a realistic plan, then recovers either by
// applying again or by destroying at once, and checks that nothing leaks:
// no link, route or namespace of netreconcile's, no record.
func TestCrashSafety(t *testing.T) {
	w := newWorld(t)
	pods := []podDef{
		{"a", "10.244.1.10", "veth", w.id + "-a"},
		{"b", "10.244.1.11", "veth", w.id + "-b"},
		{"c", "10.244.1.20", "bridge", w.id + "-c"},
		{"d", "10.244.1.21", "bridge", w.id + "-d"},
		{"e", "10.244.1.12", "veth", w.id + "-e"},
	}
	// The lab itself has no pods: apply builds them.
	w.write(nil)
	empty := w.file
	t.Cleanup(func() {
		w.labDown(empty)
		for _, p := range pods {
			_ = exec.Command("ip", "netns", "del", p.netns).Run()
		}
	})
	w.mustRun("lab", "up", "-f", empty, "--state-dir", w.stateDir)
	full := w.write(pods)

	// the plan's length
	p := w.plan()
	total := p.Summary.Add + p.Summary.Change + p.Summary.Destroy
	if total < 20 {
		t.Fatalf("plan too small for the test: %d changes", total)
	}
	for k := 1; k <= total; k++ {
		cmd := exec.Command(w.bin, w.nodeArgs("apply")...)
		cmd.Env = append(os.Environ(), "NETRECONCILE_CRASH_AFTER="+strconv.Itoa(k))
		out, _ := cmd.CombinedOutput()
		if ws := cmd.ProcessState; ws == nil || ws.ExitCode() != -1 {
			t.Fatalf("k=%d: apply was not killed (exit %v)\n%s", k, ws, out)
		}
		if k%2 == 0 {
			// recover by applying again: it converges
			w.mustRun(w.nodeArgs("apply")...)
			if _, _, code := Run(t, w.bin, w.nodeArgs("plan", "--detailed-exitcode")...); code != 0 {
				t.Fatalf("k=%d: plan after recovery: exit %d", k, code)
			}
		}
		// destroy after the crash (or after recovery) leaves nothing
		w.mustRun(w.nodeArgs("destroy")...)
		if leak := leaks(t, w, pods); leak != "" {
			DumpState(t, w.nodeNS)
			t.Fatalf("k=%d: leaked after destroy: %s", k, leak)
		}
		w.file = full
	}
}

// leaks describes any object of netreconcile's left in the node.
func leaks(t *testing.T, w *world, pods []podDef) string {
	var out []string
	links := ip(t, w.nodeNS, "-d", "link", "show")
	for _, line := range strings.Split(links, "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && strings.HasPrefix(f[1], "nr") {
			out = append(out, "link "+f[1])
		}
		if strings.Contains(line, "netreconcile/") {
			out = append(out, "marked link: "+strings.TrimSpace(line))
		}
	}
	if r := strings.TrimSpace(ip(t, w.nodeNS, "route", "show", "proto", "154")); r != "" {
		out = append(out, "routes: "+r)
	}
	for _, p := range pods {
		if netnsExists(p.netns) {
			out = append(out, "netns "+p.netns)
		}
	}
	for _, sub := range []string{"netns", "pending", "sysctl"} {
		if ents, _ := os.ReadDir(filepath.Join(w.stateDir, w.node, sub)); len(ents) > 0 {
			out = append(out, "records in "+sub)
		}
	}
	return strings.Join(out, "; ")
}
