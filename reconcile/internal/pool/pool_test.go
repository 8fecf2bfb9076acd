package pool

import (
	"errors"
	"sync/atomic"
	"testing"
)

func TestEachReusesWorkersAndStopsAfterAFailure(t *testing.T) {
	var made, closed atomic.Int32
	var ran atomic.Int32
	items := make([]int, 100)
	for i := range items {
		items[i] = i
	}
	err := Each(items, 3, func() *int { made.Add(1); return new(int) }, func(*int) { closed.Add(1) },
		func(w *int, i int) error {
			ran.Add(1)
			if i == 10 {
				return errors.New("item 10")
			}
			return nil
		})
	if err == nil || err.Error() != "item 10" {
		t.Fatalf("error %v, want item 10", err)
	}
	if made.Load() != 3 || closed.Load() != 3 {
		t.Errorf("workers made %d, closed %d; want 3 and 3", made.Load(), closed.Load())
	}
	if n := ran.Load(); n < 11 {
		t.Errorf("%d items ran: want those up to the failure", n)
	}
	// One at a time, which items follow the failure does not depend on
	// the scheduler (with three, the failing call may be held back while
	// the others run every item): item 11, handed over before item 10
	// failed, and no other.
	ran.Store(0)
	err = Each(items, 1, func() *int { return new(int) }, func(*int) {}, func(w *int, i int) error {
		ran.Add(1)
		if i == 10 {
			return errors.New("item 10")
		}
		return nil
	})
	if n := ran.Load(); err == nil || n != 12 {
		t.Errorf("one worker: %d items ran (error %v); want 12: none started after the failure but the one handed over", n, err)
	}
	if err := Each([]int{}, 3, func() *int { t.Fatal("no worker for no items"); return nil }, func(*int) {},
		func(*int, int) error { return nil }); err != nil {
		t.Fatal(err)
	}
}
