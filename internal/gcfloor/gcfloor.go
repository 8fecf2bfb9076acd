// Package gcfloor lets the Go heap grow to a floor before it is
// collected, and collects as the default GOGC=100 would above it.
//
// A plan of a large node allocates about a hundred megabytes while its
// live heap grows from nothing to a few tens: with GOGC=100 the collector
// runs a dozen times on the way (each cycle scheduled off a small heap),
// a fifth of the command's CPU. A floor under the heap goal removes most
// of those cycles for a bounded cost in memory. Go has no such knob; this
// is GOGC=off with a memory limit of max(floor, 2 × live heap), set again
// after every collection.
package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// Set installs the floor, in bytes, unless the user tuned the collector
// (GOGC or GOMEMLIMIT in the environment): theirs wins. It returns whether
// it did.
func Set(floor int64) bool {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return false
	}
	debug.SetGCPercent(-1)
	retune(floor)
	return true
}

// retune sets the limit from the live heap the last collection left and
// arranges to run again after the next one: a finalizer runs once the
// collector finds its object unreachable, that is, after each cycle.
func retune(floor int64) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	var live int64
	if s[0].Value.Kind() == metrics.KindUint64 {
		live = int64(s[0].Value.Uint64())
	}
	debug.SetMemoryLimit(max(floor, 2*live))
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) { retune(floor) })
}

// sentinel is large enough to get its own allocation (the tiny allocator
// batches smaller pointer-free objects, whose finalizers may never run).
type sentinel struct{ _ [32]byte }
