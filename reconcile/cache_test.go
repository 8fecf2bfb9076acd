package reconcile_test

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
)

// TestCacheReadsOnlyWhatChanged: with a cache, a plan reuses what it saw
// in a pod namespace, and in the node namespace, until that namespace is
// invalidated; a pass that applies changes reads again what it touched;
// InvalidateAll reads everything.
func TestCacheReadsOnlyWhatChanged(t *testing.T) {
	e, name := node(t)
	e.Cache = reconcile.NewCache()
	r := load(t, name, "a", "b")
	if _, err := e.Apply(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	plan := func() []string {
		t.Helper()
		res, err := e.Plan(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range res.Plan.Changes {
			out = append(out, string(c.Action)+" "+c.Kind+" "+c.Key)
		}
		return out
	}
	if got := plan(); len(got) != 0 {
		t.Fatalf("plan after a cached apply: %v", got)
	}
	ip := func(ns string, args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	// Drift in pod a's namespace, unknown to the cache: not seen.
	podA := name + "-a"
	ip(podA, "route", "del", "default")
	if got := plan(); len(got) != 0 {
		t.Fatalf("the cache should have hidden pod a's namespace, plan: %v", got)
	}
	e.Cache.Invalidate(podA)
	got := plan()
	if len(got) != 1 || got[0] != "create route "+podA+"/0.0.0.0/0" {
		t.Fatalf("after invalidating %s: %v, want the default route re-added", podA, got)
	}
	// The node namespace likewise.
	host := drivers.HostIfName(name, "default/b")
	ip(e.Cfg.NodeNetns, "link", "set", host, "down")
	if got := plan(); len(got) != 1 {
		t.Fatalf("the cache should have hidden the node namespace, plan: %v", got)
	}
	// As the daemon does on a link event: that link is read again (by its
	// ifindex), and the node's routes, which went with it.
	out, err := exec.Command("ip", "-n", e.Cfg.NodeNetns, "-o", "link", "show", "dev", host).Output()
	if err != nil {
		t.Fatal(err)
	}
	index, err := strconv.Atoi(strings.SplitN(string(out), ":", 2)[0])
	if err != nil {
		t.Fatalf("ifindex of %s in %q: %v", host, out, err)
	}
	e.Cache.InvalidateLink("", index)
	if got := plan(); !strings.Contains(strings.Join(got, ";"), "update link node/"+host) {
		t.Fatalf("node namespace drift with pod a invalid: %v", got)
	}
	// Apply repairs both and verifies through the cache.
	if _, err := e.Apply(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	// A link deleted: gone from the cached node namespace once its index
	// is invalidated.
	ip(e.Cfg.NodeNetns, "link", "del", host)
	e.Cache.InvalidateLink("", index)
	e.Cache.Invalidate(name + "-b") // its peer went with it
	if got := plan(); !strings.Contains(strings.Join(got, ";"), "create link node/"+host) {
		t.Fatalf("after deleting %s: %v, want it created again", host, got)
	}
	if _, err := e.Apply(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	e.Cache.InvalidateAll()
	if got := plan(); len(got) != 0 {
		t.Fatalf("full read after the cached apply: %v", got)
	}
}

// TestCacheWritesMapEntriesThrough: a service change applied with a cache
// is taken as written (the kernel acknowledged each map write), so the
// pass reads nothing back; the next plans trust the cache for the
// datapath until something invalidates it, and a full read (watch's
// resync) sees what was changed by hand.
func TestCacheWritesMapEntriesThrough(t *testing.T) {
	e, name := node(t)
	e.Cfg.BPFFS = "/sys/fs/bpf/" + name
	e.Cache = reconcile.NewCache()
	topo := func(app string) *spec.Resolved {
		t.Helper()
		var b strings.Builder
		fmt.Fprintf(&b, "apiVersion: netreconcile/v1\nkind: Topology\ncluster: {podCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/16}\n")
		fmt.Fprintf(&b, "nodes: [{name: %s, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}]\npods:\n", name)
		for _, p := range []string{"a", "b"} {
			fmt.Fprintf(&b, "  - {name: %s, node: %s, netns: %s-%s, ip: 10.244.1.%d, labels: {app: %s}}\n", p, name, name, p, 10+len(p)+int(p[0]-'a'), p)
		}
		fmt.Fprintf(&b, "services:\n  - {name: s, clusterIP: 10.96.0.10, selector: {app: %s}, ports: [{port: 80, targetPort: 8080}]}\n", app)
		r, err := spec.LoadBytes("t.yaml", []byte(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	backends := func() string {
		t.Helper()
		dp, err := datapath.Open(e.Cfg.BPFFS)
		if err != nil {
			t.Fatal(err)
		}
		defer dp.Close()
		svcs, err := dp.Services()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range svcs {
			for _, be := range s.Backends {
				out = append(out, be.IP.String())
			}
		}
		return strings.Join(out, ",")
	}
	if _, err := e.Apply(context.Background(), topo("a")); err != nil {
		t.Fatal(err)
	}
	res, err := e.Apply(context.Background(), topo("b"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plan.Changes) != 1 || res.Plan.Changes[0].Kind != "service" {
		t.Fatalf("selector change: %v", res.Plan.Changes)
	}
	if got := backends(); got != "10.244.1.12" {
		t.Fatalf("backends after the change: %s, want pod b's 10.244.1.12", got)
	}
	// By hand, behind the cache: the next plan trusts the written-through
	// entry; a full read repairs it.
	dp, err := datapath.Open(e.Cfg.BPFFS)
	if err != nil {
		t.Fatal(err)
	}
	if err := dp.DeleteService(datapath.ServiceKey{IP: netip.MustParseAddr("10.96.0.10"), Port: 80, Proto: datapath.ProtoTCP}); err != nil {
		t.Fatal(err)
	}
	dp.Close()
	res, err = e.Plan(topo("b"), nil)
	if err != nil || !res.Plan.Empty() {
		t.Fatalf("cached plan: %v %v, want it to trust the cache", err, res.Plan.Changes)
	}
	e.Cache.InvalidateAll()
	res, err = e.Plan(topo("b"), nil)
	if err != nil || len(res.Plan.Changes) != 1 || res.Plan.Changes[0].Action != reconcile.Create {
		t.Fatalf("full plan after the entry was deleted by hand: %v %v", err, res.Plan.Changes)
	}
}
