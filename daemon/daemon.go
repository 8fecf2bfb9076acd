package daemon

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// Config says what a daemon watches and how it behaves. Zero durations
// take the defaults below.
type Config struct {
	File      string // the topology file (a path: watched through its directory)
	Node      string // node of the file to converge
	NodeNetns string // the node's namespace reference ("" = the current one)
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

// trigger is a set of reasons for a pass.
type trigger uint16

const (
	tStart trigger = 1 << iota
	tReload
	tFile
	tKernel
	tRetry
	tResync
	tDirs     // not a pass: retry watching directories that were missing
	tApply    // apply asked through the control socket: read the file and converge at once
	nTriggers = 8
)

// label names the main reason of a pass, for metrics and logs.
func (t trigger) label() string {
	switch {
	case t&tStart != 0:
		return TriggerStart
	case t&tReload != 0:
		return TriggerReload
	case t&tApply != 0:
		return TriggerApply
	case t&tFile != 0:
		return TriggerFile
	case t&tKernel != 0:
		return TriggerKernel
	case t&tRetry != 0:
		return TriggerRetry
	}
	return TriggerResync
}

// File states, as the status line shows them.
const (
	fileOK         = "ok"
	fileInvalid    = "invalid"
	fileMissing    = "missing"
	fileUnreadable = "unreadable"
)

type daemon struct {
	Config
	m  *Metrics
	n  *Notifier
	kw *kernelWatcher
	fw *fsnotify.Watcher

	pinDir string // the node's datapath pin directory (the engines')

	// The file: the last good model and the sums of what was read.
	spec      *spec.Resolved
	parser    spec.Parser      // reuses the unchanged items of the last file read
	cache     *reconcile.Cache // observations kept between passes; kernel events invalidate them
	specSum   [32]byte         // of the last good content (the one served)
	readSum   [32]byte         // of the last content read, good or not
	fileState string
	fileErr   error             // why the last content read is not served (fileState not ok)
	fileDirs  map[string]bool   // directories whose events may mean "read the file again" ...
	fileNames map[string]bool   // ... when about these names (or a ConfigMap's "..*")
	nsPaths   map[string]string // watched namespace path -> key
	dirs      map[string]bool   // directories watched now
	dirsLost  bool              // some wanted directory could not be watched

	// Outcome of passes.
	converged    bool     // the last pass converged ...
	convergedSum [32]byte // ... to this file content
	lastErr      error
	started      bool
	managed      int
	drifts       int
	backoff      time.Duration
	ready        atomic.Bool
	passStart    atomic.Int64 // unix nanoseconds of the pass in flight, 0 when idle

	// Scheduling, owned by the loop goroutine.
	pending     trigger
	due         [nTriggers]time.Time
	firstFile   time.Time // first file event of the pending batch
	kernelFirst time.Time // first kernel event not yet handled by a pass
	timer       *time.Timer

	// Kernel events arrive from the subscriptions' goroutines.
	mu      sync.Mutex
	inFirst time.Time
	inKinds map[string]int // "ns/kind" -> count since the last drain
	wake    chan struct{}
	// events counts, by namespace and kind, the kernel events the next
	// pass answers (for its log line).
	events map[string]int

	ctl     chan ctlReq         // requests from the control socket
	waiters []chan ControlReply // requests the next pass answers
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
	d := &daemon{Config: cfg, m: cfg.Metrics, n: cfg.Notifier, wake: make(chan struct{}, 1), ctl: make(chan ctlReq),
		dirs: map[string]bool{}, timer: time.NewTimer(time.Hour), cache: reconcile.NewCache()}
	d.timer.Stop()
	if cfg.File == "" || cfg.File == "-" {
		return fmt.Errorf("%w: watch needs a file path (standard input cannot be watched)", ErrFile)
	}
	data, err := spec.ReadFile(cfg.File)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFile, err)
	}
	r, err := d.parser.Load(cfg.File, data)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFile, err)
	}
	if r.Node(cfg.Node) == nil {
		return fmt.Errorf("%w %s: node %q is not in the file (nodes: %s)", ErrFile, cfg.File, cfg.Node, nodeNames(r))
	}
	d.spec, d.specSum, d.readSum, d.fileState = r, sha256.Sum256(data), sha256.Sum256(data), fileOK
	d.m.ConfigOK.Set(1)
	d.m.Info.WithLabelValues(cfg.Node, cfg.File).Set(1)
	d.pinDir = cfg.NewEngine().Cfg.BPFFS
	d.m.datapath.set(d.pinDir, reconcile.PodNames(r), d.Log)

	var srv *http.Server
	if cfg.MetricsAddr != "" {
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		srv = &http.Server{Handler: d.handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = srv.Shutdown(sctx)
			cancel()
		}()
	}
	if cfg.Control != "" {
		ln, err := listenControl(cfg.Control)
		if err != nil {
			return err
		}
		defer ln.Close() // removes the socket
		go d.serveControl(ctx, ln)
	}
	// Buffered: a pass that creates a thousand pod namespaces queues a
	// thousand events while the loop is busy applying.
	if d.fw, err = fsnotify.NewBufferedWatcher(4096); err != nil {
		return fmt.Errorf("watch %s: %w", cfg.File, err)
	}
	defer d.fw.Close()
	d.kw = newKernelWatcher(d.onKernel)
	defer d.kw.close()

	// Passes are not cut short the moment a signal arrives: a pass in
	// flight gets StopGrace to finish (apply is safe to interrupt between
	// steps, but a finished pass leaves less for the next start to do).
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	stopAfter := context.AfterFunc(ctx, func() { time.AfterFunc(cfg.StopGrace, cancelRun) })
	defer stopAfter()

	if iv := WatchdogInterval(); iv > 0 {
		go d.watchdog(ctx, iv)
	}
	d.Log.Info("watching", "file", cfg.File, "nodeNetns", cfg.NodeNetns,
		"resync", cfg.Resync.String(), "metrics", cfg.MetricsAddr)
	// Subscribe before the first pass, so that nothing changed during it
	// goes unseen.
	d.syncWatches(d.Log)
	d.pass(runCtx, tStart)
	d.n.Ready(d.status())
	return d.loop(ctx, runCtx)
}

func (d *daemon) loop(ctx, runCtx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			d.Log.Info("stopping; pods, routes and pinned state stay in place")
			d.n.Stopping("stopping; the datapath stays in place")
			return nil
		case <-d.wake:
			d.drainKernel(time.Now())
		case ev, ok := <-d.fw.Events:
			if ok {
				d.fsEvent(ev)
				d.drainFS()
			}
		case err, ok := <-d.fw.Errors:
			if ok {
				// An inotify queue overflow loses events: read everything
				// again rather than trust what was seen.
				d.m.Errors.WithLabelValues(StageWatch).Inc()
				d.Log.Error(err, "file watch")
				d.schedule(tFile, time.Now())
				d.schedule(tKernel, time.Now())
			}
		case r := <-d.ctl:
			d.request(r, time.Now())
		case <-d.Reload:
			d.Log.Info("SIGHUP: reading the file again")
			d.n.Reloading()
			d.schedule(tReload, time.Now())
		case now := <-d.timer.C:
			d.fire(runCtx, now)
		}
	}
}

// schedule records a reason for a pass and when it is due.
func (d *daemon) schedule(t trigger, now time.Time) {
	i := idx(t)
	switch t {
	case tFile:
		// Sliding: wait for the file to be quiet, but not for ever.
		if d.pending&tFile == 0 {
			d.firstFile = now
			// The pass waits for quiet (FileDebounce) anyway: collect
			// the last pass's garbage now, rather than during the pass,
			// which allocates about as much as the daemon keeps.
			go runtime.GC()
		}
		d.due[i] = minTime(now.Add(d.FileDebounce), d.firstFile.Add(d.MaxDelay))
	case tKernel:
		// Fixed from the first event: a burst is gathered, then repaired.
		if d.pending&tKernel == 0 {
			d.due[i] = now.Add(d.KernelDebounce)
		}
		d.due[i] = d.notBeforeRetry(d.due[i])
	case tResync:
		if d.Resync < 0 {
			return
		}
		d.due[i] = d.notBeforeRetry(now.Add(d.Resync))
	case tRetry:
		d.due[i] = now.Add(d.backoff)
	case tDirs:
		d.due[i] = now.Add(dirRetry)
	default: // start, reload: at once
		d.due[i] = now
	}
	d.pending |= t
	d.arm(now)
}

// notBeforeRetry keeps passes that nobody asked for (kernel events,
// resync) from running before a failed pass's backoff ends: a pass that
// fails half-way makes kernel events of its own.
func (d *daemon) notBeforeRetry(t time.Time) time.Time {
	if d.pending&tRetry != 0 && d.due[idx(tRetry)].After(t) {
		return d.due[idx(tRetry)]
	}
	return t
}

func (d *daemon) arm(now time.Time) {
	var next time.Time
	for t := trigger(1); t < 1<<nTriggers; t <<= 1 {
		if d.pending&t != 0 && (next.IsZero() || d.due[idx(t)].Before(next)) {
			next = d.due[idx(t)]
		}
	}
	if next.IsZero() {
		d.timer.Stop()
		return
	}
	d.timer.Reset(max(next.Sub(now), 0))
}

// fire runs what is due.
func (d *daemon) fire(ctx context.Context, now time.Time) {
	run := d.take(now)
	if run&tDirs != 0 {
		d.syncDirs()
		run &^= tDirs
	}
	if run != 0 {
		d.pass(ctx, run)
		if run&tReload != 0 {
			d.n.Ready(d.status())
		}
	}
	d.arm(time.Now())
}

// take removes from pending and returns the triggers due at now, with
// those a pass answers early: kernel events and a retry, whether or not
// they were due yet (the pass reads what they concern). The resync keeps
// its time: it is the full pass that reads what raises no event. A file
// still changing keeps its own quiet time.
func (d *daemon) take(now time.Time) trigger {
	var run trigger
	for t := trigger(1); t < 1<<nTriggers; t <<= 1 {
		if d.pending&t != 0 && !d.due[idx(t)].After(now) {
			run |= t
		}
	}
	if run&^tDirs != 0 {
		run |= d.pending & (tKernel | tRetry)
	}
	d.pending &^= run
	return run
}

func idx(t trigger) int {
	for i := range nTriggers {
		if t == 1<<i {
			return i
		}
	}
	panic("daemon: not a single trigger")
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// onKernel runs on a subscription's goroutine.
func (d *daemon) onKernel(ev KernelEvent) {
	d.m.KernelEvents.WithLabelValues(ev.Kind).Inc()
	switch ev.Kind {
	case EventOverflow:
		d.cache.InvalidateAll() // events were lost: anything may have changed
	case EventLink:
		d.cache.InvalidateLink(ev.NS, ev.Index)
	case EventAddr, EventRoute, EventNeigh:
		d.cache.InvalidateObjects(ev.NS)
	default:
		d.cache.Invalidate(ev.NS)
	}
	d.mu.Lock()
	if d.inFirst.IsZero() {
		d.inFirst = ev.At
	}
	if d.inKinds == nil {
		d.inKinds = map[string]int{}
	}
	d.inKinds[nsLabel(ev.NS)+"/"+ev.Kind]++
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *daemon) drainKernel(now time.Time) {
	d.mu.Lock()
	first, kinds := d.inFirst, d.inKinds
	d.inFirst, d.inKinds = time.Time{}, nil
	d.mu.Unlock()
	if first.IsZero() {
		return
	}
	if d.events == nil {
		d.events = map[string]int{}
	}
	for k, n := range kinds {
		d.events[k] += n
	}
	if d.kernelFirst.IsZero() {
		d.kernelFirst = first
	}
	d.schedule(tKernel, now)
}

// drainFS handles the file system events already queued, so that a
// backlog gathered during a long pass (our own apply creating many pod
// namespaces) is read at once rather than one per pass.
func (d *daemon) drainFS() {
	for {
		select {
		case ev, ok := <-d.fw.Events:
			if !ok {
				return
			}
			d.fsEvent(ev)
		default:
			return
		}
	}
}

// fsEvent sorts a file system event: the topology file's directory, or a
// watched namespace's name.
func (d *daemon) fsEvent(ev fsnotify.Event) {
	now := time.Now()
	if d.dirs[ev.Name] && ev.Has(fsnotify.Remove|fsnotify.Rename) {
		// A watched directory itself went away (a ConfigMap volume
		// unmounted, a directory renamed): watch it again when it is back.
		delete(d.dirs, ev.Name)
		d.dirsLost = true
		d.schedule(tDirs, now)
	}
	// Only names that can change what the file reads: its own, its
	// symlink target's, and a ConfigMap's "..data" and "..<timestamp>"
	// entries. Anything else in the directory (the daemon's own log file,
	// an editor's swap file) is not news.
	dir, base := filepath.Split(ev.Name)
	if d.fileDirs[ev.Name] || (d.fileDirs[filepath.Clean(dir)] && (d.fileNames[base] || strings.HasPrefix(base, ".."))) {
		d.schedule(tFile, now)
	}
	if key, ok := d.nsPaths[ev.Name]; ok {
		// A namespace name appeared or went away. A name that still
		// names the namespace we subscribed to is old news: typically our
		// own pass created it, and the event was queued behind the pass.
		ref := key
		if key == state.NodeNS {
			ref = d.NodeNetns
		}
		if !ev.Has(fsnotify.Remove|fsnotify.Rename) && d.kw.known(key, ref) {
			return
		}
		// Our subscription holds a deleted namespace alive (and its veths
		// with it): let it go now, so the kernel tears it down and the
		// pass sees it gone.
		d.m.KernelEvents.WithLabelValues(EventNetns).Inc()
		if d.events == nil {
			d.events = map[string]int{}
		}
		d.events[nsLabel(key)+"/"+EventNetns]++
		if d.kw.drop(key, ref) {
			d.Log.V(1).Info("netns went away", "netns", nsLabel(key))
		}
		if d.kernelFirst.IsZero() {
			d.kernelFirst = now
		}
		d.schedule(tKernel, now)
	}
}

// wanted maps the namespaces to watch (object namespace key -> reference):
// the node's and every pod namespace of the last good file on this node.
func (d *daemon) wanted() map[string]string {
	want := map[string]string{state.NodeNS: d.NodeNetns}
	for _, p := range d.spec.PodsOn(d.Node) {
		want[p.Netns] = p.Netns
	}
	return want
}

// syncWatches subscribes to the wanted namespaces that exist and watches
// the directories of the file and of the namespaces' names.
func (d *daemon) syncWatches(log logr.Logger) {
	added, err := d.kw.sync(d.wanted())
	// What changed between a namespace's last observation and its new
	// subscription raised no event: read it again next time.
	for _, key := range added {
		d.cache.Invalidate(key)
	}
	if err != nil {
		d.cache.InvalidateAll() // an unwatched namespace cannot be trusted
		d.m.Errors.WithLabelValues(StageSubscribe).Inc()
		log.Error(err, "subscribe to kernel events")
	}
	d.m.Watched.Set(float64(d.kw.count()))
	d.syncDirs()
}

// syncDirs watches the directories that matter now: the file's, the
// directory of its symlink target when that is elsewhere, and the
// directories holding the watched namespaces' names.
func (d *daemon) syncDirs() {
	want := map[string]bool{}
	d.fileDirs, d.fileNames = map[string]bool{}, map[string]bool{}
	abs, err := filepath.Abs(d.File)
	if err != nil {
		abs = d.File
	}
	fileDir := filepath.Dir(abs)
	d.fileDirs[fileDir] = true
	d.fileNames[filepath.Base(abs)] = true
	want[fileDir] = true
	if target, err := filepath.EvalSymlinks(abs); err == nil {
		// A ConfigMap's swap happens inside fileDir (..data); a link to
		// another directory needs that directory watched too.
		if td := filepath.Dir(target); td != fileDir && !strings.HasPrefix(td, fileDir+string(filepath.Separator)) {
			d.fileDirs[td] = true
			d.fileNames[filepath.Base(target)] = true
			want[td] = true
		}
	}
	d.nsPaths = map[string]string{}
	for key, ref := range d.wanted() {
		if ref == "" || strings.HasPrefix(ref, "/proc/") {
			continue // the current namespace, or one held by a process: no name to watch
		}
		p := nsutil.Path(ref)
		d.nsPaths[p] = key
		want[filepath.Dir(p)] = true
	}
	d.dirsLost = false
	for dir := range want {
		if d.dirs[dir] {
			continue
		}
		if err := d.fw.Add(dir); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				d.m.Errors.WithLabelValues(StageWatch).Inc()
				d.Log.Error(err, "watch directory", "dir", dir)
			}
			d.dirsLost = true
			continue
		}
		d.dirs[dir] = true
		if d.fileDirs[dir] && d.started {
			d.schedule(tFile, time.Now()) // watched again: it may have changed meanwhile
		}
	}
	for dir := range d.dirs {
		if !want[dir] {
			_ = d.fw.Remove(dir)
			delete(d.dirs, dir)
		}
	}
	if d.dirsLost {
		d.schedule(tDirs, time.Now())
	}
}

// reload reads the file. It reports whether the model served changed
// (or force, for SIGHUP, when the file is valid). An unreadable, missing
// or invalid file is logged once per content and the last good model
// is kept.
func (d *daemon) reload(log logr.Logger, force bool) bool {
	data, err := spec.ReadFile(d.File)
	if err != nil {
		st := fileUnreadable
		if errors.Is(err, fs.ErrNotExist) {
			st = fileMissing
		}
		if d.fileState != st {
			d.m.ConfigReloads.WithLabelValues(st).Inc()
			d.m.Errors.WithLabelValues(StageLoad).Inc()
			d.m.ConfigOK.Set(0)
			if st == fileMissing {
				log.Error(err, "topology file is gone; keeping the last good state until it is back", "file", d.File)
			} else {
				log.Error(err, "cannot read the topology file; keeping the last good state", "file", d.File)
			}
		}
		d.fileState, d.fileErr, d.readSum = st, err, [32]byte{}
		return false
	}
	sum := sha256.Sum256(data)
	if sum == d.readSum && !force {
		return false // fileState and fileErr still describe it
	}
	d.readSum = sum
	r, err := d.parser.Load(d.File, data)
	if err == nil && r.Node(d.Node) == nil {
		err = fmt.Errorf("%s: node %q is not in the file (nodes: %s)", d.File, d.Node, nodeNames(r))
	}
	if err != nil {
		d.fileState, d.fileErr = fileInvalid, err
		d.m.ConfigReloads.WithLabelValues(fileInvalid).Inc()
		d.m.Errors.WithLabelValues(StageLoad).Inc()
		d.m.ConfigOK.Set(0)
		log.Error(err, "topology file is invalid; keeping the last good state", "file", d.File)
		return false
	}
	d.fileState, d.fileErr = fileOK, nil
	d.m.ConfigReloads.WithLabelValues(fileOK).Inc()
	d.m.ConfigOK.Set(1)
	if sum == d.specSum {
		return force // back to the content already served
	}
	d.spec, d.specSum = r, sum
	d.m.datapath.set(d.pinDir, reconcile.PodNames(r), d.Log)
	log.Info("topology file changed", "file", d.File, "sha256", hex.EncodeToString(sum[:6]),
		"pods", len(r.PodsOn(d.Node)))
	return true
}

// pass runs one reconcile pass.
func (d *daemon) pass(ctx context.Context, run trigger) {
	id := newID()
	log := d.Log.WithValues("reconcileID", id)
	start := time.Now() // a pass's duration includes reading the file
	var waiters []chan ControlReply
	if run&tApply != 0 {
		waiters, d.waiters = d.waiters, nil
	}
	if run&(tFile|tReload|tApply) != 0 {
		changed := d.reload(log, run&tReload != 0)
		if d.fileErr != nil && len(waiters) > 0 {
			// apply's file is not what the daemon serves: say why,
			// rather than converge to the last good one.
			d.answer(waiters, ControlReply{Error: d.fileErr.Error()})
			waiters, run = nil, run&^tApply
		}
		if !changed && run&^(tFile|tDirs) == 0 {
			d.n.Status(d.status()) // the file state may have changed
			return
		}
	}
	read := time.Since(start)
	kernelFirst, events := d.kernelFirst, d.events
	d.kernelFirst, d.events = time.Time{}, nil
	d.passStart.Store(start.UnixNano())
	defer d.passStart.Store(0)

	want := d.wanted()
	d.kw.prune(want)
	// A full pass reads everything again, the datapath included, whose
	// drift raises no event: at start, on SIGHUP, and every resync period
	// however busy the loop is.
	full := run&(tStart|tReload|tResync) != 0
	if full {
		d.cache.InvalidateAll()
	}
	e := d.NewEngine()
	e.Log = e.Log.WithValues("reconcileID", id)
	e.Cache = d.cache
	res, err := e.Apply(ctx, d.spec)
	dur := time.Since(start)
	d.m.Duration.Observe(dur.Seconds())
	d.syncWatches(log)
	d.started = true

	if err != nil {
		d.m.Runs.WithLabelValues(run.label(), ResultError).Inc()
		d.m.Errors.WithLabelValues(StageReconcile).Inc()
		d.lastErr, d.converged = err, false
		d.ready.Store(false)
		d.m.Ready.Set(0)
		d.backoff = min(max(2*d.backoff, minBackoff), d.MaxBackoff)
		applied := 0
		if res != nil {
			applied = res.Applied
		}
		log.Error(err, "reconcile failed; will retry", "trigger", run.label(), "applied", applied,
			"duration", dur.String(), "retryIn", d.backoff.String())
		d.answer(waiters, ControlReply{Applied: applied, Error: err.Error()})
		d.schedule(tRetry, time.Now())
		d.schedule(tResync, time.Now())
		d.n.Status(d.status())
		return
	}
	// Drift: changes needed although the file is what the last converged
	// pass applied. Changes after a file change are not drift.
	drift := d.converged && d.convergedSum == d.specSum && !res.Plan.Empty()
	for _, c := range res.Plan.Changes {
		d.m.Applied.WithLabelValues(c.Kind, string(c.Action)).Inc()
		if drift {
			d.m.Drift.WithLabelValues(c.Kind).Inc()
		}
	}
	result := ResultUnchanged
	if !res.Plan.Empty() {
		result = ResultChanged
	}
	d.m.Runs.WithLabelValues(run.label(), result).Inc()
	counts, neighs := owned(res)
	total := 0
	for _, k := range state.Kinds() {
		d.m.Managed.WithLabelValues(k.String()).Set(float64(counts[k.String()]))
		total += counts[k.String()]
	}
	d.kw.setNeighs(neighs)
	d.managed = total
	d.converged, d.convergedSum, d.lastErr, d.backoff = true, d.specSum, nil, 0
	d.pending &^= tRetry
	d.ready.Store(true)
	d.m.Ready.Set(1)
	d.m.LastSuccess.SetToCurrentTime()
	if full {
		d.schedule(tResync, time.Now())
	}
	kv := []any{"trigger", run.label(), "changes", len(res.Plan.Changes), "duration", dur.String(),
		"readFile", read.String()}
	if len(events) > 0 {
		kv = append(kv, "events", eventSummary(events))
	}
	if drift {
		d.drifts++
		kv = append(kv, "drift", true)
		if !kernelFirst.IsZero() {
			lat := time.Since(kernelFirst)
			d.m.DriftLatency.Observe(lat.Seconds())
			kv = append(kv, "repairLatency", lat.String())
		}
	}
	s := res.Plan.Summary
	d.answer(waiters, ControlReply{Applied: res.Applied, Add: s.Add, Change: s.Change, Destroy: s.Destroy})
	if res.Plan.Empty() {
		log.V(1).Info("reconciled", kv...)
	} else {
		log.Info("reconciled", append(kv, "added", s.Add, "changed", s.Change, "destroyed", s.Destroy)...)
	}
	d.n.Status(d.status())
}

// owned counts what netreconcile owns after a successful pass (what it
// observed, plus what the plan created, minus what it deleted) and lists
// the neighbour IPs it owns by namespace.
func owned(res *reconcile.Result) (map[string]int, map[string]map[netip.Addr]bool) {
	counts := map[string]int{}
	neighs := map[string]map[netip.Addr]bool{}
	addNeigh := func(o state.Object) {
		if n, ok := o.(*state.Neigh); ok {
			if neighs[n.NS] == nil {
				neighs[n.NS] = map[netip.Addr]bool{}
			}
			neighs[n.NS][n.IP] = true
		}
	}
	if res.Observed != nil && res.Observed.Owned != nil {
		for _, k := range state.Kinds() {
			counts[k.String()] = res.Observed.Owned.Count(k)
			if k == state.KindNeigh {
				for _, o := range res.Observed.Owned.All(k) {
					addNeigh(o)
				}
			}
		}
	}
	for _, c := range res.Plan.Changes {
		switch c.Action {
		case reconcile.Create:
			counts[c.Kind]++
		case reconcile.Delete:
			counts[c.Kind]--
		}
		if c.Desired != nil {
			addNeigh(c.Desired)
		}
	}
	return counts, neighs
}

// status is the one-line summary for systemd's STATUS=.
func (d *daemon) status() string {
	var b strings.Builder
	switch {
	case d.lastErr != nil:
		msg, _, _ := strings.Cut(d.lastErr.Error(), "\n")
		if len(msg) > 160 {
			msg = msg[:160] + "..."
		}
		b.WriteString("error (retrying): " + msg)
	case !d.started:
		b.WriteString("starting")
	default:
		b.WriteString("converged")
	}
	fmt.Fprintf(&b, "; %d pods, %d objects", len(d.spec.PodsOn(d.Node)), d.managed)
	if d.drifts > 0 {
		fmt.Fprintf(&b, "; %d drift repairs", d.drifts)
	}
	if d.fileState != fileOK {
		fmt.Fprintf(&b, "; file %s, serving the last good one", d.fileState)
	}
	return b.String()
}

// healthy is false only when a pass has been running for longer than
// PassTimeout: the loop is stuck. An idle loop waits in select, healthy.
func (d *daemon) healthy() bool {
	s := d.passStart.Load()
	return s == 0 || time.Since(time.Unix(0, s)) < d.PassTimeout
}

func (d *daemon) watchdog(ctx context.Context, iv time.Duration) {
	t := time.NewTicker(iv / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if d.healthy() {
				d.n.Watchdog()
			}
		}
	}
}

func (d *daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.m.Registry, promhttp.HandlerOpts{Registry: d.m.Registry}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !d.healthy() {
			http.Error(w, "a reconcile pass has been running for more than "+d.PassTimeout.String(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !d.ready.Load() {
			http.Error(w, "not converged (see the logs and netreconcile_errors_total)", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// eventSummary renders event counts as "node/link=2 pod-a/route=1", the
// busiest first, at most five.
func eventSummary(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	for i, k := range keys {
		if i == 5 {
			fmt.Fprintf(&b, " (+%d more)", len(keys)-5)
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", k, m[k])
	}
	return b.String()
}

func newID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func nodeNames(r *spec.Resolved) string {
	names := make([]string, 0, len(r.Nodes))
	for _, n := range r.Nodes {
		names = append(names, n.Name)
	}
	return strings.Join(names, ", ")
}
