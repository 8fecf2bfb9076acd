// Command cluster measures one node's work in cluster-sized files (issue
// 18): scaletopo.Nodes of 100, 1000 and 5000 nodes (50 veth pods per
// node, a service per 5 pods, 2 policies per namespace). For each size and
// row it runs itself as a child process -runs times and reports the
// median of the row's own time, of the child's whole run (reading and
// resolving the file included) and of its peak RSS (wait4's rusage):
//
//   - validate: read, decode and resolve the file, check every node's map
//     capacity (what `netreconcile validate` does);
//   - plan from scratch: node n0 against an empty node (`plan --node n0
//     --observed empty`), the plan's text rendered;
//   - no-op plan: n0 against a node holding exactly what it wants (the
//     observation standing in for the kernel is built before the timing,
//     from the desired state through its JSON form, and is in the RSS);
//   - one-pod edit: the work of a watch pass for a pod added on n0,
//     without the kernel: the edited topology resolved again and planned
//     against the converged node (the daemon's parser decodes only the
//     edited item; that saving is not in this row).
//
// Files over the parser's 4 MiB limit are cut into documents
// (scaletopo.Split) written to a temporary directory; the child parses
// each and resolves them as one (join.Join).
//
//	go run ./e2e/bench/cluster [-nodes 100,1000,5000] [-runs 3] [-rows validate,plan,noop,edit]
//	go run ./e2e/bench/cluster -nodes 1000 -rows plan -runs 1 -cpuprofile /tmp/plan.pprof
//
// It needs no privilege and touches no kernel state.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/netreconcile/netreconcile/e2e/bench/internal/benchnode"
	"github.com/netreconcile/netreconcile/internal/scaletopo"
)

// Goals of issue 18 at 1000 nodes.
const (
	goalPlan = time.Second
	goalRSS  = 200 << 20
	goalEdit = 100 * time.Millisecond
)

// partSize keeps every document under the parser's limit.
const partSize = 3 << 20

var rowNames = map[string]string{
	"validate": "validate", "plan": "plan from scratch", "noop": "no-op plan", "edit": "one-pod edit (resolve + plan)",
}

func main() {
	nodes := flag.String("nodes", "100,1000,5000", "cluster sizes, in nodes")
	rows := flag.String("rows", "validate,plan,noop,edit", "rows to run")
	runs := flag.Int("runs", 3, "runs of each row (the median is shown)")
	child := flag.String("child", "", "internal: run this row on -dir and print its result")
	dir := flag.String("dir", "", "internal: the directory of the file's parts")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the row's own work here (one size and row)")
	memprofile := flag.String("memprofile", "", "write a heap profile after the row's own work here (one size and row)")
	flag.Parse()
	if *child != "" {
		if err := runChild(*child, *dir, *cpuprofile, *memprofile); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*nodes, *rows, *runs, *cpuprofile, *memprofile); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// result is what a child reports of its row.
type result struct {
	Step    time.Duration `json:"step"`    // the row's own work
	Objects int           `json:"objects"` // desired objects of the node
	Changes int           `json:"changes"` // changes planned
}

// measurement is one child run, as the parent saw it.
type measurement struct {
	result
	wall time.Duration
	rss  int64
}

func run(nodeList, rowList string, runs int, cpuprofile, memprofile string) error {
	tmp, err := os.MkdirTemp("", "nrcluster-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "nodes\trow\tstep\tprocess\tpeak RSS\tobjects\tchanges\tgoal at 1000 nodes\t\n")
	for _, s := range strings.Split(nodeList, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 16000 {
			return fmt.Errorf("bad size %q", s)
		}
		dir := filepath.Join(tmp, s)
		size, err := writeParts(dir, n)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%d\t(%.1f MB of YAML)\t\t\t\t\t\t\t\n", n, float64(size)/1e6)
		for _, row := range strings.Split(rowList, ",") {
			if rowNames[row] == "" {
				return fmt.Errorf("unknown row %q", row)
			}
			var ms []measurement
			for range runs {
				m, err := runOnce(self, row, dir, cpuprofile, memprofile)
				if err != nil {
					return fmt.Errorf("%d nodes, %s: %w", n, row, err)
				}
				ms = append(ms, m)
			}
			m := median(ms)
			fmt.Fprintf(w, "\t%s\t%s\t%s\t%.0f MB\t%d\t%d\t%s\t\n", rowNames[row], benchnode.Round(m.Step),
				benchnode.Round(m.wall), float64(m.rss)/(1<<20), m.Objects, m.Changes, goal(row))
		}
	}
	return w.Flush()
}

func goal(row string) string {
	switch row {
	case "plan", "noop":
		return fmt.Sprintf("process < %s, < %d MB", goalPlan, goalRSS>>20)
	case "edit":
		return "step < " + goalEdit.String()
	}
	return ""
}

// writeParts writes the cluster file of n nodes, cut into documents under
// the parser's limit, and returns its size.
func writeParts(dir string, n int) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	data := scaletopo.Nodes(n)
	for i, p := range scaletopo.Split(data, partSize) {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("part%03d.yaml", i)), p, 0o644); err != nil {
			return 0, err
		}
	}
	return len(data), nil
}

// runOnce runs one row in a child and reads its peak RSS from wait4.
func runOnce(self, row, dir, cpuprofile, memprofile string) (measurement, error) {
	args := []string{"-child", row, "-dir", dir}
	if cpuprofile != "" {
		args = append(args, "-cpuprofile", cpuprofile)
	}
	if memprofile != "" {
		args = append(args, "-memprofile", memprofile)
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	start := time.Now()
	out, err := cmd.Output()
	m := measurement{wall: time.Since(start)}
	if err != nil {
		return m, err
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.rss = ru.Maxrss << 10
	}
	return m, json.Unmarshal(out, &m.result)
}

// median takes each figure's median over the runs on its own.
func median(ms []measurement) measurement {
	pick := func(f func(measurement) int64) int64 {
		v := make([]int64, len(ms))
		for i, m := range ms {
			v[i] = f(m)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	out := ms[0]
	out.Step = time.Duration(pick(func(m measurement) int64 { return int64(m.Step) }))
	out.wall = time.Duration(pick(func(m measurement) int64 { return int64(m.wall) }))
	out.rss = pick(func(m measurement) int64 { return m.rss })
	return out
}
