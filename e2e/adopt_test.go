package e2e

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/internal/nstest"
)

// TestAdoptNetns: a namespace made outside netreconcile under a pod's
// netns name is refused before any change (no link made, nothing
// recorded) until the pod says adoptNetns: true; then the plan shows the
// adoption, the pod is wired inside it and reaches the node, a second
// plan is empty, and destroy removes the pod's links but not the
// namespace.
func TestAdoptNetns(t *testing.T) {
	w := newWorld(t)
	foreign := nstest.TempNetns(t, w.id+"-fa")
	w.write(nil)
	t.Cleanup(func() {
		if t.Failed() {
			DumpState(t, w.nodeNS, foreign)
		}
		w.labDown(w.file)
	})
	w.mustRun("lab", "up", "-f", w.file, "--state-dir", w.stateDir)

	pods := []podDef{{"a", "10.244.1.10", "veth", foreign}}
	w.write(pods)
	// (links by name and index: their flags may still settle after lab up)
	nodeLinks, podLinks := ifindexes(t, w.nodeNS), ifindexes(t, foreign)
	for _, verb := range []string{"plan", "apply"} {
		out, errOut, code := Run(t, w.bin, w.nodeArgs(verb)...)
		want := `pod/t/a: netns "` + foreign + `" exists and netreconcile did not create it; set adoptNetns: true on the pod to use it`
		if code != 1 || !strings.Contains(errOut, want) {
			t.Fatalf("%s without adoptNetns: exit %d, want 1 and %q\n%s%s", verb, code, want, out, errOut)
		}
	}
	if !maps.Equal(ifindexes(t, w.nodeNS), nodeLinks) || !maps.Equal(ifindexes(t, foreign), podLinks) {
		t.Fatal("a refused adoption changed links")
	}
	if ents, _ := os.ReadDir(filepath.Join(w.stateDir, w.node, "netns")); len(ents) != 0 {
		t.Fatalf("a refused adoption recorded namespaces: %v", ents)
	}

	w.file = WriteFile(t, w.id+".yaml", strings.Replace(w.topo(pods), "netns: "+foreign+"}", "netns: "+foreign+", adoptNetns: true}", 1))
	plan := w.mustRun(w.nodeArgs("plan")...)
	if !strings.Contains(plan, `# pod t/a adopts existing netns "`+foreign+`"`) || strings.Contains(plan, "+   netns") {
		t.Fatalf("plan with adoptNetns:\n%s", plan)
	}
	w.mustRun(w.nodeArgs("apply")...)
	if a := ip(t, foreign, "addr", "show", "dev", "eth0"); !strings.Contains(a, "10.244.1.10/32") {
		t.Fatalf("adopted namespace's eth0: %s", a)
	}
	nstest.StartEchoTCP(t, w.nodeNS, "172.31.1.2:7000", "node")
	if got := nstest.CheckTCP(t, foreign, "172.31.1.2:7000"); got != "node" {
		t.Errorf("adopted pod -> node answered by %q", got)
	}
	if out := w.mustRun(w.nodeArgs("plan")...); !strings.Contains(out, "No changes") || strings.Contains(out, "adopts") {
		t.Errorf("second plan:\n%s", out)
	}

	w.mustRun(w.nodeArgs("destroy")...)
	if !netnsExists(foreign) {
		t.Fatal("destroy deleted the adopted namespace")
	}
	if l := ip(t, foreign, "-o", "link", "show"); strings.Contains(l, "eth0") {
		t.Errorf("pod link left in the adopted namespace after destroy:\n%s", l)
	}
}
