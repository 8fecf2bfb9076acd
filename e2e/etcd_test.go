package e2e

import (
	"net"
	"os"
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
