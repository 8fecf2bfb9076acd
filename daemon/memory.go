package daemon

import (
	"runtime"
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

// maxPrepare bounds what prepareHeap touches: a pass that allocates more
// is of a file so large (5000 nodes) that collecting its heap again takes
// longer than the wait for quiet, and would overlap the pass.
const maxPrepare = 64 << 20

// prepareHeap collects, then makes n bytes of heap resident and frees
// them again, for a pass about to run (while the file is let settle):
// the memory a pass allocates was handed back to the system after the
// last one (FitMemoryLimit), and taking it back page by page inside the
// pass cost a cluster's edit pass a tenth of its time (1000 nodes: some
// 30 MB, 7,000 page faults). Freed, the pages stay resident until the
// pass allocates them; the pass's own trim hands them back.
func prepareHeap(n int64) {
	runtime.GC()
	if n <= 0 || n > maxPrepare {
		return
	}
	b := make([]byte, n)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	runtime.KeepAlive(b) // written, then dropped: the next collection frees it
	runtime.GC()
}

// allocated is the bytes the program has allocated so far.
func allocated() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}
