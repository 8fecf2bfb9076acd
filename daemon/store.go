package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/netreconcile/netreconcile/spec"
)

// storeWatch runs the watches of the set's stores (an etcd prefix) and
// hands what they report to the loop: a change (read the set again) or
// an outage, during which the last good state stays served. The stores
// retry by themselves; the loop only logs an outage once and reads the
// set when the store is back.
type storeWatch struct {
	news chan storeNews
	wg   sync.WaitGroup
	down map[string]bool // stores whose outage was logged and is not over (loop only)
}

// storeNews is one report of a store: err nil for a change.
type storeNews struct {
	store string
	err   error
}

// watchStores starts a goroutine per watcher, until ctx ends.
func watchStores(ctx context.Context, ws []spec.Watcher) *storeWatch {
	s := &storeWatch{news: make(chan storeNews, 16), down: map[string]bool{}}
	for _, w := range ws {
		send := func(err error) {
			select {
			case s.news <- storeNews{store: w.String(), err: err}:
			case <-ctx.Done():
			}
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := w.Watch(ctx, send); err != nil && ctx.Err() == nil {
				send(fmt.Errorf("watch %s: %w", w, err))
			}
		}()
	}
	return s
}

// wait waits for the watches to end (ctx ended).
func (s *storeWatch) wait() { s.wg.Wait() }

// storeEvent acts on a store's report.
func (d *daemon) storeEvent(n storeNews) {
	if n.err != nil {
		if !d.store.down[n.store] {
			d.store.down[n.store] = true
			d.m.Errors.WithLabelValues(StageWatch).Inc()
			d.Log.Error(n.err, "topology store cannot be followed; keeping the last good state, retrying", "source", n.store)
			d.file.storeDown(n.err)
			d.publish(nil)
			d.n.Status(d.status())
		}
		return
	}
	if d.store.down[n.store] {
		delete(d.store.down, n.store)
		d.Log.Info("topology store is back; reading it", "source", n.store)
	}
	d.sched.schedule(tFile, time.Now())
}
