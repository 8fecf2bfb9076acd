package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/netreconcile/netreconcile/e2e/bench/internal/benchnode"
)

// watch runs `netreconcile watch` on a file holding contents[0] (the
// state the node is in), then writes each further content as an editor
// does (a new file renamed over the old) and times the pass it causes:
// the daemon's own "reconciled" duration, which runs from the file event's
// debounce ending to verified convergence (reading and parsing the file
// included). The first measurement's peakRSS is the daemon's over its run.
// Then it writes each of applied in turn and runs `netreconcile apply` on
// the file, which the daemon serves through its control socket, and times
// that command.
func (r *binRunner) watch(ctx context.Context, contents, applied []string) (passes, applies []measurement, err error) {
	b := r.b
	file := filepath.Join(b.dir, "watch.yaml")
	if err := os.WriteFile(file, []byte(contents[0]), 0o644); err != nil {
		return nil, nil, err
	}
	logPath := filepath.Join(b.dir, "watch.log")
	args := append(r.nodeArgs("watch", file), "-v") // -v: no-op passes are logged too
	d, err := benchnode.StartWatch(ctx, b.bin, logPath, args...)
	if err != nil {
		return nil, nil, err
	}
	out := make([]measurement, len(contents))
	// next waits for a pass with the given trigger, then for quiet: the
	// events of the daemon's own changes bring further passes.
	next := func(trigger string) (measurement, error) {
		p, err := d.Next(ctx, trigger, 2*time.Second, 5*time.Minute)
		return measurement{took: p.Took(), changes: p.Changes}, err
	}
	fail := func(err error) ([]measurement, []measurement, error) {
		d.Stop()
		return nil, nil, err
	}
	if _, err := next("start"); err != nil {
		return fail(err)
	}
	for i, c := range contents[1:] {
		if err := benchnode.ReplaceFile(file, []byte(c)); err != nil {
			return fail(err)
		}
		if out[i+1], err = next("file"); err != nil {
			return fail(err)
		}
	}
	for _, c := range applied {
		if err := benchnode.ReplaceFile(file, []byte(c)); err != nil {
			return fail(err)
		}
		t0 := time.Now()
		stdout, err := exec.CommandContext(ctx, b.bin, r.nodeArgs("apply", file)...).Output()
		took := time.Since(t0)
		if err != nil || !bytes.Contains(stdout, []byte("watch daemon")) {
			return fail(fmt.Errorf("apply through the watch daemon: %v: %s", err, stdout))
		}
		m, err := next("apply")
		if err != nil {
			return fail(err)
		}
		m.took = took
		applies = append(applies, m)
	}
	d.Stop()
	if keep := os.Getenv("NR_SCALE_WATCH_LOG"); keep != "" {
		if data, err := os.ReadFile(logPath); err == nil {
			_ = os.WriteFile(keep, data, 0o644)
		}
	}
	out[0].peakRSS = d.PeakRSS()
	return out, applies, nil
}
