package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/internal/nstest"
)

// TestWatchPolicyPodEdits: the watch daemon carries the policies' class
// table from one pass to the next (compile.NewClusterFrom) and patches it
// for the pods an edit changes. As pods are relabelled, added and removed,
// traffic to the server follows its policy, and what the daemon
// programmed is what a plan compiled from scratch wants: no changes, the
// identities included.
func TestWatchPolicyPodEdits(t *testing.T) {
	id := UniqueName("wp")
	pods := []podDef{
		{"a", "10.244.1.10", "veth", id + "-a"},
		{"b", "10.244.1.11", "veth", id + "-b"},
		{"c", "10.244.1.12", "veth", id + "-c"},
		{"d", "10.244.1.13", "veth", id + "-d"},
	}
	w, _ := watchWorld(t, pods[:3])
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", pods[3].netns).Run() })
	DumpOnFailure(t, w.nodeNS, pods[0].netns, pods[1].netns, pods[2].netns)
	// file is the topology of pods labelled app: label[name] and a label
	// of their own (a class each, as in a cluster), and a policy
	// admitting only clients to the server, on 7000.
	file := func(pods []podDef, label map[string]string) string {
		text := w.topo(pods)
		for _, p := range pods {
			text = strings.Replace(text, "netns: "+p.netns+"}",
				"netns: "+p.netns+", labels: {app: "+label[p.name]+", instance: "+p.name+"}}", 1)
		}
		return text + "policies:\n  - {name: clients, namespace: t, spec: {podSelector: {matchLabels: {app: server}}, " +
			"ingress: [{from: [{podSelector: {matchLabels: {app: client}}}], ports: [{port: 7000}]}]}}\n"
	}
	label := map[string]string{"a": "client", "b": "other", "c": "server", "d": "client"}
	replaceFile(t, w.file, file(pods[:3], label))
	startWatch(t, w)
	server := pods[2]
	nstest.StartEchoTCP(t, server.netns, server.ip+":7000", "c")
	admitted := func(from podDef) bool {
		banner, err := nstest.TryTCP(from.netns, server.ip+":7000", 300*time.Millisecond)
		return err == nil && banner == "c"
	}
	// converged waits for the daemon to have programmed the file: each
	// client admitted, each other pod not, and a plan from scratch
	// finding nothing to change.
	converged := func(step string, clients, others []podDef) {
		t.Helper()
		lat := eventually(t, 15*time.Second, step+": traffic follows the policy", func() bool {
			for _, p := range clients {
				if !admitted(p) {
					return false
				}
			}
			for _, p := range others {
				if admitted(p) {
					return false
				}
			}
			return true
		})
		eventually(t, 15*time.Second, step+": no changes planned", func() bool { return w.planEmpty(w.file) })
		t.Logf("%s: converged after %v", step, lat)
	}
	converged("start", pods[:1], pods[1:2])

	label["b"] = "client"
	replaceFile(t, w.file, file(pods[:3], label))
	converged("b relabelled a client", pods[:2], nil)

	label["a"] = "other"
	replaceFile(t, w.file, file(pods[:3], label))
	converged("a relabelled", pods[1:2], pods[:1])

	replaceFile(t, w.file, file(pods, label))
	eventually(t, 15*time.Second, "pod d made", func() bool { return netnsExists(pods[3].netns) })
	converged("client d added", []podDef{pods[1], pods[3]}, pods[:1])

	replaceFile(t, w.file, file([]podDef{pods[0], pods[2], pods[3]}, label))
	converged("b removed", pods[3:], pods[:1])
}
