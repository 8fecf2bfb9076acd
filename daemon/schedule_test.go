package daemon

import (
	"testing"
	"time"
)

// newTestScheduler has the default timing.
func newTestScheduler() *scheduler {
	cfg := Config{}
	cfg.defaults()
	return newScheduler(cfg)
}

// A file that keeps changing is read after FileDebounce of quiet, but
// never later than MaxDelay after the first change.
func TestScheduleFileSlidesUpToMaxDelay(t *testing.T) {
	s := newTestScheduler()
	t0 := time.Now()
	s.schedule(tFile, t0)
	if got := s.due[idx(tFile)].Sub(t0); got != s.fileDebounce {
		t.Errorf("first event: due after %v", got)
	}
	s.schedule(tFile, t0.Add(150*time.Millisecond))
	if got := s.due[idx(tFile)].Sub(t0); got != 150*time.Millisecond+s.fileDebounce {
		t.Errorf("second event: due after %v (sliding)", got)
	}
	for i := range 100 {
		s.schedule(tFile, t0.Add(time.Duration(i)*100*time.Millisecond))
	}
	if got := s.due[idx(tFile)].Sub(t0); got != s.maxDelay {
		t.Errorf("flapping: due after %v, want MaxDelay %v", got, s.maxDelay)
	}
}

// A burst of kernel events is repaired KernelDebounce after its first
// event; later events of the burst do not push the pass back.
func TestScheduleKernelFixedFromFirstEvent(t *testing.T) {
	s := newTestScheduler()
	t0 := time.Now()
	s.schedule(tKernel, t0)
	s.schedule(tKernel, t0.Add(10*time.Millisecond))
	s.schedule(tKernel, t0.Add(15*time.Millisecond))
	if got := s.due[idx(tKernel)].Sub(t0); got != s.kernelDebounce {
		t.Errorf("due after %v, want %v", got, s.kernelDebounce)
	}
}

// After a failed pass, kernel events and resyncs wait for the backoff;
// SIGHUP does not.
func TestScheduleBackoffHoldsKernelPasses(t *testing.T) {
	s := newTestScheduler()
	t0 := time.Now()
	s.backoff = 4 * time.Second
	s.schedule(tRetry, t0)
	s.schedule(tKernel, t0.Add(time.Millisecond))
	if got := s.due[idx(tKernel)].Sub(t0); got != 4*time.Second {
		t.Errorf("kernel pass due after %v during a 4s backoff", got)
	}
	s.schedule(tReload, t0.Add(time.Millisecond))
	if got := s.due[idx(tReload)].Sub(t0); got != time.Millisecond {
		t.Errorf("reload due after %v", got)
	}
}

// A pass answers pending kernel events early, but not the resync: a
// busy loop still gets its full pass on time.
func TestTakeKeepsResyncTime(t *testing.T) {
	s := newTestScheduler()
	t0 := time.Now()
	s.schedule(tResync, t0)
	s.schedule(tKernel, t0)
	s.schedule(tFile, t0)
	due := t0.Add(s.fileDebounce)
	if run := s.take(due); run != tFile|tKernel {
		t.Errorf("took %b, want file and kernel", run)
	}
	if s.pending != tResync || s.due[idx(tResync)] != t0.Add(s.resync) {
		t.Errorf("pending %b, resync due %v: want the resync kept at %v", s.pending, s.due[idx(tResync)], t0.Add(s.resync))
	}
	if run := s.take(t0.Add(s.resync)); run != tResync {
		t.Errorf("took %b at the resync time, want the resync", run)
	}
}

func TestTriggerLabel(t *testing.T) {
	for trig, want := range map[trigger]string{
		tStart | tKernel: TriggerStart, tReload | tFile: TriggerReload, tFile | tKernel: TriggerFile,
		tKernel | tResync: TriggerKernel, tRetry: TriggerRetry, tResync: TriggerResync,
	} {
		if got := trig.label(); got != want {
			t.Errorf("%b: %s, want %s", trig, got, want)
		}
	}
}

// Each failed pass doubles the wait before its retry, from minBackoff up
// to MaxBackoff; the resync scheduled with the retry waits for it, and a
// converged pass forgets both the backoff and the pending retry.
func TestSchedulerBackoff(t *testing.T) {
	s := newTestScheduler()
	s.maxBackoff = 5 * time.Second
	var got []time.Duration
	for range 5 {
		got = append(got, s.failed())
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backoffs %v, want %v", got, want)
		}
	}
	s.resync = time.Second // shorter than the backoff
	t0 := time.Now()
	s.retry(t0)
	if s.pending != tRetry|tResync || s.due[idx(tRetry)] != t0.Add(5*time.Second) || s.due[idx(tResync)] != t0.Add(5*time.Second) {
		t.Fatalf("pending %b, retry due %v, resync due %v: want both at %v",
			s.pending, s.due[idx(tRetry)], s.due[idx(tResync)], t0.Add(5*time.Second))
	}
	s.converged()
	if s.pending != tResync || s.backoff != 0 {
		t.Fatalf("after converging: pending %b, backoff %v", s.pending, s.backoff)
	}
	if b := s.failed(); b != time.Second {
		t.Fatalf("first failure after converging: backoff %v", b)
	}
}

// Retrying a missing directory is not a pass: it leaves the kernel events
// pending for their own time.
func TestTakeDirsAlone(t *testing.T) {
	s := newTestScheduler()
	t0 := time.Now()
	s.schedule(tKernel, t0.Add(dirRetry))
	s.schedule(tDirs, t0)
	if run := s.take(t0.Add(dirRetry)); run != tDirs {
		t.Errorf("took %b, want only the directories", run)
	}
	if s.pending != tKernel {
		t.Errorf("pending %b, want the kernel events", s.pending)
	}
}
