package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/go-logr/logr"

	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// pinDir is n0's pin directory in the offline rows: the binary's default,
// which the observation records.
const pinDir = "/sys/fs/bpf/netreconcile/" + node

// runChild runs step on file and prints its result as JSON: "observed"
// writes the converged node's observation, "edit" times the one-pod edit.
func runChild(step, file, cpuprofile, memprofile string) error {
	var res result
	var err error
	switch step {
	case "observed":
		res, err = writeConverged(file)
	case "edit":
		res, err = edit(file, cpuprofile, memprofile)
	default:
		err = fmt.Errorf("unknown step %q", step)
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// engine plans n0 as the binary does offline.
func engine(r *spec.Resolved) *reconcile.Engine {
	return &reconcile.Engine{Cfg: &reconcile.Config{Node: node, BPFFS: pinDir, Uplink: r.Node(node).Uplink,
		Drivers: reconcile.AllDrivers()}, Log: logr.Discard()}
}

// writeConverged writes, beside file, node n0 holding exactly what the
// file wants of it, in show -o json's format: the desired state, with
// the node facts of plan --observed empty.
func writeConverged(file string) (result, error) {
	r, err := spec.LoadFiles(file)
	if err != nil {
		return result{}, err
	}
	empty, err := reconcile.EmptyObserved(r, node)
	if err != nil {
		return result{}, err
	}
	want, err := reconcile.Desired(engine(r).Cfg, r, empty.Uplink)
	if err != nil {
		return result{}, err
	}
	obs := state.NewObserved(node)
	obs.FormatVersion, obs.Owned, obs.Facts, obs.Uplink = state.ObservedFormat, want, empty.Facts, empty.Uplink
	obs.Facts.PinDir = pinDir
	b, err := json.Marshal(obs)
	if err == nil {
		err = os.WriteFile(observedPath(file), b, 0o644)
	}
	return result{Objects: want.Len()}, err
}

// edit loads file through a spec.Parser and plans it against the
// converged node, then times the watch daemon's work for the edited file
// (a pod added on n0) without the kernel: reading it, loading it through
// the same Parser (which decodes and resolves only the new item) and
// planning it with what the first plan carried (desired.NewSharedFrom).
func edit(file, cpuprofile, memprofile string) (result, error) {
	var p spec.Parser
	srcs, err := spec.ReadFiles(spec.DefaultMaxFileSize, file)
	if err != nil {
		return result{}, err
	}
	r, _, err := p.Load(srcs)
	if err != nil {
		return result{}, err
	}
	obs, err := readObserved(observedPath(file))
	if err != nil {
		return result{}, err
	}
	e := engine(r)
	e.Cfg.Shared = reconcile.NewSharedFrom(nil, r)
	if _, err := e.Plan(r, obs); err != nil {
		return result{}, err
	}
	carried := e.Cfg.Shared.Carried()
	stop, err := profile(cpuprofile)
	if err != nil {
		return result{}, err
	}
	start := time.Now()
	if srcs, err = spec.ReadFiles(spec.DefaultMaxFileSize, editedPath(file)); err != nil {
		return result{}, err
	}
	srcs[0].Name = file // the daemon reads the same path again
	if r, _, err = p.Load(srcs); err != nil {
		return result{}, err
	}
	e.Cfg.Shared = reconcile.NewSharedFrom(carried, r)
	planned, err := e.Plan(r, obs)
	step := time.Since(start)
	stop()
	if err != nil {
		return result{}, err
	}
	return result{Step: step, Changes: len(planned.Plan.Changes)}, heapProfile(memprofile)
}

func readObserved(path string) (*reconcile.Observed, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var obs reconcile.Observed
	if err := json.Unmarshal(b, &obs); err != nil {
		return nil, fmt.Errorf("observed state %s: %w", path, err)
	}
	return &obs, nil
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
