package reconcile

import (
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/internal/scaletopo"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

var scaleUplink = Uplink{Name: "eth0", Found: true, Index: 2, MTU: 1500,
	Addrs: []netip.Prefix{netip.MustParsePrefix("192.168.0.1/24")}}

func scaleSetup(b *testing.B) (*Config, *spec.Resolved) {
	b.Helper()
	r, err := spec.LoadBytes("scale.yaml", scaletopo.File())
	if err != nil {
		b.Fatal(err)
	}
	cfg := testCfg()
	cfg.BPFFS = "/sys/fs/bpf/netreconcile/n1"
	return cfg, r
}

// scaleObserved is the scale node's desired state and a kernel holding
// exactly that.
func scaleObserved(b *testing.B) (*state.State, *Observed) {
	b.Helper()
	cfg, r := scaleSetup(b)
	desired, err := Desired(cfg, r, scaleUplink)
	if err != nil {
		b.Fatal(err)
	}
	obs := observedFrom(desired)
	obs.Uplink = scaleUplink
	return desired, obs
}

// cpuTime is the CPU time the process has used, garbage collection
// included: on a shared machine a steadier figure than ns/op.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per op since start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkDesiredScale builds the desired state of the scale node: the
// fixed cost of every plan at that size.
func BenchmarkDesiredScale(b *testing.B) {
	cfg, r := scaleSetup(b)
	b.ReportAllocs()
	defer reportCPU(b, cpuTime(b))
	for b.Loop() {
		if _, err := Desired(cfg, r, scaleUplink); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiffScaleNoop diffs the scale node against a kernel that holds
// exactly what it wants, as the verify step of every pass does.
func BenchmarkDiffScaleNoop(b *testing.B) {
	desired, obs := scaleObserved(b)
	benchDiff(b, desired, obs, 0)
}

// BenchmarkDiffScaleOneChange diffs the scale node against a kernel where
// one service lost a backend and one pod's veth has the wrong MTU.
func BenchmarkDiffScaleOneChange(b *testing.B) {
	desired, obs := scaleObserved(b)
	svc := obs.Owned.Of(state.KindService)[17].(*state.Service)
	svc.Backends = svc.Backends[1:]
	obs.Owned.Of(state.KindLink)[42].(*state.Link).MTU = 1400
	benchDiff(b, desired, obs, 2)
}

// benchDiff times Diff of desired against obs, which must give changes.
func benchDiff(b *testing.B, desired *state.State, obs *Observed, changes int) {
	b.ReportAllocs()
	defer reportCPU(b, cpuTime(b))
	for b.Loop() {
		p, err := Diff("n1", desired, obs)
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Changes) != changes {
			b.Fatalf("want %d changes, got %d", changes, len(p.Changes))
		}
	}
}
