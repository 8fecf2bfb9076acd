// Package pool runs per-pod work on a few workers, each holding state that
// is costly to make (netlink handles, namespace file descriptors) and is
// reused from item to item.
package pool

import (
	"errors"
	"sync"

	"golang.org/x/sync/errgroup"
)

// Each calls do(w, item) for every item, at most n at a time, each call with
// one of the workers newWorker makes (one per concurrent call, reused, and
// given to done at the end). After a failure no further item starts; those in
// flight finish. Every failure is returned.
func Each[W, T any](items []T, n int, newWorker func() W, done func(W), do func(W, T) error) error {
	idle := make(chan W, n)
	for range min(n, len(items)) {
		w := newWorker()
		defer done(w)
		idle <- w
	}
	var (
		g    errgroup.Group
		mu   sync.Mutex
		errs []error
	)
	g.SetLimit(n)
	for _, item := range items {
		mu.Lock()
		failed := len(errs) > 0
		mu.Unlock()
		if failed {
			break
		}
		g.Go(func() error {
			w := <-idle
			defer func() { idle <- w }()
			if err := do(w, item); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait() // the failures are in errs
	return errors.Join(errs...)
}
