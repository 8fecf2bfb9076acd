package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/go-logr/logr"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/drivers/bridge"
	"github.com/netreconcile/netreconcile/drivers/ipvlan"
	"github.com/netreconcile/netreconcile/drivers/macvlan"
	"github.com/netreconcile/netreconcile/drivers/veth"
	"github.com/netreconcile/netreconcile/internal/scaletopo/join"
	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// node is the node every row plans.
const node = "n0"

// runChild runs row on the file cut into dir's documents and prints its
// result as JSON.
func runChild(row, dir, cpuprofile, memprofile string) error {
	start := time.Now()
	if row == "validate" { // the whole of it is the row
		stop, err := profile(cpuprofile)
		if err != nil {
			return err
		}
		defer stop()
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	var parts [][]byte
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		parts = append(parts, b)
	}
	t, r, err := join.Join(parts)
	if err != nil {
		return err
	}
	var res result
	if row == "validate" {
		err = reconcile.CheckCapacity(r, nil)
		res.Step = time.Since(start)
		return report(res, err)
	}
	e := &reconcile.Engine{Cfg: &reconcile.Config{Node: node, BPFFS: "/sys/fs/bpf/netreconcile/" + node,
		Drivers: drivers.NewRegistry(veth.Driver{}, bridge.Driver{}, macvlan.Driver{}, ipvlan.Driver{})}, Log: logr.Discard()}
	obs, err := reconcile.EmptyObserved(r, node)
	if err != nil {
		return err
	}
	if row != "plan" {
		if obs, err = converged(e, r, obs); err != nil {
			return err
		}
	}
	if row == "edit" {
		t.Pods = append(t.Pods, spec.Pod{Name: "added", Namespace: "ns0", Node: node, Mode: "veth",
			Labels: map[string]string{"app": "a1", "instance": "added"}})
	}
	stop, err := profile(cpuprofile)
	if err != nil {
		return err
	}
	start = time.Now()
	if row == "edit" {
		if r, err = spec.Resolve(t, nil); err != nil {
			return err
		}
	}
	planned, err := e.Plan(r, obs)
	if err == nil {
		planned.Plan.WriteText(io.Discard)
	}
	res.Step = time.Since(start)
	stop()
	if err != nil {
		return err
	}
	res.Changes = len(planned.Plan.Changes)
	if res.Objects, err = objects(e, r, obs); err != nil {
		return err
	}
	if err := heapProfile(memprofile); err != nil {
		return err
	}
	return report(res, nil)
}

func report(res result, err error) error {
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// converged is a node holding exactly what the file wants of it: the
// desired state, copied through its JSON form, with empty's node facts.
func converged(e *reconcile.Engine, r *spec.Resolved, empty *reconcile.Observed) (*reconcile.Observed, error) {
	e.Cfg.Uplink = r.Node(node).Uplink
	want, err := reconcile.Desired(e.Cfg, r, empty.Uplink)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(want)
	if err != nil {
		return nil, err
	}
	obs := state.NewObserved(node)
	if err := json.Unmarshal(b, obs.Owned); err != nil {
		return nil, err
	}
	obs.Facts, obs.Uplink = empty.Facts, empty.Uplink
	return obs, nil
}

// objects counts the node's desired objects (after the timing).
func objects(e *reconcile.Engine, r *spec.Resolved, obs *reconcile.Observed) (int, error) {
	want, err := reconcile.Desired(e.Cfg, r, obs.Uplink)
	if err != nil {
		return 0, err
	}
	return want.Len(), nil
}

func profile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, fmt.Errorf("start CPU profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func heapProfile(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.GC()
	return pprof.Lookup("allocs").WriteTo(f, 0)
}
