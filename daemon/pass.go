package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/state"
)

// A pass: read the file when a reason asks for it, then the same
// Engine.Apply as `netreconcile apply`, then record the outcome in the
// metrics, the health, the scheduler and the log line, and answer the
// control requests it served.

// passRun is one pass in flight: why it runs and what it answers.
type passRun struct {
	id      string
	log     logr.Logger
	run     trigger
	full    bool // reads everything again, the datapath included
	newFile bool // serves a model read in this pass
	start   time.Time
	read    time.Duration // reading the file
	dur     time.Duration // the whole pass
	first   time.Time     // first kernel event it answers
	events  map[string]int
	waiters []chan ControlReply
}

// pass runs one reconcile pass.
func (d *daemon) pass(ctx context.Context, run trigger) {
	p := &passRun{id: newID(), run: run, start: time.Now()} // a pass's duration includes reading the file
	before := allocated()
	p.log = d.Log.WithValues("reconcileID", p.id)
	if !d.readFile(p) {
		return
	}
	p.read = time.Since(p.start)
	p.first, p.events = d.kernel.take()
	d.health.begin(p.start)
	defer d.health.end()

	// A full pass reads everything again, the datapath included, whose
	// drift raises no event: at start, on SIGHUP, and every resync period
	// however busy the loop is.
	p.full = p.run&(tStart|tReload|tResync) != 0
	d.kernel.prepare(d.wanted(), p.full)
	e := d.NewEngine()
	e.Log = e.Log.WithValues("reconcileID", p.id)
	e.Cache = d.kernel.cache
	e.Cfg.Shared = reconcile.NewSharedFrom(d.carried, d.file.spec)
	res, err := e.Apply(ctx, d.file.spec)
	d.carried = e.Cfg.Shared.Carried()
	p.dur = time.Since(p.start)
	d.m.Duration.Observe(p.dur.Seconds())
	d.syncWatches(p.log)
	d.health.started = true
	if err != nil {
		d.failed(p, res, err)
	} else {
		d.converged(p, res)
	}
	heavy := p.newFile || p.run&tStart != 0
	if p.newFile {
		d.sched.passAlloc = allocated() - before
	}
	if heavy || d.echoTrim {
		// Reading and planning a cluster-sized file allocates several
		// times what the daemon keeps (1000 nodes: about 250 MB at the
		// peak, 110 MB kept). Handed back now, after the pass is timed
		// and answered, not over minutes by the runtime's scavenger:
		// what a node's memory limit sees between passes is what is kept.
		if d.MemoryFloor > 0 {
			FitMemoryLimit(d.MemoryFloor)
		} else {
			debug.FreeOSMemory()
		}
	}
	d.echoTrim = heavy
}

// readFile reads the file when the pass's reasons ask for it. It reports
// whether the pass goes on: a pass for the file alone ends here when the
// model served did not change.
func (d *daemon) readFile(p *passRun) bool {
	if p.run&tApply != 0 {
		p.waiters = d.ctl.take()
	}
	if p.run&(tFile|tReload|tApply) == 0 {
		return true
	}
	changed := d.file.reload(p.log, p.run&tReload != 0)
	p.newFile = changed
	if d.file.err != nil && len(p.waiters) > 0 {
		// apply's file is not what the daemon serves: say why,
		// rather than converge to the last good one.
		d.ctl.answer(p.waiters, ControlReply{Error: d.file.err.Error()})
		p.waiters, p.run = nil, p.run&^tApply
	}
	if !changed && p.run&^(tFile|tDirs) == 0 {
		d.publish(nil)
		d.n.Status(d.status()) // the file state may have changed
		return false
	}
	return true
}

// failed records a failed pass and schedules its retry.
func (d *daemon) failed(p *passRun, res *reconcile.Result, err error) {
	d.m.Runs.WithLabelValues(p.run.label(), ResultError).Inc()
	d.m.Errors.WithLabelValues(StageReconcile).Inc()
	d.health.failed(err)
	backoff := d.sched.failed()
	applied := 0
	if res != nil {
		applied = res.Applied
	}
	p.log.Error(err, "reconcile failed; will retry", "trigger", p.run.label(), "applied", applied,
		"duration", p.dur.String(), "retryIn", backoff.String())
	d.ctl.answer(p.waiters, ControlReply{Applied: applied, Error: err.Error()})
	d.sched.retry(time.Now())
	d.publish(p)
	d.n.Status(d.status())
}

// converged records a pass that converged: metrics, health, the owned
// neighbours the kernel events filter on, the next resync, its log line
// and its answer.
func (d *daemon) converged(p *passRun, res *reconcile.Result) {
	drift := d.health.isDrift(d.file.specSum, !res.Plan.Empty())
	d.countChanges(p.run, res, drift)
	counts, neighs := owned(res)
	total := 0
	for _, k := range state.Kinds() {
		d.m.Managed.WithLabelValues(k.String()).Set(float64(counts[k.String()]))
		total += counts[k.String()]
	}
	d.kernel.owns(neighs)
	d.m.programmed(res.Programmed())
	d.health.succeeded(d.file.specSum, total)
	d.sched.converged()
	d.m.LastSuccess.SetToCurrentTime()
	if p.full {
		d.sched.schedule(tResync, time.Now())
	}
	kv := []any{"trigger", p.run.label(), "changes", len(res.Plan.Changes), "duration", p.dur.String(),
		"readFile", p.read.String()}
	if len(p.events) > 0 {
		kv = append(kv, "events", eventSummary(p.events))
	}
	if drift {
		d.health.drifts++
		kv = append(kv, "drift", true)
		if !p.first.IsZero() {
			lat := time.Since(p.first)
			d.m.DriftLatency.Observe(lat.Seconds())
			kv = append(kv, "repairLatency", lat.String())
		}
	}
	s := res.Plan.Summary
	d.ctl.answer(p.waiters, ControlReply{Applied: res.Applied, Add: s.Add, Change: s.Change, Destroy: s.Destroy})
	if res.Plan.Empty() {
		p.log.V(1).Info("reconciled", kv...)
	} else {
		p.log.Info("reconciled", append(kv, "added", s.Add, "changed", s.Change, "destroyed", s.Destroy)...)
	}
	d.publish(p)
	d.n.Status(d.status())
}

// countChanges counts a converged pass and its changes, as drift too.
func (d *daemon) countChanges(run trigger, res *reconcile.Result, drift bool) {
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
