package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/e2e/bench/internal/benchnode"
	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/internal/scaletopo"
)

// Waits of the live mode: the quiet time after a pass before the next
// step (the events of the daemon's own changes bring further passes, and
// its RSS settles), and the longest first pass and edit pass.
const (
	settle       = 2 * time.Second
	firstTimeout = 10 * time.Minute
	editTimeout  = 2 * time.Minute
)

// liveRow is one row of the live table.
type liveRow struct {
	name      string
	took      time.Duration // the pass's (median)
	read      time.Duration // of which reading and loading the file
	rss, hwm  int64         // the daemon's VmRSS and VmHWM after it
	changes   int
	samples   int
	goalOfRow string
}

func runLive(ctx context.Context, sizes []int, runs int, logs string) error {
	tmp, err := os.MkdirTemp("", "nrcluster-live-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "netreconcile")
	if err := benchnode.BuildBinary(ctx, bin); err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "nodes\tpass\ttime\tread+load\tVmRSS\tVmHWM\tchanges\tgoal at 1000 nodes\t\n")
	var failed []int
	for _, n := range sizes {
		l := &liveNode{bin: bin, id: benchnode.RandID("nrc"), dir: filepath.Join(tmp, strconv.Itoa(n))}
		rows, err := l.measure(ctx, n, runs)
		l.cleanup()
		if logs != "" {
			keepLog(filepath.Join(l.dir, "watch.log"), filepath.Join(logs, fmt.Sprintf("watch-%d.log", n)))
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil { // shown, and the next size still runs
			fmt.Fprintf(os.Stderr, "%d nodes live: %v\n", n, err)
			failed = append(failed, n)
			rows = []liveRow{{name: "FAILED: " + benchnode.Clip(strings.ReplaceAll(err.Error(), "\n", " "), 150)}}
		}
		fmt.Fprintf(w, "%d\t\t\t\t\t\t\t\t\n", n)
		for _, r := range rows {
			name := r.name
			if r.samples > 1 {
				name = fmt.Sprintf("%s (median of %d)", name, r.samples)
			}
			took, read, changes := "", "", ""
			if r.took > 0 {
				took = benchnode.Round(r.took)
			}
			if r.read > 0 {
				read = benchnode.Round(r.read)
			}
			if r.samples > 0 {
				changes = strconv.Itoa(r.changes)
			}
			fmt.Fprintf(w, "\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, took, read, mb(r.rss), mb(r.hwm), changes, r.goalOfRow)
		}
		fmt.Fprintf(os.Stderr, "%d nodes done\n", n) // the table is aligned once, at the end
	}
	w.Flush()
	if len(failed) > 0 {
		return fmt.Errorf("live runs failed at %v nodes (see above)", failed)
	}
	return nil
}

// liveNode is one size's node: its namespace, pins, records and daemon.
type liveNode struct {
	bin, id, dir string
	file, nodeNS string
}

func (l *liveNode) pinDir() string   { return "/sys/fs/bpf/nrbench-" + l.id }
func (l *liveNode) stateDir() string { return filepath.Join(l.dir, "state") }

// args are the flags that put a command on this node.
func (l *liveNode) args(verb string) []string {
	return []string{verb, "-f", l.file, "--node", node, "--node-netns", l.nodeNS, "--state-dir", l.stateDir(),
		"--bpffs", l.pinDir(), "--log-format", "json"}
}

// measure builds the node, runs the daemon on the n-node file and makes
// the edits, runs of each kind.
func (l *liveNode) measure(ctx context.Context, n, runs int) ([]liveRow, error) {
	if err := os.MkdirAll(l.stateDir(), 0o755); err != nil {
		return nil, err
	}
	l.file = filepath.Join(l.dir, "cluster.yaml")
	base := withNetns(scaletopo.Nodes(n), l.id)
	if err := os.WriteFile(l.file, base, 0o644); err != nil {
		return nil, err
	}
	var err error
	if l.nodeNS, err = benchnode.NodeNSAddr(l.id, nodeAddr); err != nil {
		return nil, err
	}
	// No metrics listener (the port is the machine's), and no resync
	// pass landing among the edits.
	args := append(l.args("watch"), "-v", "--metrics-addr=", "--resync=-1s")
	started := time.Now()
	d, err := benchnode.StartWatch(ctx, l.bin, filepath.Join(l.dir, "watch.log"), args...)
	if err != nil {
		return nil, err
	}
	defer d.Stop()
	first, err := d.Next(ctx, "start", settle, firstTimeout)
	if err != nil {
		return nil, fmt.Errorf("first pass: %w", err)
	}
	// The daemon reads the file before its first pass (whose own
	// read+load is then nothing): the restart's time runs from the
	// process's start.
	rows := []liveRow{{name: "restart: start to first pass logged", took: first.Seen.Sub(started)},
		{name: "first pass (50 pods, every service)", took: first.Took(), changes: first.Changes, samples: 1}}
	if rows[1].rss, rows[1].hwm, err = benchnode.Memory(d.Pid()); err != nil {
		return nil, err
	}
	edits, err := l.edit(ctx, d, base, runs)
	if err != nil {
		return nil, err
	}
	rows = append(rows, edits...)
	after := liveRow{name: "after the edits", goalOfRow: fmt.Sprintf("VmRSS < %d MB", goalDaemonRSS>>20)}
	if after.rss, after.hwm, err = benchnode.Memory(d.Pid()); err != nil {
		return nil, err
	}
	return append(rows, after), nil
}

// edit writes the edits, runs times each, and returns a row for each
// kind with its median pass.
func (l *liveNode) edit(ctx context.Context, d *benchnode.Daemon, base []byte, runs int) ([]liveRow, error) {
	kinds := []string{"pod added on n0", "pod removed on n0", "label of a pod on n1"}
	steps := []struct {
		kind int
		data []byte
	}{{0, withPod(base, l.id+"-added")}, {1, base}, {2, relabelled(base)}, {2, base}}
	passes := make([][]benchnode.Pass, len(kinds))
	for range runs {
		for _, s := range steps {
			if err := benchnode.ReplaceFile(l.file, s.data); err != nil {
				return nil, err
			}
			p, err := d.Next(ctx, "file", settle, editTimeout)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", kinds[s.kind], err)
			}
			passes[s.kind] = append(passes[s.kind], p)
		}
	}
	var rows []liveRow
	for k, ps := range passes {
		var took, read []time.Duration
		var changes []int
		for _, p := range ps {
			took, read, changes = append(took, p.Took()), append(read, readTime(p)), append(changes, p.Changes)
		}
		rows = append(rows, liveRow{name: kinds[k], took: benchnode.Median(took), read: benchnode.Median(read),
			changes: benchnode.Median(changes), samples: len(ps), goalOfRow: "< " + goalEdit.String()})
	}
	return rows, nil
}

func readTime(p benchnode.Pass) time.Duration {
	d, _ := time.ParseDuration(p.ReadFile)
	return d
}

// cleanup removes what the node's run made, whatever it reached:
// netreconcile's objects (destroy), then by name the pods' namespaces,
// the node namespace and the pins.
func (l *liveNode) cleanup() {
	if l.nodeNS == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, l.bin, l.args("destroy")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cleanup: destroy: %v\n%s\n", err, benchnode.Tail(string(out), 10))
	}
	for j := range 50 { // n0's pods are p0-p49
		deleteIfThere(fmt.Sprintf("%s-p%d", l.id, j))
	}
	deleteIfThere(l.id + "-added")
	if err := nsutil.Delete(l.nodeNS); err != nil {
		fmt.Fprintln(os.Stderr, "cleanup:", err)
	}
	if err := datapath.Destroy(l.pinDir()); err != nil {
		fmt.Fprintln(os.Stderr, "cleanup:", err)
	}
}

func deleteIfThere(name string) {
	if nsutil.Exists(name) {
		if err := nsutil.Delete(name); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup:", err)
		}
	}
}

// keepLog copies a daemon's log out of the run's directory, which is
// removed at the end (-logs: the passes' phases are in it at -v).
func keepLog(from, to string) {
	b, err := os.ReadFile(from)
	if err == nil {
		err = os.WriteFile(to, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "keep log:", err)
	}
}
