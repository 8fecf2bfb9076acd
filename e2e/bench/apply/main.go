// Command apply measures netreconcile's apply and no-op plan for N veth
// pods beside the floor: the same veth pairs, addresses and routes made
// with raw netlink calls in one process. It prints one table; compare
// figures only within one run (the machine is shared and noisy).
//
//	sudo go run ./e2e/bench/apply [-n 10,100,500] [-runs 5]
//
// Everything lives in namespaces named nrb<random>-*, removed at the end.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/drivers/bridge"
	"github.com/netreconcile/netreconcile/drivers/veth"
	"github.com/netreconcile/netreconcile/e2e/bench/internal/benchnode"
	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

func main() {
	sizes := flag.String("n", "10,100,500", "pod counts")
	runs := flag.Int("runs", 5, "no-op plans per size (median reported)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the no-op plans here")
	flag.Parse()
	profile = *cpuprofile
	benchnode.RequireRoot("bench")
	fmt.Printf("%6s %12s %12s %8s %14s %14s %12s\n", "pods", "floor", "apply", "ratio", "no-op plan", "observe/pod", "destroy")
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 4000 {
			fmt.Fprintf(os.Stderr, "bad size %q\n", s)
			os.Exit(1)
		}
		if err := row(n, *runs); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
	}
}

var profile string

func topo(id string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: netreconcile/v1\nkind: Topology\ncluster: {podCIDR: 10.0.0.0/8}\n")
	fmt.Fprintf(&b, "nodes:\n  - {name: %s, address: 172.31.1.2/24, uplink: eth0, podCIDR: 10.1.0.0/16}\npods:\n", id)
	for i := range n {
		fmt.Fprintf(&b, "  - {name: p%d, namespace: b, node: %s, ip: %s, netns: %s-p%d}\n", i, id, benchnode.PodIP(i), id, i)
	}
	return b.String()
}

func row(n, runs int) error {
	floor, err := measureFloor(n)
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	id := benchnode.RandID("nrb")
	node, err := benchnode.NodeNS(id)
	if err != nil {
		return err
	}
	defer nsutil.Delete(node)
	r, err := spec.LoadBytes(id+".yaml", []byte(topo(id, n)))
	if err != nil {
		return err
	}
	stateDir, err := os.MkdirTemp("", "nrbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stateDir)
	e := &reconcile.Engine{
		Cfg: &reconcile.Config{Node: id, NodeNetns: node, StateDir: stateDir,
			Drivers: drivers.NewRegistry(veth.Driver{}, bridge.Driver{})},
		Log: logr.Discard(),
	}
	defer func() {
		if _, err := e.Destroy(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "destroy:", err)
		}
	}()
	t0 := time.Now()
	if _, err := e.Apply(context.Background(), r); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	apply := time.Since(t0)
	var plans, observes []time.Duration
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	for range runs {
		t := time.Now()
		res, err := e.Plan(r, nil)
		if err != nil {
			return err
		}
		plans = append(plans, time.Since(t))
		if !res.Plan.Empty() {
			return fmt.Errorf("plan after apply is not empty: %d changes", len(res.Plan.Changes))
		}
		t = time.Now()
		if _, err := reconcile.Observe(e.Cfg, mustDesired(e, r)); err != nil {
			return err
		}
		observes = append(observes, time.Since(t))
	}
	t0 = time.Now()
	if _, err := e.Destroy(context.Background()); err != nil {
		return err
	}
	destroy := time.Since(t0)
	fmt.Printf("%6d %12s %12s %7.2fx %14s %14s %12s\n", n, benchnode.Round(floor), benchnode.Round(apply),
		float64(apply)/float64(floor), benchnode.Round(benchnode.Median(plans)), benchnode.Round(benchnode.Median(observes)/time.Duration(n)), benchnode.Round(destroy))
	return nil
}

func mustDesired(e *reconcile.Engine, r *spec.Resolved) *state.State {
	d, err := reconcile.Desired(e.Cfg, r, reconcile.Uplink{Found: true, MTU: 1500})
	if err != nil {
		panic(err)
	}
	return d
}

// measureFloor creates what apply creates for n veth pods (netns, veth
// pair with the peer in it, pod address and routes, node /32 routes) with
// direct netlink calls and no observation, diffing or verification.
func measureFloor(n int) (time.Duration, error) {
	id := benchnode.RandID("nrb")
	node, err := benchnode.NodeNS(id)
	if err != nil {
		return 0, err
	}
	defer nsutil.Delete(node)
	d, cleanup, err := benchnode.FloorPods(node, id, n)
	cleanup()
	return d, err
}
