package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/internal/etcdtest"
)

// putSet writes the split files under prefix, one key each, named as
// writeSet names the files.
func putSet(s *etcdtest.Server, prefix string, files [3]string) {
	for i, name := range []string{"00-cluster.yaml", "10-pods.yaml", "20-services.yaml"} {
		s.Put(prefix+name, files[i])
	}
}

// TestOfflineEtcdSet: a topology split over etcd keys plans every node
// byte for byte as the same split over a directory (text and JSON), and as
// a mix of both; an invalid value is named etcd://HOST:PORT/KEY:line:col;
// etcd down at start is a clear error naming the endpoint, within the
// dial timeout.
func TestOfflineEtcdSet(t *testing.T) {
	repo, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := BuildBinary(t)
	s := etcdtest.Start(t)
	var urls []string
	for _, example := range []string{"multinode.yaml", "multitier.yaml"} {
		text, err := os.ReadFile(filepath.Join(repo, "examples", example))
		if err != nil {
			t.Fatal(err)
		}
		files := splitTopo(t, string(text))
		dir := writeSet(t, files)
		prefix := "/netreconcile/" + strings.TrimSuffix(example, ".yaml") + "/"
		putSet(s, prefix, files)
		s.Put(prefix[:len(prefix)-1]+"-not-under-the-prefix", "not: yaml: [")
		url := s.URL(prefix)
		// A mix: the cluster from the directory's file, the rest from
		// etcd keys (the first key deleted from a second prefix).
		mixPrefix := "/mix" + prefix
		putSet(s, mixPrefix, files)
		s.Delete(mixPrefix + "00-cluster.yaml")
		mix := []string{"-f", filepath.Join(dir, "00-cluster.yaml"), "-f", s.URL(mixPrefix)}
		for _, output := range []string{"text", "json"} {
			plan := []string{"plan", "--all-nodes", "--observed", "empty", "-o", output}
			want, errDir, code1 := Run(t, bin, append(plan, "-f", dir)...)
			got, errEtcd, code2 := Run(t, bin, append(plan, "-f", url)...)
			if code1 != 0 || code1 != code2 || got != want || want == "" {
				t.Errorf("%s -o %s: the directory (exit %d, %d bytes) and etcd (exit %d, %d bytes) plan differently\n%s%s",
					example, output, code1, len(want), code2, len(got), errDir, errEtcd)
			}
			got, errMix, code3 := Run(t, bin, append(plan, mix...)...)
			if code3 != 0 || got != want {
				t.Errorf("%s -o %s: a file and etcd keys plan unlike the directory (exit %d)\n%s", example, output, code3, errMix)
			}
		}
		if out, errOut, code := Run(t, bin, "validate", "-f", url); code != 0 || !strings.Contains(out, ": valid (") {
			t.Errorf("validate -f %s: exit %d %s%s", url, code, out, errOut)
		}
		// diff takes sets too: the same topology from etcd and from the
		// one file is no difference.
		if out, errOut, code := Run(t, bin, "diff", "--detailed-exitcode", filepath.Join(repo, "examples", example), url); code != 0 {
			t.Errorf("diff of %s and its etcd set: exit %d\n%s%s", example, code, out, errOut)
		}
		urls = append(urls, url)
	}
	if out, errOut, code := Run(t, bin, "diff", "--detailed-exitcode", urls[0], urls[1]); code != 2 || !strings.Contains(out, "pod") {
		t.Errorf("diff of two etcd sets of different topologies: exit %d\n%s%s", code, out, errOut)
	}

	// An invalid value: named by its key, line and column.
	s.Put("/bad/00.yaml", setHeader+"cluster: {podCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/16}\nnodes:\n  - {name: n1, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}\n")
	s.Put("/bad/10.yaml", setHeader+"pods:\n  - {name: a, namespace: t, node: nowhere}\n")
	_, errOut, code := Run(t, bin, "validate", "-f", s.URL("/bad/"))
	if want := "etcd://" + s.Addr + `//bad/10.yaml:4:35: pods[0].node: unknown node "nowhere"`; code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("validate of an invalid value: exit %d, want %q in\n%s", code, want, errOut)
	}
	_, errOut, code = Run(t, bin, "validate", "-f", s.URL("/nothing/"))
	if code != 1 || !strings.Contains(errOut, "etcd://"+s.Addr+"//nothing/: no key under the prefix") {
		t.Errorf("validate of an empty prefix: exit %d\n%s", code, errOut)
	}

	// etcd down at start: every one-shot verb fails within the dial
	// timeout, naming the endpoint.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	for _, verb := range [][]string{{"validate"}, {"plan", "--all-nodes", "--observed", "empty"}, {"graph"}} {
		start := time.Now()
		_, errOut, code := Run(t, bin, append(verb, "-f", "etcd://"+down+"/topo/")...)
		took := time.Since(start)
		if code != 1 || !strings.Contains(errOut, "etcd cannot be reached at "+down) || took > 8*time.Second {
			t.Errorf("%s with etcd down: exit %d after %v\n%s", verb[0], code, took.Round(time.Millisecond), errOut)
		}
	}
}

// count is how many lines of logs hold every one of subs.
func count(logs string, subs ...string) int {
	n := 0
	for _, line := range strings.Split(logs, "\n") {
		all := true
		for _, sub := range subs {
			all = all && strings.Contains(line, sub)
		}
		if all {
			n++
		}
	}
	return n
}

// TestWatchEtcd: two lab nodes, each with a watch daemon following the
// same etcd prefix (the cluster's key and one key of pods per node).
// Editing one node's key converges that node, while the other node's
// daemon reads the new revision and changes nothing; an invalid key is
// logged with its place and the last good state kept until it is deleted;
// etcd stopped keeps the last good state (daemon alive, outage logged),
// and once etcd is back a change is applied.
func TestWatchEtcd(t *testing.T) {
	w1 := newWorld(t)
	w2 := &world{t: t, bin: w1.bin, id: w1.id, node: w1.id + "m", stateDir: w1.stateDir}
	w2.nodeNS = "nrlab-" + w2.node
	s := etcdtest.Start(t)
	prefix := "/" + w1.id + "/"
	url := s.URL(prefix)
	w1.file, w2.file = url, url
	head := fmt.Sprintf(`apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/16}
nodes:
  - {name: %s, address: 172.31.1.2/24, uplink: eth0, podCIDR: 10.244.1.0/24}
  - {name: %s, address: 172.31.1.3/24, uplink: eth0, podCIDR: 10.244.2.0/24}
`, w1.node, w2.node)
	pod := func(name string, w *world, ip string) string {
		return fmt.Sprintf("  - {name: %s, namespace: t, node: %s, ip: %s, netns: %s-%s, labels: {app: %s}}\n", name, w.node, ip, w.id, name, name)
	}
	pods1 := setHeader + "pods:\n" + pod("a", w1, "10.244.1.10")
	pods2 := setHeader + "pods:\n" + pod("c", w2, "10.244.2.10")
	svc := setHeader + "services:\n  - {name: web, namespace: t, clusterIP: 10.96.0.10, selector: {app: c}, ports: [{port: 80}]}\n"
	keys := map[string]string{"00-cluster.yaml": head, "10-" + w1.node + ".yaml": pods1, "20-" + w2.node + ".yaml": pods2, "30-services.yaml": svc}
	// The lab is taken down from a copy in files: etcd may be stopped by then.
	labDir := t.TempDir()
	for k, v := range keys {
		s.Put(prefix+k, v)
		replaceFile(t, filepath.Join(labDir, k), v)
	}
	t.Cleanup(func() {
		Run(t, w1.bin, "lab", "down", "-f", labDir, "--state-dir", w1.stateDir)
		for _, p := range []string{"a", "a2", "a3", "c"} {
			_ = exec.Command("ip", "netns", "del", w1.id+"-"+p).Run()
		}
	})
	w1.mustRun("lab", "up", "-f", url, "--state-dir", w1.stateDir)
	if !netnsExists(w1.id+"-a") || !netnsExists(w1.id+"-c") || !w1.planEmpty(url) || !w2.planEmpty(url) {
		t.Fatal("lab up -f etcd://... did not converge")
	}
	d1, d2 := startWatch(t, w1), startWatch(t, w2)

	// One node's key edited: that node converges; the other reads the
	// new revision and changes nothing.
	applied := sumOf(d2.scrape(), "netreconcile_changes_applied_total")
	reads := count(d2.logs(), `"msg":"topology file changed"`)
	s.Put(prefix+"10-"+w1.node+".yaml", pods1+pod("a2", w1, "10.244.1.11"))
	lat := eventually(t, 15*time.Second, "pod a2 of the edited key", func() bool { return netnsExists(w1.id+"-a2") && w1.planEmpty(url) })
	t.Logf("edited key applied after %v", lat)
	eventually(t, 15*time.Second, "the other node reading the new revision", func() bool {
		return count(d2.logs(), `"msg":"topology file changed"`) > reads && count(d2.logs(), `"msg":"reconciled"`, `"trigger":"file"`) > 0
	})
	if got := sumOf(d2.scrape(), "netreconcile_changes_applied_total"); got != applied || !w2.planEmpty(url) {
		t.Errorf("the unaffected node's daemon applied %v changes", got-applied)
	}

	// An invalid key: logged with its place, the last good state kept;
	// deleting it makes the set valid again.
	bad := prefix + "40-bad.yaml"
	s.Put(bad, setHeader+"pods:\n"+pod("a", w1, "10.244.1.20"))
	eventually(t, 15*time.Second, "the invalid key logged", func() bool {
		return strings.Contains(d1.logs(), "etcd://"+s.Addr+"/"+bad+":4:12: pods[0].name: duplicate pod")
	})
	if !netnsExists(w1.id+"-a2") || !ipHas(w1.id+"-a", "10.244.1.10", "-4", "addr") {
		t.Error("an invalid key changed the node")
	}
	if ok := d1.scrape()["netreconcile_config_last_reload_successful"]; ok != 0 {
		t.Errorf("config_last_reload_successful = %v with an invalid key", ok)
	}
	s.Delete(bad)
	eventually(t, 15*time.Second, "the set valid again", func() bool {
		return d1.scrape()["netreconcile_config_last_reload_successful"] == 1
	})

	// etcd stopped: the outage is logged, the daemons live on and the
	// node keeps its state; once etcd is back, a change is applied.
	replaceFile(t, filepath.Join(labDir, "10-"+w1.node+".yaml"), pods1+pod("a2", w1, "10.244.1.11"))
	s.Stop()
	eventually(t, 30*time.Second, "the outage logged", func() bool {
		return strings.Contains(d1.logs(), "topology store cannot be followed") && strings.Contains(d2.logs(), "topology store cannot be followed")
	})
	time.Sleep(time.Second)
	if !d1.alive() || !d2.alive() || !w1.planEmpty(labDir) || !w2.planEmpty(labDir) {
		t.Fatal("etcd's outage changed a node or ended a daemon")
	}
	if out, errOut, code := w1.run("status", "--node", w1.node); !strings.Contains(out, "file unreadable, serving the last good one") {
		t.Errorf("status during the outage: exit %d\n%s%s", code, out, errOut)
	}
	s.Restart()
	eventually(t, 30*time.Second, "etcd back logged", func() bool { return strings.Contains(d1.logs(), "topology store is back") })
	s.Put(prefix+"10-"+w1.node+".yaml", pods1+pod("a3", w1, "10.244.1.12"))
	lat = eventually(t, 30*time.Second, "pod a3 after the outage", func() bool {
		return netnsExists(w1.id+"-a3") && !netnsExists(w1.id+"-a2") && w1.planEmpty(url)
	})
	t.Logf("change after the outage applied after %v", lat)
	for _, d := range []*watchProc{d1, d2} {
		if code := d.stop(); code != 0 {
			t.Errorf("daemon: exit %d", code)
		}
	}
}

// TestEtcdTLS: through etcds:// with a client certificate, a split
// topology plans every node as its directory does, and a watch daemon
// converges its node after a key edit.
func TestEtcdTLS(t *testing.T) {
	w := newWorld(t)
	repo, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	s := etcdtest.StartTLS(t)
	tlsArgs := []string{"--etcd-ca", s.Certs.CA, "--etcd-cert", s.Certs.ClientCert, "--etcd-key", s.Certs.ClientKey}
	text, err := os.ReadFile(filepath.Join(repo, "examples", "multinode.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files := splitTopo(t, string(text))
	putSet(s, "/multinode/", files)
	plan := []string{"plan", "--all-nodes", "--observed", "empty", "-o", "json"}
	want, errDir, code1 := Run(t, w.bin, append(plan, "-f", writeSet(t, files))...)
	got, errEtcd, code2 := Run(t, w.bin, append(append(plan, "-f", s.URL("/multinode/")), tlsArgs...)...)
	if code1 != 0 || code2 != 0 || got != want {
		t.Errorf("the directory (exit %d, %d bytes) and etcds:// (exit %d, %d bytes) plan differently\n%s%s", code1, len(want), code2, len(got), errDir, errEtcd)
	}

	// A watch daemon over TLS: a key edited converges the node.
	prefix := "/" + w.id + "/"
	w.file = s.URL(prefix)
	head := fmt.Sprintf(setHeader+"cluster: {podCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/16}\nnodes:\n  - {name: %s, address: 172.31.1.2/24, uplink: eth0, podCIDR: 10.244.1.0/24}\n", w.node)
	pod := func(name, ip string) string {
		return fmt.Sprintf("  - {name: %s, namespace: t, node: %s, ip: %s, netns: %s-%s}\n", name, w.node, ip, w.id, name)
	}
	pods := setHeader + "pods:\n" + pod("a", "10.244.1.10")
	labDir := t.TempDir()
	for k, v := range map[string]string{"00-cluster.yaml": head, "10-pods.yaml": pods} {
		s.Put(prefix+k, v)
		replaceFile(t, filepath.Join(labDir, k), v)
	}
	t.Cleanup(func() {
		Run(t, w.bin, "lab", "down", "-f", labDir, "--state-dir", w.stateDir)
		for _, p := range []string{"a", "a2"} {
			_ = exec.Command("ip", "netns", "del", w.id+"-"+p).Run()
		}
	})
	w.mustRun(append([]string{"lab", "up", "-f", w.file, "--state-dir", w.stateDir}, tlsArgs...)...)
	planEmpty := func() bool {
		_, _, code := Run(t, w.bin, append(w.nodeArgs("plan", "--detailed-exitcode"), tlsArgs...)...)
		return code == 0
	}
	if !netnsExists(w.id+"-a") || !planEmpty() {
		t.Fatal("lab up -f etcds://... did not converge")
	}
	d := startWatch(t, w, tlsArgs...)
	s.Put(prefix+"10-pods.yaml", pods+pod("a2", "10.244.1.11"))
	replaceFile(t, filepath.Join(labDir, "10-pods.yaml"), pods+pod("a2", "10.244.1.11"))
	lat := eventually(t, 15*time.Second, "pod a2 of the edited key", func() bool { return netnsExists(w.id+"-a2") && planEmpty() })
	t.Logf("edited key applied over TLS after %v", lat)
	if strings.Contains(d.logs(), "topology store cannot be followed") {
		t.Errorf("the daemon lost etcd over TLS:\n%s", d.logs())
	}
	if code := d.stop(); code != 0 {
		t.Errorf("daemon: exit %d", code)
	}
}
