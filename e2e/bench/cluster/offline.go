package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/netreconcile/netreconcile/e2e/bench/internal/benchnode"
	"github.com/netreconcile/netreconcile/internal/scaletopo"
)

var rowNames = map[string]string{
	"validate": "validate", "plan": "plan from scratch", "noop": "no-op plan", "edit": "one-pod edit (offline)",
}

// result is what a child of this program reports of its step.
type result struct {
	Step    time.Duration `json:"step"`    // the step's own work
	Objects int           `json:"objects"` // desired objects of the node
	Changes int           `json:"changes"` // changes planned
}

// measurement is one child run, as the parent saw it.
type measurement struct {
	result
	wall time.Duration
	rss  int64
}

// offline is one size's files: the cluster, the converged node's
// observation and the cluster with a pod added on n0.
type offline struct {
	bin, self, file, observed, edited, stateDir string
}

func runOffline(ctx context.Context, sizes []int, rows []string, runs int, cpuprofile, memprofile string) error {
	for _, row := range rows {
		if rowNames[row] == "" {
			return fmt.Errorf("unknown row %q", row)
		}
	}
	tmp, err := os.MkdirTemp("", "nrcluster-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	o := offline{bin: filepath.Join(tmp, "netreconcile")}
	if o.self, err = os.Executable(); err != nil {
		return err
	}
	if err := benchnode.BuildBinary(ctx, o.bin); err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "nodes\trow\ttime\tpeak RSS\tchanges\tgoal at 1000 nodes\t\n")
	for _, n := range sizes {
		if err := o.write(filepath.Join(tmp, strconv.Itoa(n)), n); err != nil {
			return err
		}
		objects, _, _, err := child(ctx, o.self, "observed", o.file, "", "")
		if err != nil {
			return fmt.Errorf("%d nodes: converged node: %w", n, err)
		}
		st, _ := os.Stat(o.file)
		fmt.Fprintf(w, "%d\t(%.1f MB of YAML; n0 wants %d objects)\t\t\t\t\t\n", n, float64(st.Size())/1e6, objects.Objects)
		for _, row := range rows {
			var ms []measurement
			for range runs {
				m, err := o.run(ctx, row, cpuprofile, memprofile)
				if err != nil {
					return fmt.Errorf("%d nodes, %s: %w", n, rowNames[row], err)
				}
				ms = append(ms, m)
			}
			m := median(ms)
			changes := strconv.Itoa(m.Changes)
			if row == "validate" {
				changes = ""
			}
			fmt.Fprintf(w, "\t%s\t%s\t%s\t%s\t%s\t\n", rowNames[row], benchnode.Round(m.Step), mb(m.rss), changes, goal(row))
		}
		fmt.Fprintf(os.Stderr, "%d nodes done\n", n) // the table is aligned once, at the end
	}
	return w.Flush()
}

func goal(row string) string {
	switch row {
	case "plan", "noop":
		return fmt.Sprintf("< %s, < %d MB", goalPlan, goalPlanRSS>>20)
	case "edit":
		return "(through watch: < " + goalEdit.String() + ")"
	}
	return ""
}

// write writes one size's cluster file and its edited copy to dir; the
// observation is written by a child (childStep "observed").
func (o *offline) write(dir string, n int) error {
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o755); err != nil {
		return err
	}
	o.file, o.stateDir = filepath.Join(dir, "cluster.yaml"), filepath.Join(dir, "state")
	o.observed, o.edited = observedPath(o.file), editedPath(o.file)
	data := scaletopo.Nodes(n)
	if err := os.WriteFile(o.file, data, 0o644); err != nil {
		return err
	}
	return os.WriteFile(o.edited, withPod(data, ""), 0o644)
}

func observedPath(file string) string { return file + ".json" }
func editedPath(file string) string   { return file + ".edited" }

// run runs one row once: the binary, or this program's child for edit.
func (o *offline) run(ctx context.Context, row, cpuprofile, memprofile string) (measurement, error) {
	var args []string
	switch row {
	case "edit":
		var m measurement
		var err error
		m.result, m.wall, m.rss, err = child(ctx, o.self, "edit", o.file, cpuprofile, memprofile)
		return m, err
	case "validate":
		args = []string{"validate", "-f", o.file}
	case "plan":
		args = []string{"plan", "-f", o.file, "--node", node, "--observed", "empty", "--state-dir", o.stateDir}
	case "noop":
		args = []string{"plan", "-f", o.file, "--node", node, "--observed", o.observed, "--state-dir", o.stateDir}
	}
	out, wall, rss, err := execRSS(ctx, o.bin, args...)
	m := measurement{result: result{Step: wall}, wall: wall, rss: rss}
	if err != nil || row == "validate" {
		return m, err
	}
	if m.Changes, err = planChanges(out); err == nil && row == "noop" && m.Changes != 0 {
		err = fmt.Errorf("%d changes: the observation is not the converged node", m.Changes)
	}
	return m, err
}

var planRE = regexp.MustCompile(`\nPlan: (\d+) to add, (\d+) to change, (\d+) to destroy\.\n`)

// planChanges reads the number of changes from plan's text.
func planChanges(out []byte) (int, error) {
	if bytes.HasPrefix(out, []byte("No changes.")) {
		return 0, nil
	}
	sm := planRE.FindSubmatch(out)
	if sm == nil {
		return 0, fmt.Errorf("plan printed no summary:\n%s", benchnode.Tail(string(out), 5))
	}
	total := 0
	for _, s := range sm[1:] {
		v, _ := strconv.Atoi(string(s))
		total += v
	}
	return total, nil
}

// execRSS runs bin with args and returns its standard output, wall time
// and peak RSS (wait4's rusage).
func execRSS(ctx context.Context, bin string, args ...string) ([]byte, time.Duration, int64, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	wall := time.Since(start)
	var rss int64
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = ru.Maxrss << 10 // KiB on Linux
		}
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), args[0], err, benchnode.Tail(stderr.String(), 10))
		}
		return nil, wall, rss, err
	}
	return out, wall, rss, nil
}

// child runs step of this program on file in a child process and reads
// its result.
func child(ctx context.Context, self, step, file, cpuprofile, memprofile string) (result, time.Duration, int64, error) {
	args := []string{"-child", step, "-file", file}
	if cpuprofile != "" {
		args = append(args, "-cpuprofile", cpuprofile)
	}
	if memprofile != "" {
		args = append(args, "-memprofile", memprofile)
	}
	out, wall, rss, err := execRSS(ctx, self, args...)
	var res result
	if err == nil {
		err = json.Unmarshal(out, &res)
	}
	return res, wall, rss, err
}

// median takes each figure's median over the runs on its own.
func median(ms []measurement) measurement {
	pick := func(f func(measurement) int64) int64 {
		v := make([]int64, len(ms))
		for i, m := range ms {
			v[i] = f(m)
		}
		return benchnode.Median(v)
	}
	out := ms[0]
	out.Step = time.Duration(pick(func(m measurement) int64 { return int64(m.Step) }))
	out.wall = time.Duration(pick(func(m measurement) int64 { return int64(m.wall) }))
	out.rss = pick(func(m measurement) int64 { return m.rss })
	return out
}
