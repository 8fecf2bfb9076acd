package reconcile_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/drivers/bridge"
	"github.com/netreconcile/netreconcile/drivers/ipvlan"
	"github.com/netreconcile/netreconcile/drivers/macvlan"
	"github.com/netreconcile/netreconcile/drivers/veth"
	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// goldenTopologies are the files whose plans are kept: the examples and
// the e2e topologies that plan without a kernel.
func goldenTopologies(t *testing.T) []string {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return append(files, "../e2e/testdata/upgrade/topology.yaml")
}

// TestGoldenPlans plans every node of every golden topology against an
// empty node (its uplink found, carrying the node address, MTU 1500) with
// no kernel access, and compares the plan text and JSON byte for byte
// with testdata/golden (go test -run TestGoldenPlans -update rewrites
// them).
func TestGoldenPlans(t *testing.T) {
	for _, file := range goldenTopologies(t) {
		r, err := loadGolden(file)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		base := strings.TrimSuffix(filepath.Base(file), ".yaml")
		if strings.Contains(file, "e2e/") {
			base = "e2e-" + filepath.Base(filepath.Dir(file))
		}
		for _, n := range r.Nodes {
			t.Run(base+"/"+n.Name, func(t *testing.T) {
				text, js := goldenPlan(t, r, n.Name)
				compareGolden(t, filepath.Join("testdata", "golden", base+"-"+n.Name+".txt"), text)
				compareGolden(t, filepath.Join("testdata", "golden", base+"-"+n.Name+".json"), js)
			})
		}
	}
}

// loadGolden loads file, filling the placeholders of the e2e upgrade
// topology with fixed names.
func loadGolden(file string) (*spec.Resolved, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	b = []byte(strings.NewReplacer("{node}", "up-node", "{ns_a}", "up-a", "{ns_b}", "up-b").Replace(string(b)))
	return spec.LoadBytes(file, b)
}

// goldenPlan returns the plan of node against an empty observed state, as
// text and as the JSON plan -o json prints.
func goldenPlan(t *testing.T, r *spec.Resolved, node string) (text, js []byte) {
	t.Helper()
	n := r.Node(node)
	e := &reconcile.Engine{Cfg: &reconcile.Config{Node: node, NodeNetns: "/nonexistent", StateDir: t.TempDir(),
		BPFFS:   "/sys/fs/bpf/netreconcile/" + node,
		Drivers: drivers.NewRegistry(veth.Driver{}, bridge.Driver{}, macvlan.Driver{}, ipvlan.Driver{})},
		Log: logr.Discard()}
	obs := &reconcile.Observed{Node: node, Owned: state.New(),
		Uplink: reconcile.Uplink{Name: n.Uplink, Found: true, Index: 2, MTU: 1500, Addrs: []netip.Prefix{n.Address}}}
	res, err := e.Plan(r, obs)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	var tb, jb bytes.Buffer
	res.Plan.WriteText(&tb)
	enc := json.NewEncoder(&jb)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res.Plan); err != nil {
		t.Fatal(err)
	}
	return tb.Bytes(), jb.Bytes()
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestGoldenFileTerms plans testdata/fileterms/new.yaml against a node
// that runs old.yaml (its desired state as the observed one, owners
// included, as a saved observation has them): the deletions of a removed
// pod and a removed service are named after them and marked removed from
// the file, and the pod that a policy no longer selects says so. A
// service entry observed without an owner (written before the services
// record) is named by its address.
func TestGoldenFileTerms(t *testing.T) {
	const node = "ft-node"
	load := func(name string) *spec.Resolved {
		r, err := spec.LoadFiles(filepath.Join("testdata/fileterms", name))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	oldR, newR := load("old.yaml"), load("new.yaml")
	e := &reconcile.Engine{Cfg: &reconcile.Config{Node: node, NodeNetns: "/nonexistent", StateDir: t.TempDir(),
		BPFFS: "/sys/fs/bpf/netreconcile/" + node, Drivers: drivers.NewRegistry(veth.Driver{}), Uplink: "eth0"},
		Log: logr.Discard()}
	n := oldR.Node(node)
	up := reconcile.Uplink{Name: n.Uplink, Found: true, Index: 2, MTU: 1500, Addrs: []netip.Prefix{n.Address}}
	// plan plans new.yaml against old.yaml's desired state; unnamed
	// leaves the removed service's entry without its owner.
	plan := func(t *testing.T, unnamed bool) *reconcile.Plan {
		t.Helper()
		old, err := reconcile.Desired(e.Cfg, oldR, up)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range old.Of(state.KindService) {
			if o.Owner() == "service/x/nothing" && unnamed {
				o.(*state.Service).OwnerK = ""
			}
		}
		res, err := e.Plan(newR, &reconcile.Observed{Node: node, Owned: old, Uplink: up})
		if err != nil {
			t.Fatal(err)
		}
		return res.Plan
	}
	p := plan(t, false)
	var tb bytes.Buffer
	p.WriteText(&tb)
	compareGolden(t, "testdata/golden/fileterms.txt", tb.Bytes())
	for _, want := range []string{"# service x/nothing (removed from the file)", "# pod x/gone (removed from the file)",
		"pod x/api2: no policy selects it for ingress now"} {
		if !bytes.Contains(tb.Bytes(), []byte(want)) {
			t.Errorf("plan does not say %q", want)
		}
	}
	removed := map[string]bool{}
	for _, c := range p.Changes {
		if c.OwnerRemoved {
			removed[c.Owner] = true
			if c.Owner != "pod/x/gone" && c.Owner != "service/x/nothing" {
				t.Errorf("%s %s %s: owner %q marked removed from the file", c.Action, c.Kind, c.Key, c.Owner)
			}
		}
	}
	if !removed["pod/x/gone"] || !removed["service/x/nothing"] {
		t.Errorf("owners marked removed: %v, want pod/x/gone and service/x/nothing", removed)
	}
	t.Run("unnamed entry", func(t *testing.T) {
		var tb bytes.Buffer
		plan(t, true).WriteText(&tb)
		if want := "# service 10.96.0.11:80/TCP (removed from the file)\n  -   service 10.96.0.11:80/TCP\n"; !strings.Contains(tb.String(), want) {
			t.Errorf("plan does not say %q:\n%s", want, tb.String())
		}
	})
}
