// Command cluster measures one node's work in cluster-sized files (issue
// 18): scaletopo.Nodes of 100, 1000 and 5000 nodes (50 veth pods per
// node, a service per 5 pods, 2 policies per namespace), each written as
// one file, through the product's own paths. Figures are medians of -runs;
// compare them within one run (the machine is shared and noisy).
//
// Offline (no privilege, no kernel state), each row -runs times in a child
// process whose wall time and peak RSS (wait4's rusage) are shown:
//
//   - validate: `netreconcile validate -f FILE`;
//   - plan from scratch: `netreconcile plan -f FILE --node n0 --observed
//     empty` (a fresh --state-dir: no parse cache);
//   - no-op plan: the same with `--observed FILE.json`, node n0 converged
//     (show -o json's format, written from reconcile.Desired);
//   - one-pod edit (offline): in this program's child, a spec.Parser that
//     loaded the file and a plan of it against the converged node (as the
//     watch daemon's pass does), then the file again with a pod added on
//     n0, loaded through the same Parser and planned with what the first
//     plan carried (desired.NewSharedFrom); the time is that read, load
//     and plan (the child's RSS includes the first load and plan).
//     -cpuprofile and -memprofile profile this row.
//
// Live (-live, root): for each size, a node namespace whose uplink eth0
// carries n0's address, and `netreconcile watch -f FILE --node n0` on it
// (its own --state-dir, pins below /sys/fs/bpf/nrbench-<id>, n0's pods in
// namespaces nrc<id>-p<j>). It shows a node's restart: the time from the
// daemon's start to its first pass logged (reading the file included)
// and that pass's own (its 50 pods and every service), the daemon's
// VmRSS 2 s after it and VmHWM; then the median "reconciled" pass of edits made as an editor
// makes them (a new file renamed over the old): a pod added on n0, the
// pod removed, a label of a pod on n1 changed and back (its services'
// backends change on every node), each -runs times; then VmRSS and VmHWM
// again. A size whose daemon fails is shown as FAILED and the next size
// runs. Everything it made is removed on every exit path, interrupts
// included.
//
//	go run ./e2e/bench/cluster [-nodes 100,1000,5000] [-runs 3] [-rows validate,plan,noop,edit]
//	go run ./e2e/bench/cluster -nodes 1000 -rows edit -runs 1 -cpuprofile /tmp/edit.pprof
//	sudo go run ./e2e/bench/cluster -live [-nodes 100,1000] [-runs 3] [-logs DIR]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/netreconcile/netreconcile/e2e/bench/internal/benchnode"
)

// Goals of issue 18 at 1000 nodes.
const (
	goalPlan      = time.Second
	goalPlanRSS   = 200 << 20
	goalEdit      = 100 * time.Millisecond
	goalDaemonRSS = 150 << 20
)

func main() {
	nodes := flag.String("nodes", "100,1000,5000", "cluster sizes, in nodes")
	rows := flag.String("rows", "validate,plan,noop,edit", "offline rows to run")
	runs := flag.Int("runs", 3, "runs of each row, and edits of each kind live (the median is shown)")
	live := flag.Bool("live", false, "run netreconcile watch on a node namespace (root) instead of the offline rows")
	child := flag.String("child", "", "internal: run this step on -file and print its result")
	file := flag.String("file", "", "internal: the cluster file")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the in-process row's own work here (one size)")
	memprofile := flag.String("memprofile", "", "write a heap profile after the in-process row's own work here (one size)")
	logs := flag.String("logs", "", "live: copy each size's watch log (-v, JSON) to DIR/watch-<nodes>.log")
	flag.Parse()
	if *child != "" {
		if err := runChild(*child, *file, *cpuprofile, *memprofile); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
		return
	}
	sizes, err := parseSizes(*nodes)
	if err == nil && *runs < 1 {
		err = fmt.Errorf("-runs %d: at least 1", *runs)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	if *live {
		benchnode.RequireRoot("cluster -live")
		benchnode.Run(func(ctx context.Context) error { return runLive(ctx, sizes, *runs, *logs) })
		return
	}
	benchnode.Run(func(ctx context.Context) error {
		return runOffline(ctx, sizes, strings.Split(*rows, ","), *runs, *cpuprofile, *memprofile)
	})
}

func parseSizes(list string) ([]int, error) {
	var sizes []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 || n > 16000 {
			return nil, fmt.Errorf("bad size %q: 2 to 16000 nodes", s)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}

// mb formats a byte count in MB (MiB).
func mb(n int64) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf("%.0f MB", float64(n)/(1<<20))
}
