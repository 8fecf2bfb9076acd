package cli

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/daemon"
	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
)

// defaultMetricsAddr is loopback: metrics say what the node runs, and
// nothing outside the host needs them unless the operator says so.
const defaultMetricsAddr = "127.0.0.1:9403"

// daemonMemoryLimit is the floor of the watch daemon's soft memory limit:
// at the scale node it keeps peak RSS near 90 MB.
const daemonMemoryLimit = 80 << 20

// daemonGCPercent is the watch daemon's GOGC (see watchCmd).
const daemonGCPercent = 150

func watchCmd(g *globals) *cobra.Command {
	var files []string
	var node, metricsAddr string
	cfg := daemon.Config{}
	cmd := &cobra.Command{
		Use:   "watch -f FILE",
		Short: "Run as a daemon: apply, then follow the file and repair drift (systemd notify, Prometheus metrics)",
		Long: `Apply the file, then converge again whenever the file changes, the kernel state
netreconcile owns drifts (links, addresses, routes, neighbours in the node and pod
namespaces), on SIGHUP, and every --resync. An etcd://HOST:PORT/PREFIX source is
followed with etcd's watch from the revision read. An invalid or missing file, or an
unreachable etcd, is logged and the last good one is kept. SIGTERM/SIGINT stop the daemon and leave the datapath in
place; the next start adopts it without recreating anything.

Under systemd (Type=notify) it sends READY=1, RELOADING=1, STOPPING=1, STATUS= and,
when WatchdogSec= is set, WATCHDOG=1 keep-alives. See examples/systemd/.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Catch SIGHUP before anything else: its default action
			// would end the process.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			parser, err := g.checkWatched(files, node)
			if err != nil {
				return err
			}
			unlock, err := g.lockNode(cmd, node)
			if err != nil {
				return err
			}
			defer unlock()
			cfg.MemoryFloor = daemonMemory()
			set, err := g.openSet(files)
			if err != nil {
				return err
			}
			defer set.Close()
			cfg.Files, cfg.Source = files, set
			cfg.MaxFileSize, cfg.Node, cfg.NodeNetns, cfg.MetricsAddr = int64(g.maxFileSize), node, g.nodeNetns, metricsAddr
			cfg.Control = g.controlPath(node)
			cfg.NewEngine = func() *reconcile.Engine { return g.engine(node) }
			cfg.Log = g.log.WithValues("node", node)
			cfg.Reload = hup
			// The parser goes in a copy: cfg, which the flags hold, would
			// keep it (and the model it read) alive as long as the process.
			run := cfg
			run.Parser = parser
			return daemon.Run(cmd.Context(), run)
		},
	}
	fileFlag(cmd, &files)
	nodeFlag(cmd, &node)
	f := cmd.Flags()
	f.StringVar(&metricsAddr, "metrics-addr", defaultMetricsAddr, "listen address of /metrics, /healthz and /readyz (empty: none)")
	f.DurationVar(&cfg.Resync, "resync", daemon.DefaultResync, "full pass after this long without one (negative: never)")
	f.DurationVar(&cfg.FileDebounce, "debounce", daemon.DefaultFileDebounce, "quiet time after a file change before reading it")
	f.DurationVar(&cfg.KernelDebounce, "drift-debounce", daemon.DefaultKernelDebounce, "time to gather a burst of kernel events before repairing")
	lockFlag(cmd)
	return cmd
}

// checkWatched reads the set before watch waits for the node's lock, so
// that a missing or invalid file is reported at once. The daemon's first
// read reuses the parser's decoded items.
func (g *globals) checkWatched(files []string, node string) (*spec.Parser, error) {
	if spec.Files(files).Stdin() {
		return nil, fmt.Errorf("watch -f -: standard input cannot be watched; give a file or directory path")
	}
	var parser spec.Parser
	srcs, err := g.sources(files)
	if err != nil {
		return nil, err
	}
	r, _, err := parser.Load(srcs)
	if err != nil {
		return nil, err
	}
	if r.Node(node) == nil {
		return nil, fmt.Errorf("node %q is not in %s", node, strings.Join(files, ", "))
	}
	return &parser, nil
}

// daemonMemory sets the daemon's collector and returns the floor of its
// memory limit (daemon.Config.MemoryFloor; 0 when GOGC or GOMEMLIMIT,
// set by the operator, decide).
//
// The daemon allocates in bursts: a pass at the scale node allocates
// about as much as it keeps (30-35 MB). It collects when a file change
// arrives (see daemon.schedule), and GOGC=150 then lets the pass run
// without collecting; a memory limit bounds the full passes (start,
// resync), which allocate several times more. At the scale node this took
// 3-5 ms off a pass and 3 MB off peak RSS (against GOGC=100 alone);
// GOGC=50 saved 10 MB of RSS but cost 10 ms of every pass. The limit
// follows what the daemon keeps (three times it, daemon.FitMemoryLimit),
// never under daemonMemoryLimit: a fixed 80 MiB made a 1000-node file's
// passes collect without end.
func daemonMemory() int64 {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	debug.SetGCPercent(daemonGCPercent)
	daemon.FitMemoryLimit(daemonMemoryLimit)
	return daemonMemoryLimit
}
