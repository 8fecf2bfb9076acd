package scaletopo_test

import (
	"flag"
	"os"
	"testing"

	"github.com/netreconcile/netreconcile/internal/scaletopo"
	"github.com/netreconcile/netreconcile/spec"
)

var write = flag.String("write", "", "also write Cluster(100) to this file (the 100-node plan benchmark's file)")

// TestCluster checks the cluster file is valid and has the sizes its
// comment says: with -write FILE it also writes the 100-node file, for
// timing the command (plan -f FILE --all-nodes --observed empty).
func TestCluster(t *testing.T) {
	data := scaletopo.Cluster(100)
	r, err := spec.LoadBytes("cluster100.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Nodes) != 100 || len(r.Pods) != 5000 || len(r.Services) != 1000 || len(r.Policies) != 200 {
		t.Fatalf("got %d nodes, %d pods, %d services, %d policies", len(r.Nodes), len(r.Pods), len(r.Services), len(r.Policies))
	}
	svc := &r.Services[0]
	n := 0
	for i := range r.Pods {
		if svc.Selects(&r.Pods[i]) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("service %s selects %d pods, want 1", svc.Key, n)
	}
	if *write != "" {
		if err := os.WriteFile(*write, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNodes checks issue 18's cluster has the sizes its comment says,
// and that a service has 5 backends.
func TestNodes(t *testing.T) {
	r, err := spec.LoadBytes("nodes100.yaml", scaletopo.Nodes(100))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Nodes) != 100 || len(r.Pods) != 5000 || len(r.Services) != 1000 || len(r.Policies) != 200 || len(r.Namespaces) != 100 {
		t.Fatalf("got %d nodes, %d pods, %d services, %d policies, %d namespaces",
			len(r.Nodes), len(r.Pods), len(r.Services), len(r.Policies), len(r.Namespaces))
	}
	for _, svc := range []*spec.ResolvedService{&r.Services[0], &r.Services[len(r.Services)-1]} {
		nodes := map[string]bool{}
		for i := range r.Pods {
			if svc.Selects(&r.Pods[i]) {
				nodes[r.Pods[i].Node] = true
			}
		}
		if len(nodes) != 5 {
			t.Errorf("service %s selects pods on %d nodes, want 5", svc.Key, len(nodes))
		}
	}
}
