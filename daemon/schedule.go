package daemon

import (
	"time"
)

// The scheduler decides when the next pass runs, and why: it owns the
// reasons pending, when each is due, the debounce of file and kernel
// events, the resync period and the backoff after a failed pass. It does
// no I/O and only the loop goroutine touches it, so that its timing (the
// rules of doc.go) is tested on its own, with times passed in.

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

// scheduler holds the pending reasons for a pass and the timer of the
// earliest.
type scheduler struct {
	fileDebounce   time.Duration
	kernelDebounce time.Duration
	maxDelay       time.Duration
	resync         time.Duration
	maxBackoff     time.Duration

	pending   trigger
	due       [nTriggers]time.Time
	firstFile time.Time     // first file event of the pending batch
	backoff   time.Duration // wait before retrying the last failed pass; 0 after a success
	timer     *time.Timer
	passAlloc int64 // what the last pass that read a new file allocated
}

// newScheduler takes its timing from cfg, defaults applied.
func newScheduler(cfg Config) *scheduler {
	s := &scheduler{fileDebounce: cfg.FileDebounce, kernelDebounce: cfg.KernelDebounce, maxDelay: cfg.MaxDelay,
		resync: cfg.Resync, maxBackoff: cfg.MaxBackoff, timer: time.NewTimer(time.Hour)}
	s.timer.Stop()
	return s
}

// C fires when the earliest pending reason is due: the loop then calls take.
func (s *scheduler) C() <-chan time.Time { return s.timer.C }

// schedule records a reason for a pass and when it is due.
func (s *scheduler) schedule(t trigger, now time.Time) {
	i := idx(t)
	switch t {
	case tFile:
		// Sliding: wait for the file to be quiet, but not for ever.
		if s.pending&tFile == 0 {
			s.firstFile = now
			// The pass waits for quiet (FileDebounce) anyway: collect
			// the last pass's garbage now, rather than during the pass,
			// which allocates about as much as the daemon keeps, and
			// make the memory it will allocate resident (prepareHeap).
			go prepareHeap(s.passAlloc)
		}
		s.due[i] = minTime(now.Add(s.fileDebounce), s.firstFile.Add(s.maxDelay))
	case tKernel:
		// Fixed from the first event: a burst is gathered, then repaired.
		if s.pending&tKernel == 0 {
			s.due[i] = now.Add(s.kernelDebounce)
		}
		s.due[i] = s.notBeforeRetry(s.due[i])
	case tResync:
		if s.resync < 0 {
			return
		}
		s.due[i] = s.notBeforeRetry(now.Add(s.resync))
	case tRetry:
		s.due[i] = now.Add(s.backoff)
	case tDirs:
		s.due[i] = now.Add(dirRetry)
	default: // start, reload, apply: at once
		s.due[i] = now
	}
	s.pending |= t
	s.arm(now)
}

// notBeforeRetry keeps passes that nobody asked for (kernel events,
// resync) from running before a failed pass's backoff ends: a pass that
// fails half-way makes kernel events of its own.
func (s *scheduler) notBeforeRetry(t time.Time) time.Time {
	if s.pending&tRetry != 0 && s.due[idx(tRetry)].After(t) {
		return s.due[idx(tRetry)]
	}
	return t
}

// arm sets the timer to the earliest pending reason, or stops it.
func (s *scheduler) arm(now time.Time) {
	var next time.Time
	for t := trigger(1); t < 1<<nTriggers; t <<= 1 {
		if s.pending&t != 0 && (next.IsZero() || s.due[idx(t)].Before(next)) {
			next = s.due[idx(t)]
		}
	}
	if next.IsZero() {
		s.timer.Stop()
		return
	}
	s.timer.Reset(max(next.Sub(now), 0))
}

// take removes from pending and returns the triggers due at now, with
// those a pass answers early: kernel events and a retry, whether or not
// they were due yet (the pass reads what they concern). The resync keeps
// its time: it is the full pass that reads what raises no event. A file
// still changing keeps its own quiet time.
func (s *scheduler) take(now time.Time) trigger {
	var run trigger
	for t := trigger(1); t < 1<<nTriggers; t <<= 1 {
		if s.pending&t != 0 && !s.due[idx(t)].After(now) {
			run |= t
		}
	}
	if run&^tDirs != 0 {
		run |= s.pending & (tKernel | tRetry)
	}
	s.pending &^= run
	return run
}

// failed lengthens the backoff (doubling, from minBackoff up to
// MaxBackoff) and returns it: the retry is due after it.
func (s *scheduler) failed() time.Duration {
	s.backoff = min(max(2*s.backoff, minBackoff), s.maxBackoff)
	return s.backoff
}

// retry schedules, after a failed pass, its retry and a resync that waits
// for it.
func (s *scheduler) retry(now time.Time) {
	s.schedule(tRetry, now)
	s.schedule(tResync, now)
}

// converged forgets the backoff and a retry still pending.
func (s *scheduler) converged() {
	s.backoff = 0
	s.pending &^= tRetry
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
