package benchnode

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Pass is one "reconciled" (or failed) line of the watch daemon's JSON
// log.
type Pass struct {
	Msg      string `json:"msg"`
	Trigger  string `json:"trigger"`
	Duration string `json:"duration"` // from the file event's debounce ending to verified convergence
	ReadFile string `json:"readFile"` // reading and parsing the file, within Duration
	Changes  int    `json:"changes"`
	Error    string `json:"error"`
	// Seen is when the bench read the line (within about 50 ms of its
	// writing, as Next polls).
	Seen time.Time `json:"-"`
}

// Took is the pass's duration (0 when the log has none).
func (p Pass) Took() time.Duration {
	d, _ := time.ParseDuration(p.Duration)
	return d
}

// Daemon is a running `netreconcile watch` logging JSON (with -v, so that
// no-op passes are logged too) to a file that Next reads.
type Daemon struct {
	cmd    *exec.Cmd
	done   chan struct{}
	log    string
	reader passReader
	seen   int // passes already returned or skipped by Next
}

// StartWatch starts bin with args (watch and its flags), its output going
// to the file logPath. Call Stop on every path once it started.
func StartWatch(ctx context.Context, bin, logPath string, args ...string) (*Daemon, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// An interrupt stops it as Stop does: killed, it would leave its
	// lock and a pass half done.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s watch: %w", bin, err)
	}
	d := &Daemon{cmd: cmd, done: make(chan struct{}), log: logPath, reader: passReader{path: logPath}}
	go func() { _ = cmd.Wait(); close(d.done) }()
	return d, nil
}

// Pid is the daemon's process id.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Stop ends the daemon with SIGTERM (which leaves what it made in place),
// killing it after 30 s, and waits for it.
func (d *Daemon) Stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// PeakRSS is the daemon's peak resident set size over its run, from
// wait4's rusage: valid after Stop.
func (d *Daemon) PeakRSS() int64 {
	if d.cmd.ProcessState == nil {
		return 0
	}
	if ru, ok := d.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss << 10 // KiB on Linux
	}
	return 0
}

// Next waits up to timeout for the first pass with the given trigger
// after those already seen, then for quiet time without further passes
// (the events of the daemon's own changes bring some), and returns it.
// A failed pass, the daemon's exit or ctx's end is an error.
func (d *Daemon) Next(ctx context.Context, trigger string, quiet, timeout time.Duration) (Pass, error) {
	var found *Pass
	deadline := time.Now().Add(timeout)
	quietSince := time.Now()
	for time.Now().Before(deadline) {
		passes, err := d.reader.read()
		if err != nil {
			return Pass{}, err
		}
		for _, p := range passes[d.seen:] {
			if p.Error != "" {
				return Pass{}, fmt.Errorf("watch pass (%s) failed: %s", p.Trigger, Clip(p.Error, 400))
			}
			if found == nil && p.Trigger == trigger {
				found = &p
			}
			quietSince = time.Now()
		}
		d.seen = len(passes)
		if found != nil && time.Since(quietSince) > quiet {
			return *found, nil
		}
		select {
		case <-d.done:
			log, _ := os.ReadFile(d.log)
			return Pass{}, fmt.Errorf("watch exited:\n%s", Tail(string(log), 20))
		case <-ctx.Done():
			return Pass{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return Pass{}, fmt.Errorf("no %s pass of watch within %s", trigger, timeout)
}

// passReader reads the passes of a growing log, parsing each line once:
// the bench shares its CPUs with the daemon it times.
type passReader struct {
	path   string
	offset int64
	tail   []byte // an incomplete last line
	passes []Pass
}

func (r *passReader) read() ([]Pass, error) {
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
	now := time.Now()
	for line := range bytes.Lines(data[:end]) {
		if !bytes.Contains(line, []byte(`"msg":"reconcile`)) {
			continue
		}
		p := Pass{Seen: now}
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

// ReplaceFile writes data to path as an editor does: a new file renamed
// over the old one.
func ReplaceFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Memory is a process's resident set size now (VmRSS) and its peak so
// far (VmHWM), from /proc/PID/status.
func Memory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(b)) {
		name, v, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status %s: %w", pid, name, err)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm, nil
}

// Clip returns s cut to n bytes and "...", when longer: the errors of a
// large node list thousands of changes.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
