package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
)

// Config says what a daemon watches and how it behaves. Zero durations
// take the defaults below.
type Config struct {
	// Files is the topology's -f set: files and directories (followed
	// through inotify on their directories) and store prefixes (such as
	// etcd://HOST:PORT/PREFIX, followed through the store's watch), never
	// standard input.
	Files []string
	// Source is Files opened (spec.OpenSet); nil reads Files as paths.
	// Its Watchers are followed; the caller closes it after Run.
	Source spec.Set
	// MaxFileSize bounds each file and the set (--max-file-size; 0:
	// spec.DefaultMaxFileSize).
	MaxFileSize int64
	Node        string // node of the file to converge
	NodeNetns   string // the node's namespace reference ("" = the current one)
	// NewEngine returns the engine of one pass. Run adds the pass's
	// reconcile ID to its logger.
	NewEngine func() *reconcile.Engine
	Log       logr.Logger
	Metrics   *Metrics  // nil: NewMetrics()
	Notifier  *Notifier // nil: a new one (a no-op without NOTIFY_SOCKET)
	// MetricsAddr is the listen address of /metrics, /healthz and
	// /readyz; "" serves nothing.
	MetricsAddr string
	// Reload receives SIGHUP: re-read the file and converge, whether or
	// not the file changed.
	Reload <-chan os.Signal
	// Control is the path of the control socket apply reaches the daemon
	// through (see control.go); "" listens on none.
	Control string
	// MemoryFloor, when set, makes the daemon fit its soft memory limit
	// to what it keeps after every pass that read a new file
	// (FitMemoryLimit), never under MemoryFloor; 0 leaves the limit alone
	// (GOMEMLIMIT set by the operator).
	MemoryFloor int64
	// Parser, when set, is the parser that already read the file set (the
	// watch command's check): the daemon's first read reuses its items.
	Parser *spec.Parser

	Resync         time.Duration // full pass after this long without one; negative: never
	FileDebounce   time.Duration // quiet time after the last file event before reading it
	KernelDebounce time.Duration // gathering time after the first kernel event of a burst
	MaxDelay       time.Duration // a file that never stops changing is still read this often
	StopGrace      time.Duration // how long a pass in flight at SIGTERM may go on
	PassTimeout    time.Duration // a pass running longer stops the watchdog keep-alives
	MaxBackoff     time.Duration // longest wait before retrying a failed pass
}

// Defaults.
const (
	DefaultResync         = 5 * time.Minute
	DefaultFileDebounce   = 200 * time.Millisecond
	DefaultKernelDebounce = 20 * time.Millisecond
	DefaultMaxDelay       = 2 * time.Second
	DefaultStopGrace      = 10 * time.Second
	DefaultPassTimeout    = 5 * time.Minute
	DefaultMaxBackoff     = time.Minute
	minBackoff            = time.Second
	dirRetry              = time.Second
)

func (c *Config) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&c.Resync, DefaultResync)
	set(&c.FileDebounce, DefaultFileDebounce)
	set(&c.KernelDebounce, DefaultKernelDebounce)
	set(&c.MaxDelay, DefaultMaxDelay)
	set(&c.StopGrace, DefaultStopGrace)
	set(&c.PassTimeout, DefaultPassTimeout)
	set(&c.MaxBackoff, DefaultMaxBackoff)
	if c.Metrics == nil {
		c.Metrics = NewMetrics()
	}
	if c.Notifier == nil {
		c.Notifier = &Notifier{}
	}
}

// ErrFile is wrapped by start-up errors about the file: without a valid
// file there is no last good state to serve.
var ErrFile = errors.New("topology file")

// daemon composes the concerns of the watch loop, each in its own file:
// the file followed (file.go), the directories watched for it and for
// namespace names (dirs.go), kernel events and the observation cache
// (events.go, kernel.go), when passes run (schedule.go), what they
// achieved (health.go), and the control socket (control.go). The loop
// (loop.go) routes events between them; a pass (pass.go) uses them all.
type daemon struct {
	Config
	m      *Metrics
	n      *Notifier
	file   *topoFile
	dirs   *dirWatch
	kernel *kernelEvents
	sched  *scheduler
	health *health
	ctl    *control
	board  *statusBoard
	store  *storeWatch
	// carried is what the last pass computed from its file that the next
	// may keep (reconcile.NewSharedFrom): the services' backend lists and
	// the policies' class table (about 4-6 MB of heap at 1000 nodes).
	carried *reconcile.Shared
	// echoTrim says the next pass hands memory back too: it answers the
	// kernel events of what a new file's pass applied, and allocates
	// again what that pass's trim returned.
	echoTrim bool
}

// Run loads the file, applies it, and then converges again on every
// change of the file, of the kernel state in the watched namespaces, on
// SIGHUP and every Resync, until ctx ends. It returns an error only when
// it cannot start: the file is missing or invalid (wrapping ErrFile), or
// the metrics address or file watch cannot be set up. Failed passes are
// logged and retried; they never end the daemon. On return the kernel
// state is left as it is: a later Run adopts it.
func Run(ctx context.Context, cfg Config) error {
	cfg.defaults()
	d := newDaemon(cfg)
	// The file's parser is a copy of cfg.Parser (newTopoFile): a reference
	// left here would keep the model it held at start alive all along (the
	// whole of a cluster's file, twice over).
	cfg.Parser, d.Parser = nil, nil
	if err := d.file.open(); err != nil {
		return err
	}
	d.m.Info.WithLabelValues(cfg.Node, strings.Join(cfg.Files, ",")).Set(1)
	d.file.serveDatapath(cfg.NewEngine().Cfg.BPFFS)

	if cfg.MetricsAddr != "" {
		stop, err := serveHTTP(cfg.MetricsAddr, d.health.handler(d.m.Registry))
		if err != nil {
			return err
		}
		defer stop()
	}
	if cfg.Control != "" {
		ln, err := listenControl(cfg.Control)
		if err != nil {
			return err
		}
		defer ln.Close() // removes the socket
		go d.ctl.serve(ctx, ln)
	}
	var err error
	if d.dirs, err = newDirWatch(d.file.set.Paths(), d.m, d.Log); err != nil {
		return fmt.Errorf("watch %s: %w", strings.Join(cfg.Files, ", "), err)
	}
	defer d.dirs.close()
	d.kernel = newKernelEvents(d.m, cfg.NodeNetns)
	defer d.kernel.close()

	// Passes are not cut short the moment a signal arrives: a pass in
	// flight gets StopGrace to finish (apply is safe to interrupt between
	// steps, but a finished pass leaves less for the next start to do).
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	stopAfter := context.AfterFunc(ctx, func() { time.AfterFunc(cfg.StopGrace, cancelRun) })
	defer stopAfter()

	if iv := WatchdogInterval(); iv > 0 {
		go d.health.watchdog(ctx, iv, d.n)
	}
	d.Log.Info("watching", "files", cfg.Files, "nodeNetns", cfg.NodeNetns,
		"resync", cfg.Resync.String(), "metrics", cfg.MetricsAddr)
	// Subscribe before the first pass, so that nothing changed during it
	// goes unseen; a store is watched from the revision open read.
	d.syncWatches(d.Log)
	d.store = watchStores(ctx, d.file.set.Watchers())
	defer d.store.wait()
	d.pass(runCtx, tStart)
	d.n.Ready(d.status())
	return d.loop(ctx, runCtx)
}

// newDaemon makes the parts that need no I/O; Run sets up the watches.
func newDaemon(cfg Config) *daemon {
	m := cfg.Metrics
	board := &statusBoard{}
	set := cfg.Source
	if set == nil {
		set = spec.Set{spec.Files(cfg.Files)}
	}
	return &daemon{
		Config: cfg, m: m, n: cfg.Notifier,
		file:   newTopoFile(cfg, set, m),
		sched:  newScheduler(cfg),
		health: &health{timeout: cfg.PassTimeout, gauge: m.Ready},
		ctl:    newControl(cfg.Files, board),
		board:  board,
	}
}

// serveHTTP serves h on addr until stop is called.
func serveHTTP(addr string, h http.Handler) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}, nil
}
