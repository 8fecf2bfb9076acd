package daemon

import (
	"testing"
	"time"
)

func newTestDaemon() *daemon {
	d := &daemon{Config: Config{}, timer: time.NewTimer(time.Hour)}
	d.defaults()
	d.timer.Stop()
	return d
}

// A file that keeps changing is read after FileDebounce of quiet, but
// never later than MaxDelay after the first change.
func TestScheduleFileSlidesUpToMaxDelay(t *testing.T) {
	d := newTestDaemon()
	t0 := time.Now()
	d.schedule(tFile, t0)
	if got := d.due[idx(tFile)].Sub(t0); got != d.FileDebounce {
		t.Errorf("first event: due after %v", got)
	}
	d.schedule(tFile, t0.Add(150*time.Millisecond))
	if got := d.due[idx(tFile)].Sub(t0); got != 150*time.Millisecond+d.FileDebounce {
		t.Errorf("second event: due after %v (sliding)", got)
	}
	for i := range 100 {
		d.schedule(tFile, t0.Add(time.Duration(i)*100*time.Millisecond))
	}
	if got := d.due[idx(tFile)].Sub(t0); got != d.MaxDelay {
		t.Errorf("flapping: due after %v, want MaxDelay %v", got, d.MaxDelay)
	}
}

// A burst of kernel events is repaired KernelDebounce after its first
// event; later events of the burst do not push the pass back.
func TestScheduleKernelFixedFromFirstEvent(t *testing.T) {
	d := newTestDaemon()
	t0 := time.Now()
	d.schedule(tKernel, t0)
	d.schedule(tKernel, t0.Add(10*time.Millisecond))
	d.schedule(tKernel, t0.Add(15*time.Millisecond))
	if got := d.due[idx(tKernel)].Sub(t0); got != d.KernelDebounce {
		t.Errorf("due after %v, want %v", got, d.KernelDebounce)
	}
}

// After a failed pass, kernel events and resyncs wait for the backoff;
// SIGHUP does not.
func TestScheduleBackoffHoldsKernelPasses(t *testing.T) {
	d := newTestDaemon()
	t0 := time.Now()
	d.backoff = 4 * time.Second
	d.schedule(tRetry, t0)
	d.schedule(tKernel, t0.Add(time.Millisecond))
	if got := d.due[idx(tKernel)].Sub(t0); got != 4*time.Second {
		t.Errorf("kernel pass due after %v during a 4s backoff", got)
	}
	d.schedule(tReload, t0.Add(time.Millisecond))
	if got := d.due[idx(tReload)].Sub(t0); got != time.Millisecond {
		t.Errorf("reload due after %v", got)
	}
}

// A pass answers pending kernel events early, but not the resync: a
// busy loop still gets its full pass on time.
func TestTakeKeepsResyncTime(t *testing.T) {
	d := newTestDaemon()
	t0 := time.Now()
	d.schedule(tResync, t0)
	d.schedule(tKernel, t0)
	d.schedule(tFile, t0)
	due := t0.Add(d.FileDebounce)
	if run := d.take(due); run != tFile|tKernel {
		t.Errorf("took %b, want file and kernel", run)
	}
	if d.pending != tResync || d.due[idx(tResync)] != t0.Add(d.Resync) {
		t.Errorf("pending %b, resync due %v: want the resync kept at %v", d.pending, d.due[idx(tResync)], t0.Add(d.Resync))
	}
	if run := d.take(t0.Add(d.Resync)); run != tResync {
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
