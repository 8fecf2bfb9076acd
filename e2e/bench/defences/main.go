// Command defences measures what the datapath's defences against hostile
// pods cost (issue 14: source binding, non-IPv4 dropped, fragments
// tracked, every protocol judged, conntrack with lifetimes, per-source
// shares and an in-kernel collector), and prints one table with the
// figures and the goals:
//
//   - with vs without the defences: single-stream TCP throughput (iperf3)
//     pod -> pod IP and pod -> clusterIP, and new TCP connections per
//     second to each, on one node with veth pods, a clusterIP service and
//     a policy that isolates the server and allows the client (so policy
//     is judged). "Without" is the binary of commit 020c136, the release
//     before the defences, built from git history; "with" is the binary
//     of the working tree. Goal: with/without >= 0.97.
//   - clusterIP vs pod IP with the defences on: iperf3 alternated pod IP,
//     clusterIP, pod IP, ... (-pairs, at least 5); median of each, ratio
//     of the medians and median of the per-pair ratios. Goal >= 0.97.
//   - a diagnostic beside the goals: the new-connection rates with the
//     defences and the per-source conntrack share raised to the table
//     size (datapath.SetConfig after apply), which tells the per-packet
//     cost apart from a client running out of its share (a short
//     connection holds two entries per table for 10 to 20 s after its
//     FIN: lifetime plus the collector's interval).
//   - the conntrack collector's walk at 100000 entries (half expired, and
//     none), from BenchmarkConntrackGC in package datapath (go test).
//
// Run it from the repository root of a clone with history (020c136 must
// be reachable), as root:
//
//	sudo go run ./e2e/bench/defences [-rounds 5] [-pairs 7] [-t 5] [-d 3s] [-gc=true] [-timeout 30m]
//
// and the collector's benchmark alone:
//
//	sudo go test -run '^$' -bench ConntrackGC -benchtime 5x ./datapath/
//
// Fairness. Both releases are applied in turn to the same lab node (one
// node namespace from lab up, kept for the whole run): apply, measure,
// destroy, then the other release. Each release has its own state and pin
// directories, so neither reads the other's records or maps, and destroy
// must leave no pod namespace and no pin behind (checked), so every
// measurement starts from the same bare node: fresh pod namespaces and
// veths (no TIME_WAIT or neighbour state carried over), empty conntrack.
// One lab rather than two keeps everything but the binary identical (the
// same namespace, names, addresses and interface layout); the order
// within a round alternates (without, with; then with, without; ...) so
// that a slow spell of the shared machine or a trend over the run hits
// both alike, and the ratio of each round compares two neighbouring
// measurements. Figures: medians over the rounds, and the median of the
// per-round ratios (the one the goal is judged on).
//
// Everything lives in namespaces named after a random id (nrlab-db<hex>n,
// db<hex>-client, db<hex>-server), in /sys/fs/bpf/nrbench-db<hex> and a
// temporary directory, all removed at the end, also on error, on timeout
// and on SIGINT or SIGTERM. iperf3 is installed with apt-get when missing.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/netreconcile/netreconcile/e2e/bench/internal/benchnode"
)

type config struct {
	rounds, pairs, secs int
	dur, timeout        time.Duration
	gc                  bool
}

func main() {
	var c config
	flag.IntVar(&c.rounds, "rounds", 5, "rounds of with vs without (each round measures both)")
	flag.IntVar(&c.pairs, "pairs", 7, "pod IP / clusterIP pairs with the defences on (at least 5)")
	flag.IntVar(&c.secs, "t", 5, "seconds per iperf3 run")
	flag.DurationVar(&c.dur, "d", 3*time.Second, "duration of each new-connection measurement")
	flag.BoolVar(&c.gc, "gc", true, "run BenchmarkConntrackGC (go test) for the collector's rows")
	flag.DurationVar(&c.timeout, "timeout", 30*time.Minute, "bound on the whole run")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "the defences bench needs root (it builds namespaces and loads BPF)")
		os.Exit(1)
	}
	if c.rounds < 1 || c.rounds > 21 || c.pairs < 5 || c.pairs > 21 || c.secs < 1 || c.secs > 60 ||
		c.dur < 100*time.Millisecond || c.dur > time.Minute || c.timeout < time.Minute {
		fmt.Fprintln(os.Stderr, "-rounds must be 1..21, -pairs 5..21, -t 1..60, -d 100ms..1m, -timeout at least 1m")
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := runBench(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// shareRaised is the per-source conntrack share of the diagnostic
// release: the size of each table, so that no single source is limited
// by its share.
const shareRaised = 131072

type bench struct {
	cfg     config
	lab     *lab
	without *release
	with    *release
	shared  *release // with, the per-source share raised (diagnostic)
	applied *release // what the node carries now, for the cleanup
	rows    []row
}

func runBench(ctx context.Context, cfg config) error {
	if err := benchnode.EnsureTools(ctx, map[string]string{"iperf3": "iperf3"}); err != nil {
		return err
	}
	root, err := repoRoot(ctx)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "nr-defences-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	id := benchnode.RandID("db")
	pinRoot := "/sys/fs/bpf/nrbench-" + id
	defer os.RemoveAll(pinRoot) // after destroy and lab down: what they left
	b := &bench{cfg: cfg, lab: &lab{id: id, dir: tmp, stateDir: filepath.Join(tmp, "state-lab"), pinRoot: pinRoot}}
	mk := func(name, about, bin string) *release {
		return &release{name: name, about: about, bin: filepath.Join(tmp, bin),
			stateDir: filepath.Join(tmp, "state-"+name), pinDir: filepath.Join(pinRoot, name)}
	}
	b.without = mk("without", oldCommit, "netreconcile-"+oldCommit)
	b.with = mk("with", "this tree", "netreconcile")
	b.shared = mk("with-share", "this tree", "netreconcile")
	b.shared.share = shareRaised
	b.lab.labBin = b.with.bin
	fmt.Fprintf(os.Stderr, "building %s and this tree ... ", oldCommit)
	if err := buildCommit(ctx, root, oldCommit, filepath.Join(tmp, "src-"+oldCommit), b.without.bin); err != nil {
		return err
	}
	if err := buildTree(ctx, root, b.with.bin); err != nil {
		return err
	}
	if err := b.lab.writeFiles(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "lab %s ", id)
	defer b.lab.down()
	if err := b.lab.up(ctx); err != nil {
		return err
	}
	defer b.cleanup()
	start := time.Now()
	if err := b.defences(ctx); err != nil {
		return err
	}
	if err := b.clusterIP(ctx); err != nil {
		return err
	}
	if cfg.gc {
		if err := b.collector(ctx, root, pinRoot); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, " done in %v\n", time.Since(start).Round(time.Second))
	b.print()
	return nil
}

// cleanup destroys what a release left applied (an error or a signal in
// the middle of a measurement).
func (b *bench) cleanup() {
	if b.applied == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := b.lab.destroy(ctx, b.applied); err != nil {
		fmt.Fprintln(os.Stderr, "cleanup:", err)
	}
}
