package daemon

import (
	"runtime/debug"
	"runtime/metrics"
)

// A soft memory limit makes the runtime collect before the heap grows
// past it; set below what the daemon keeps, it collects all the time (a
// fixed 80 MiB made every watch pass of a 1000-node file 3-4 times
// slower). FitMemoryLimit sets it from what is kept, measured right after
// a collection: limitFactor times the live heap, never under the floor.

// limitFactor leaves a pass room to build its model and plan beside the
// one served (about as much again) without collecting.
const limitFactor = 3

// FitMemoryLimit collects, hands freed memory back to the system and sets
// the soft memory limit to limitFactor times the live heap, at least
// floor. It returns the limit set.
func FitMemoryLimit(floor int64) int64 {
	debug.FreeOSMemory() // collects first
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	limit := floor
	if s[0].Value.Kind() == metrics.KindUint64 {
		limit = max(floor, int64(s[0].Value.Uint64())*limitFactor)
	}
	debug.SetMemoryLimit(limit)
	return limit
}
