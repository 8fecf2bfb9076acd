package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/go-logr/logr"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/drivers/bridge"
	"github.com/netreconcile/netreconcile/drivers/veth"
	"github.com/netreconcile/netreconcile/internal/nstest"
	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
)

// node builds a throwaway node namespace with an uplink carrying
// 172.31.1.2/24 and returns an engine for it.
func node(t *testing.T) (*reconcile.Engine, string) {
	nstest.RequireRoot(t)
	ns := nstest.TempNetns(t, "nrt")
	for _, args := range [][]string{
		{"link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"},
		{"addr", "add", "172.31.1.2/24", "dev", "eth0"},
		{"link", "set", "eth0", "up"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	name := nstest.UniqueName("n")
	e := &reconcile.Engine{Cfg: &reconcile.Config{Node: name, NodeNetns: ns, StateDir: t.TempDir(),
		Drivers: drivers.NewRegistry(veth.Driver{}, bridge.Driver{})}, Log: logr.Discard()}
	t.Cleanup(func() {
		if _, err := e.Destroy(context.Background()); err != nil {
			t.Errorf("destroy: %v", err)
		}
	})
	return e, name
}

func load(t *testing.T, nodeName string, pods ...string) *spec.Resolved {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: netreconcile/v1\nkind: Topology\ncluster: {podCIDR: 10.244.0.0/16}\n")
	fmt.Fprintf(&b, "nodes: [{name: %s, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}]\npods:\n", nodeName)
	for _, p := range pods {
		fmt.Fprintf(&b, "  - {name: %s, node: %s, netns: %s-%s}\n", p, nodeName, nodeName, p)
	}
	r, err := spec.LoadBytes("t.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestKernelRefusalMidApply: a foreign link appears between plan and
// apply. Apply stops naming the object and the kernel's reason; the next
// apply refuses before any change (clash); once the foreign object is
// gone, apply converges.
func TestKernelRefusalMidApply(t *testing.T) {
	e, name := node(t)
	r := load(t, name, "a", "b")
	res, err := e.Plan(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	intruder := drivers.HostIfName(name, "default/b")
	if out, err := exec.Command("ip", "-n", e.Cfg.NodeNetns, "link", "add", intruder, "type", "bridge").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	_, err = reconcile.Apply(context.Background(), e.Cfg, res.Plan, logr.Discard())
	if err == nil || !strings.Contains(err.Error(), intruder) || !strings.Contains(err.Error(), "file exists") {
		t.Fatalf("apply error %v: want the object %s and the kernel's reason", err, intruder)
	}
	_, err = e.Apply(context.Background(), r)
	if !errors.Is(err, reconcile.ErrClash) || !strings.Contains(err.Error(), intruder) {
		t.Fatalf("second apply: %v, want a clash naming %s", err, intruder)
	}
	if out, err := exec.Command("ip", "-n", e.Cfg.NodeNetns, "link", "del", intruder).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if _, err := e.Apply(context.Background(), r); err != nil {
		t.Fatalf("apply after removing the intruder: %v", err)
	}
	res, err = e.Plan(r, nil)
	if err != nil || !res.Plan.Empty() {
		t.Fatalf("plan after convergence: %v %+v", err, res)
	}
}

// TestPreflightUplink: a missing uplink, or one without the node address,
// fails before any change.
func TestPreflightUplink(t *testing.T) {
	e, name := node(t)
	r := load(t, name, "a")
	r.Nodes[0].Uplink = "nope0"
	if _, err := e.Apply(context.Background(), r); err == nil || !strings.Contains(err.Error(), `uplink "nope0" not found`) {
		t.Fatalf("missing uplink: %v", err)
	}
	r = load(t, name, "a")
	r.Nodes[0].Address = netip.PrefixFrom(r.Nodes[0].Address.Addr().Next(), 24)
	if _, err := e.Apply(context.Background(), r); err == nil || !strings.Contains(err.Error(), "does not carry the node address") {
		t.Fatalf("wrong address: %v", err)
	}
	if _, err := os.Stat("/var/run/netns/" + name + "-a"); err == nil {
		t.Fatal("a failed preflight created the pod namespace")
	}
}
