package daemon

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// TestPrepareHeap: preparing a pass leaves the pages it touched resident
// and free, for the pass to allocate, and keeps none of them live; and
// FitMemoryLimit hands them back.
func TestPrepareHeap(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	debug.FreeOSMemory()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	prepareHeap(64 << 20)
	runtime.ReadMemStats(&after)
	if live := int64(after.HeapAlloc) - int64(before.HeapAlloc); live > 8<<20 {
		t.Errorf("prepareHeap kept %d MB live", live>>20)
	}
	resident := func(m *runtime.MemStats) int64 { return int64(m.HeapSys) - int64(m.HeapReleased) }
	if grew := resident(&after) - resident(&before); grew < 48<<20 {
		t.Errorf("prepareHeap made %d MB resident, want about 64", grew>>20)
	}
	FitMemoryLimit(80 << 20)
	runtime.ReadMemStats(&after)
	if kept := resident(&after) - resident(&before); kept > 16<<20 {
		t.Errorf("%d MB still resident after FitMemoryLimit", kept>>20)
	}
}
