package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/internal/nstest"
	"github.com/netreconcile/netreconcile/internal/scaletopo"
)

// clusterLabExtra adds to scaletopo.Nodes(1000) a service whose every
// backend is on the lab's nodes n0 and n1 (the file's own services have
// most of theirs on nodes that exist only in the file): a pod on each,
// in a namespace no policy isolates.
const (
	clusterLabPods = `  - {name: lab-a, namespace: lab, node: n0, ip: 10.1.0.200, mode: veth, labels: {app: labweb}, ports: [{name: web, port: 8080}]}
  - {name: lab-b, namespace: lab, node: n1, ip: 10.1.1.200, mode: veth, labels: {app: labweb}, ports: [{name: web, port: 8080}]}
`
	clusterLabService = `  - {name: web, namespace: lab, clusterIP: 172.31.255.1, selector: {app: labweb}, ports: [{port: 80, targetPort: web}]}
`
)

// clusterProbe is probeJSON with the services probed.
type clusterProbe struct {
	probeJSON
	Services *struct {
		Targets []struct {
			Service string `json:"service"`
		} `json:"targets"`
	} `json:"services"`
}

// TestClusterLab: two real nodes of a 1000-node file (50,000 pods,
// 10,000 services, 2000 policies; the other 998 nodes exist only in the
// file) come up with lab up --nodes and converge; their pods reach each
// other across the nodes as the policies say, allowed and denied (probe
// --nodes), and a service backed on both nodes answers from each; an
// unknown node name changes nothing; lab down --nodes removes every
// namespace and pin directory of the lab.
func TestClusterLab(t *testing.T) {
	nstest.RequireRoot(t)
	bin := BuildBinary(t)
	prefix := UniqueName("cl")
	file := filepath.Join(t.TempDir(), "cluster.yaml")
	text := string(scaletopo.Nodes(1000))
	text = strings.Replace(text, "services:\n", clusterLabPods+"services:\n"+clusterLabService, 1)
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	common := []string{"-f", file, "--prefix", prefix, "--state-dir", state}
	nodes := []string{"--nodes", "n0,n1"}
	t.Cleanup(func() {
		Run(t, bin, append(append([]string{"lab", "down"}, common...), nodes...)...)
		for _, ns := range labNamespaces(t, prefix) {
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
	})

	// An unknown node: refused before anything is made.
	_, errOut, code := Run(t, bin, append([]string{"lab", "up", "--nodes", "n0,n1000,nx"}, common...)...)
	if code != 1 || !strings.Contains(errOut, `--nodes: "n1000", "nx": no such node in the file`) {
		t.Errorf("lab up --nodes with unknown nodes: exit %d\n%s", code, errOut)
	}
	if left := labNamespaces(t, prefix); len(left) > 0 {
		t.Fatalf("lab up with unknown nodes made %v", left)
	}

	out, errOut, code := Run(t, bin, append(append([]string{"lab", "up"}, common...), nodes...)...)
	if code != 0 || !strings.Contains(out, "Lab is up: 2 of the file's 1000 nodes, 102 pods.") {
		t.Fatalf("lab up --nodes n0,n1: exit %d\n%s%s", code, tail(out), errOut)
	}
	DumpOnFailure(t, prefix+"-n0", prefix+"-n1")
	if ns := labNamespaces(t, prefix); len(ns) != 2+1+102 {
		t.Errorf("lab up made %d namespaces, want 2 nodes, the underlay and 102 pods: %v", len(ns), ns)
	}
	for _, n := range []string{"n0", "n1"} {
		args := append([]string{"plan", "--node", n, "--node-netns", prefix + "-" + n, "--detailed-exitcode"}, common...)
		if out, errOut, code := Run(t, bin, args...); code != 0 {
			t.Errorf("node %s not converged after lab up: plan exit %d\n%s%s", n, code, tail(out), errOut)
		}
	}

	// Every pair of the lab's pods, across the nodes too, as the
	// policies say; and the service, from every pod.
	out, errOut, code = Run(t, bin, append(append([]string{"probe", "-o", "json", "--timeout", "300ms", "--parallel", "128"},
		common...), nodes...)...)
	var res clusterProbe
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || !res.Agree {
		t.Fatalf("probe --nodes n0,n1: exit %d, agree %v, %v\n%s%s", code, res.Agree, err, tail(out), errOut)
	}
	checkClusterProbe(t, &res)

	// The service's two backends, one on each node, both answer it.
	nstest.StartEchoTCP(t, prefix+"-lab-lab-a", "10.1.0.200:8080", "lab-a")
	nstest.StartEchoTCP(t, prefix+"-lab-lab-b", "10.1.1.200:8080", "lab-b")
	for _, from := range []string{prefix + "-ns1-p1", prefix + "-ns51-p51"} {
		seen := map[string]bool{}
		for i := 0; i < 40 && len(seen) < 2; i++ {
			seen[nstest.CheckTCP(t, from, "172.31.255.1:80")] = true
		}
		if !seen["lab-a"] || !seen["lab-b"] {
			t.Errorf("from %s the service reached %v, want lab-a and lab-b", from, seen)
		}
	}

	out, errOut, code = Run(t, bin, append(append([]string{"lab", "down"}, common...), nodes...)...)
	if code != 0 || !strings.Contains(out, "Lab removed (2 nodes).") {
		t.Fatalf("lab down --nodes n0,n1: exit %d\n%s%s", code, out, errOut)
	}
	if left := labNamespaces(t, prefix); len(left) > 0 {
		t.Errorf("left after lab down: %v", left)
	}
	for _, n := range []string{"n0", "n1"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/bpf/netreconcile", prefix+"-"+n)); !os.IsNotExist(err) {
			t.Errorf("pin directory of node %s left after lab down (%v)", n, err)
		}
	}
}

// checkClusterProbe checks that the probe tried the lab's pods only, with
// pairs across the nodes both allowed and denied by the policies, and
// the service whose backends are all on the lab's nodes.
func checkClusterProbe(t *testing.T, res *clusterProbe) {
	t.Helper()
	if len(res.Pods) != 102 {
		t.Errorf("probe tried %d pods, want the lab's 102", len(res.Pods))
	}
	// Pods are in name order: lab/lab-a, lab/lab-b, then ns0/p0...; p<50
	// are on n0, the others on n1.
	node := func(pod string) string {
		if strings.HasPrefix(pod, "lab/") {
			return map[string]string{"lab/lab-a": "n0", "lab/lab-b": "n1"}[pod]
		}
		_, name, _ := strings.Cut(pod, "/p")
		if len(name) < 2 {
			return "n0"
		}
		return map[bool]string{true: "n0", false: "n1"}[name < "50"]
	}
	allowed, denied := 0, 0
	for _, m := range res.Matrices {
		if m.Port != 8080 {
			continue
		}
		for i, row := range m.Expected {
			for j, c := range row {
				if i >= len(res.Pods) || j >= len(res.Pods) || node(res.Pods[i]) == node(res.Pods[j]) {
					continue
				}
				switch c {
				case '.':
					allowed++
				case 'X':
					denied++
				}
			}
		}
	}
	if allowed == 0 || denied == 0 {
		t.Errorf("across the nodes on 8080/TCP: %d pairs allowed, %d denied; want both", allowed, denied)
	}
	if res.Services == nil || len(res.Services.Targets) != 1 || res.Services.Targets[0].Service != "lab/web" {
		t.Errorf("probe's services: %+v, want lab/web only", res.Services)
	}
}

// labNamespaces lists the network namespaces carrying prefix.
func labNamespaces(t *testing.T, prefix string) []string {
	t.Helper()
	entries, err := os.ReadDir("/var/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix+"-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// tail is the end of a long output, for messages.
func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}
