package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

var sink []byte

// TestFloor: below the floor, garbage does not start a collection; a live
// heap above half the floor raises the limit to twice itself after the
// next collection, as GOGC=100 would.
func TestFloor(t *testing.T) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("GOGC or GOMEMLIMIT set: Set leaves the collector alone")
	}
	const floor = 64 << 20
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	runtime.GC()
	if !Set(floor) {
		t.Fatal("Set declined without GOGC or GOMEMLIMIT")
	}
	if got := debug.SetMemoryLimit(-1); got != floor {
		t.Fatalf("limit %d, want the floor %d", got, floor)
	}
	before := numGC()
	for range 20 { // 20 MiB of garbage, a MiB at a time
		sink = make([]byte, 1<<20)
	}
	if n := numGC() - before; n != 0 {
		t.Errorf("%d collections below the floor, want none", n)
	}
	live := make([]byte, 48<<20)
	for i := range live {
		live[i] = 1 // touched: really live
	}
	// The limit is set by a finalizer, which runs on its own goroutine
	// after the cycle.
	deadline := time.Now().Add(5 * time.Second)
	for debug.SetMemoryLimit(-1) < 2*48<<20 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if got := debug.SetMemoryLimit(-1); got < 2*48<<20 {
		t.Errorf("limit %d with 48 MiB live, want at least twice that", got)
	}
	runtime.KeepAlive(live)
}

func numGC() uint32 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.NumGC
}
