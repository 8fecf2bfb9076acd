package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// setHeader starts every file of a split topology.
const setHeader = "apiVersion: netreconcile/v1\nkind: Topology\n"

// splitTopo splits a block-style topology file at its top-level keys into
// three files: apiVersion, kind, cluster, namespaces and nodes; the pods;
// the services and policies. Each keeps its items' order, so the merged
// set is the file.
func splitTopo(t *testing.T, text string) [3]string {
	t.Helper()
	var files [3]strings.Builder
	part := 0
	for _, line := range strings.SplitAfter(text, "\n") {
		if line != "" && line[0] != ' ' && line[0] != '#' && line[0] != '\n' {
			switch key, _, _ := strings.Cut(line, ":"); key {
			case "apiVersion", "kind", "cluster", "namespaces", "nodes":
				part = 0
			case "pods":
				part = 1
			case "services", "policies":
				part = 2
			default:
				t.Fatalf("splitTopo: top-level key %q", key)
			}
		}
		files[part].WriteString(line)
	}
	out := [3]string{files[0].String(), setHeader + files[1].String(), setHeader + files[2].String()}
	if !strings.Contains(out[0], "cluster:") || !strings.Contains(out[1], "pods:") {
		t.Fatalf("splitTopo: not a block-style topology:\n%s", text)
	}
	return out
}

// writeSet writes the split files into a new directory and returns it.
func writeSet(t *testing.T, files [3]string) string {
	t.Helper()
	dir := t.TempDir()
	for i, name := range []string{"00-cluster.yaml", "10-pods.yaml", "20-services.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(files[i]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestOfflineFileSet: a lab topology split over a directory of three files
// plans every node byte for byte as the single file does (text and JSON),
// and validate and diff take the directory too.
func TestOfflineFileSet(t *testing.T) {
	repo, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := BuildBinary(t)
	for _, example := range []string{"multinode.yaml", "multitier.yaml"} {
		file := filepath.Join(repo, "examples", example)
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		dir := writeSet(t, splitTopo(t, string(text)))
		for _, output := range []string{"text", "json"} {
			one, errOne, code1 := Run(t, bin, "plan", "--all-nodes", "--observed", "empty", "-o", output, "-f", file)
			set, errSet, code2 := Run(t, bin, "plan", "--all-nodes", "--observed", "empty", "-o", output, "-f", dir)
			if code1 != code2 || one != set || one == "" {
				t.Errorf("%s -o %s: the file (exit %d, %d bytes) and the directory (exit %d, %d bytes) plan differently\n%s%s",
					example, output, code1, len(one), code2, len(set), errOne, errSet)
			}
		}
		if out, errOut, code := Run(t, bin, "validate", "-f", dir); code != 0 || !strings.Contains(out, ": valid (") {
			t.Errorf("validate -f DIR: exit %d %s%s", code, out, errOut)
		}
		if out, errOut, code := Run(t, bin, "diff", "--detailed-exitcode", file, dir); code != 0 {
			t.Errorf("diff FILE DIR of the same topology: exit %d %s%s", code, out, errOut)
		}
	}
}

// fileSetWorld is a lab node whose topology is split over two -f
// arguments: a plain directory (the cluster, and the pods) and a
// directory laid out as a ConfigMap volume (..data, the files linked
// through it) holding the services' file.
type fileSetWorld struct {
	*world
	plain, cm string
	version   int
}

// args is the two -f of the set, with the node's flags.
func (s *fileSetWorld) args(verb ...string) []string {
	return append(verb, "-f", s.plain, "-f", s.cm, "--node", s.node, "--node-netns", s.nodeNS, "--state-dir", s.stateDir)
}

// swap publishes content as the ConfigMap's file the way the kubelet
// does: a new hidden directory, a new ..data link renamed over the old.
func (s *fileSetWorld) swap(content string) {
	s.t.Helper()
	s.version++
	v := fmt.Sprintf("..v%d", s.version)
	if err := os.Mkdir(filepath.Join(s.cm, v), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.cm, v, "more.yaml"), []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
	mustSymlink(s.t, v, filepath.Join(s.cm, "..data_tmp"))
	if err := os.Rename(filepath.Join(s.cm, "..data_tmp"), filepath.Join(s.cm, "..data")); err != nil {
		s.t.Fatal(err)
	}
	if s.version == 1 {
		mustSymlink(s.t, "..data/more.yaml", filepath.Join(s.cm, "more.yaml"))
	} else {
		_ = os.RemoveAll(filepath.Join(s.cm, fmt.Sprintf("..v%d", s.version-1)))
	}
}

func (s *fileSetWorld) planEmpty() bool {
	_, _, code := Run(s.t, s.bin, s.args("plan", "--detailed-exitcode")...)
	return code == 0
}

// TestWatchFileSet: a set with one invalid file applies nothing and names
// the file; lab up applies the set; watch -f DIR -f DIR converges after one
// file of a directory is edited and after a ConfigMap ..data swap, and
// keeps the last good state while a file of the set is invalid.
func TestWatchFileSet(t *testing.T) {
	w := newWorld(t)
	s := &fileSetWorld{world: w, plain: t.TempDir(), cm: t.TempDir()}
	pod := func(name, ip string) string {
		return fmt.Sprintf("  - {name: %s, namespace: t, node: %s, ip: %s, netns: %s-%s, labels: {app: %s}}\n", name, w.node, ip, w.id, name, name)
	}
	head, _, _ := strings.Cut(w.topo(nil), "pods:")
	pods := setHeader + "pods:\n" + pod("a", "10.244.1.10") + pod("b", "10.244.1.11")
	svc := setHeader + "services:\n  - {name: web, namespace: t, clusterIP: 10.96.0.10, selector: {app: b}, ports: [{port: 80}]}\n"
	labFile := WriteFile(t, w.id+"-lab.yaml", head)
	t.Cleanup(func() {
		Run(t, w.bin, "lab", "down", "-f", labFile, "--state-dir", w.stateDir)
		for _, p := range []string{"a", "b", "c", "d"} {
			_ = exec.Command("ip", "netns", "del", w.id+"-"+p).Run()
		}
	})
	for name, text := range map[string]string{"00-cluster.yaml": head, "10-pods.yaml": pods} {
		replaceFile(t, filepath.Join(s.plain, name), text)
	}
	// One invalid file: nothing at all is applied, and the error names it.
	s.swap(svc + "pods:\n  - {name: x, namespace: t, node: nowhere}\n")
	bad := filepath.Join(s.cm, "more.yaml")
	if _, errOut, code := Run(t, w.bin, "lab", "up", "-f", s.plain, "-f", s.cm, "--state-dir", w.stateDir); code != 1 ||
		!strings.Contains(errOut, bad+`:6:35: pods[0].node: unknown node "nowhere"`) {
		t.Fatalf("lab up of a set with an invalid file: exit %d\n%s", code, errOut)
	}
	if netnsExists(w.nodeNS) || netnsExists(w.id+"-a") {
		t.Fatal("an invalid set changed something")
	}
	s.swap(svc)
	w.mustRun("lab", "up", "-f", s.plain, "-f", s.cm, "--state-dir", w.stateDir)
	if !netnsExists(w.id+"-a") || !netnsExists(w.id+"-b") || !s.planEmpty() {
		t.Fatal("lab up of the set did not converge")
	}

	w.file = s.plain
	d := startWatch(t, w, "-f", s.cm)
	// One file of the plain directory edited.
	replaceFile(t, filepath.Join(s.plain, "10-pods.yaml"), pods+pod("c", "10.244.1.12"))
	lat := eventually(t, 15*time.Second, "pod c of an edited file", func() bool { return netnsExists(w.id+"-c") && s.planEmpty() })
	t.Logf("edited file applied after %v", lat)
	// The ConfigMap's ..data swap: its file now adds pod d.
	s.swap(svc + "pods:\n" + pod("d", "10.244.1.13"))
	lat = eventually(t, 15*time.Second, "pod d of the swapped ConfigMap", func() bool { return netnsExists(w.id+"-d") && s.planEmpty() })
	t.Logf("..data swap applied after %v", lat)
	// A new invalid file in the plain directory: logged with its place,
	// the last good state kept; removing it is a change too.
	zz := filepath.Join(s.plain, "zz.yaml")
	replaceFile(t, zz, setHeader+"pods:\n"+pod("a", "10.244.1.20"))
	eventually(t, 15*time.Second, "the duplicate logged", func() bool {
		return strings.Contains(d.logs(), zz+`:4:12: pods[0].name: duplicate pod \"t/a\" (first at pods[0] in `+filepath.Join(s.plain, "10-pods.yaml")+":4)")
	})
	if !netnsExists(w.id+"-d") || !ipHas(w.id+"-a", "10.244.1.10", "-4", "addr") {
		t.Error("an invalid set changed the node")
	}
	if err := os.Remove(zz); err != nil {
		t.Fatal(err)
	}
	replaceFile(t, filepath.Join(s.plain, "10-pods.yaml"), pods)
	eventually(t, 15*time.Second, "pod c removed", func() bool { return !netnsExists(w.id+"-c") && s.planEmpty() })
	if code := d.stop(); code != 0 {
		t.Errorf("daemon: exit %d", code)
	}
}
