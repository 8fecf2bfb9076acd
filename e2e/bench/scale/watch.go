package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
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
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	defer logf.Close()
	args := append(r.nodeArgs("watch", file), "-v") // -v: no-op passes are logged too
	cmd := exec.CommandContext(ctx, b.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	out := make([]measurement, len(contents))
	seen := 0 // passes already read from the log
	reader := &passReader{path: logPath}
	// next waits for a pass with the given trigger, then for quiet: the
	// events of the daemon's own changes bring further passes.
	next := func(trigger string) (measurement, error) {
		var m measurement
		found := false
		deadline := time.Now().Add(5 * time.Minute)
		quietSince := time.Now()
		for time.Now().Before(deadline) {
			passes, err := reader.read()
			if err != nil {
				return m, err
			}
			if len(passes) > seen {
				for _, p := range passes[seen:] {
					if p.Error != "" {
						return m, fmt.Errorf("watch pass failed: %s", p.Error)
					}
					if !found && p.Trigger == trigger {
						found = true
						d, _ := time.ParseDuration(p.Duration)
						m = measurement{took: d, changes: p.Changes}
					}
				}
				seen = len(passes)
				quietSince = time.Now()
			}
			if found && time.Since(quietSince) > 2*time.Second {
				return m, nil
			}
			select {
			case <-done:
				log, _ := os.ReadFile(logPath)
				return m, fmt.Errorf("watch exited:\n%s", benchnode.Tail(string(log), 20))
			case <-ctx.Done():
				return m, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		return m, fmt.Errorf("no %s pass of watch within 5 minutes", trigger)
	}
	write := func(c string) error {
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(c), 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, file)
	}
	fail := func(err error) ([]measurement, []measurement, error) {
		stop()
		return nil, nil, err
	}
	if _, err := next("start"); err != nil {
		return fail(err)
	}
	for i, c := range contents[1:] {
		if err := write(c); err != nil {
			return fail(err)
		}
		if out[i+1], err = next("file"); err != nil {
			return fail(err)
		}
	}
	for _, c := range applied {
		if err := write(c); err != nil {
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
	stop()
	if keep := os.Getenv("NR_SCALE_WATCH_LOG"); keep != "" {
		if data, err := os.ReadFile(logPath); err == nil {
			_ = os.WriteFile(keep, data, 0o644)
		}
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		out[0].peakRSS = ru.Maxrss << 10
	}
	return out, applies, nil
}

// pass is one "reconciled" (or failed) line of the daemon's JSON log.
type pass struct {
	Msg      string `json:"msg"`
	Trigger  string `json:"trigger"`
	Duration string `json:"duration"`
	Changes  int    `json:"changes"`
	Error    string `json:"error"`
}

// passReader reads the passes of a growing log, parsing each line once:
// the bench shares two CPUs with the daemon it times.
type passReader struct {
	path   string
	offset int64
	tail   []byte // an incomplete last line
	passes []pass
}

func (r *passReader) read() ([]pass, error) {
	f, err := os.Open(r.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(r.offset, io.SeekStart); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	r.offset += int64(len(data))
	data = append(r.tail, data...)
	end := bytes.LastIndexByte(data, '\n') + 1
	r.tail = slices.Clone(data[end:])
	for line := range bytes.Lines(data[:end]) {
		if !bytes.Contains(line, []byte(`"msg":"reconcile`)) {
			continue
		}
		var p pass
		if json.Unmarshal(line, &p) != nil {
			continue
		}
		switch {
		case p.Msg == "reconciled":
			r.passes = append(r.passes, p)
		case strings.HasPrefix(p.Msg, "reconcile failed"):
			if p.Error == "" {
				p.Error = p.Msg
			}
			r.passes = append(r.passes, p)
		}
	}
	return r.passes, nil
}
