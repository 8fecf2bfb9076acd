package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
func (r *binRunner) watch(ctx context.Context, contents []string) ([]measurement, error) {
	b := r.b
	file := filepath.Join(b.dir, "watch.yaml")
	if err := os.WriteFile(file, []byte(contents[0]), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(b.dir, "watch.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	args := append(r.nodeArgs("watch", file), "-v") // -v: no-op passes are logged too
	cmd := exec.CommandContext(ctx, b.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
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
	// next waits for a pass with the given trigger, then for quiet: the
	// events of the daemon's own changes bring further passes.
	next := func(trigger string) (measurement, error) {
		var m measurement
		found := false
		deadline := time.Now().Add(5 * time.Minute)
		quietSince := time.Now()
		for time.Now().Before(deadline) {
			passes, err := readPasses(logPath)
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
			case <-time.After(20 * time.Millisecond):
			}
		}
		return m, fmt.Errorf("no %s pass of watch within 5 minutes", trigger)
	}
	if _, err := next("start"); err != nil {
		stop()
		return nil, err
	}
	for i, c := range contents[1:] {
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(c), 0o644); err != nil {
			stop()
			return nil, err
		}
		if err := os.Rename(tmp, file); err != nil {
			stop()
			return nil, err
		}
		if out[i+1], err = next("file"); err != nil {
			stop()
			return nil, err
		}
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
	return out, nil
}

// pass is one "reconciled" (or failed) line of the daemon's JSON log.
type pass struct {
	Msg      string `json:"msg"`
	Trigger  string `json:"trigger"`
	Duration string `json:"duration"`
	Changes  int    `json:"changes"`
	Error    string `json:"error"`
}

func readPasses(path string) ([]pass, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []pass
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var p pass
		if json.Unmarshal(sc.Bytes(), &p) != nil {
			continue
		}
		switch {
		case p.Msg == "reconciled":
			out = append(out, p)
		case strings.HasPrefix(p.Msg, "reconcile failed"):
			if p.Error == "" {
				p.Error = p.Msg
			}
			out = append(out, p)
		}
	}
	return out, nil
}
