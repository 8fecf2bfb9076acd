package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/reconcile/apply"
	"github.com/netreconcile/netreconcile/reconcile/desired"
	"github.com/netreconcile/netreconcile/reconcile/observe"
	"github.com/netreconcile/netreconcile/reconcile/plan"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// Engine runs reconcile passes for one node.
type Engine struct {
	Cfg    *Config
	Log    logr.Logger
	Kernel *drivers.Kernel
	// Settle bounds how long verify waits for deletions the kernel
	// finishes asynchronously (namespace teardown).
	Settle time.Duration
	// Cache, when set, carries observations from one pass to the next
	// (watch), and from a plan to its verify (apply); nil reads
	// everything every time.
	Cache *Cache
}

// ErrNotConverged is wrapped when verify still finds changes after apply.
var ErrNotConverged = errors.New("did not converge")

// Result is the outcome of one pass.
type Result struct {
	Plan     *Plan
	Observed *Observed
	Applied  int
	desired  *state.State // what Plan diffed against, for verify
}

// uplink reads the uplink facts the desired state depends on.
func (e *Engine) uplink(r *spec.Resolved) (Uplink, error) {
	return observe.UplinkWith(e.Cache, e.Cfg.NodeNetns, e.Cfg.Uplink, peerAddrs(r, e.Cfg.Node))
}

// Plan observes the node and diffs it against the file. With observed
// given (plan --observed) it does no kernel access at all.
func (e *Engine) Plan(r *spec.Resolved, observed *Observed) (*Result, error) {
	node := r.Node(e.Cfg.Node)
	if node == nil {
		return nil, fmt.Errorf("node %q is not in the file (nodes: %s)", e.Cfg.Node, r.NodeNames())
	}
	e.Cfg.Uplink = node.Uplink
	var (
		up  Uplink
		k   *drivers.Kernel
		err error
	)
	if observed != nil {
		up, k, err = e.offlineFacts(r, observed)
	} else if up, err = e.uplink(r); err == nil {
		k, err = e.kernelFeatures(r)
	}
	if err != nil {
		return nil, err
	}
	if err := Preflight(e.Cfg, r, up, k); err != nil {
		return nil, err
	}
	if observed == nil && desired.WantsDatapath(r) && e.Cfg.BPFFS != "" {
		// Found at apply time, this would stop a run half-way.
		if err := datapath.CheckPinDir(e.Cfg.BPFFS); err != nil {
			return nil, fmt.Errorf("datapath pin directory (--bpffs): %w", err)
		}
	}
	start := time.Now()
	desired, err := Desired(e.Cfg, r, up)
	if err != nil {
		return nil, err
	}
	phases := []any{"desired", time.Since(start)}
	if observed == nil {
		start = time.Now()
		if observed, err = observeWith(e.Cfg, desired, e.Cache, nil); err != nil {
			return nil, err
		}
		phases = append(phases, "observe", time.Since(start))
		phases = append(phases, observed.Phases...)
		e.warn(observed)
	} else {
		// A saved observation's owners are those of the file it was
		// shown with: give them this file's, as an observation would.
		setOwners(observed.Owned, desired, serviceOwners(observed.Owned))
	}
	start = time.Now()
	p, err := Diff(e.Cfg.Node, desired, observed)
	if err != nil {
		return nil, err
	}
	describe(p, r, desired)
	e.Log.V(1).Info("planned", append(phases, "diff", time.Since(start), "changes", len(p.Changes))...)
	return &Result{Plan: p, Observed: observed, desired: desired}, nil
}

func (e *Engine) kernel() *drivers.Kernel {
	if e.Kernel == nil {
		e.Kernel = &drivers.Kernel{LinkTypes: map[string]bool{}}
	}
	return e.Kernel
}

// Apply converges the node to the file and verifies the result.
func (e *Engine) Apply(ctx context.Context, r *spec.Resolved) (*Result, error) {
	return e.ApplyChecked(ctx, r, nil)
}

// ApplyChecked is Apply that first shows the plan to check (when not
// nil), and changes nothing when check returns an error (apply of a
// saved plan: see CheckSaved).
func (e *Engine) ApplyChecked(ctx context.Context, r *spec.Resolved, check func(*Result) error) (*Result, error) {
	res, err := e.Plan(r, nil)
	if err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(res); err != nil {
			return nil, err
		}
	}
	if res.Plan.Empty() {
		return res, nil
	}
	// Recorded before the entries are written: every entry of ours in
	// the maps has its service named, also after a crash.
	if before, _ := namesServices(res.Plan); before {
		if err := e.Cfg.recordServices(res.desired, res.Observed.Owned); err != nil {
			return nil, err
		}
	}
	var early <-chan observation
	res.Applied, early, err = e.apply(ctx, res)
	// Verify observes again against the same desired state: the file and
	// the uplink facts it was computed from have not changed since. With a
	// cache, only what the plan touched is read again, and a plan of map
	// entries alone, each acknowledged by the kernel, needs no reading.
	if err == nil && early == nil && e.Cache.Applied(res.Plan) {
		return res, e.converged(res)
	}
	replan := func() (*Plan, error) {
		start := time.Now()
		var (
			obs *Observed
			err error
		)
		if early != nil {
			o := <-early
			obs, err, early = o.obs, o.err, nil
		} else {
			obs, err = observeWith(e.Cfg, res.desired, e.Cache, nil)
		}
		if err != nil {
			return nil, err
		}
		phases := append([]any{"observe", time.Since(start)}, obs.Phases...)
		start = time.Now()
		p, err := Diff(e.Cfg.Node, res.desired, obs)
		if err == nil {
			e.Log.V(1).Info("verified", append(phases, "diff", time.Since(start), "left", len(p.Changes))...)
		}
		if err == nil && !p.Empty() {
			e.Cache.InvalidateAll() // the kernel is still settling: read it all again
		}
		return p, err
	}
	if err != nil {
		e.Cache.InvalidateAll()
		if verr := e.verify(ctx, replan, 0); verr != nil {
			return res, fmt.Errorf("%w; %d of %d changes applied; left: %v", err, res.Applied, res.Plan.StepCount(), verr)
		}
		return res, err
	}
	if err := e.verify(ctx, replan, e.settle()); err != nil {
		e.Cache.InvalidateAll()
		return res, err
	}
	return res, e.converged(res)
}

// converged drops the records a verified pass made obsolete: pending
// links (every link of ours carries its mark) and the owners of service
// entries that are gone (when it deleted some: a failed pass may leave
// owners of entries gone in the record until then, which names nothing).
func (e *Engine) converged(res *Result) error {
	err := e.Cfg.records().ClearAllPending()
	if _, after := namesServices(res.Plan); after {
		err = errors.Join(err, e.Cfg.recordServices(res.desired, nil))
	}
	return err
}

// apply runs res.Plan. With a cache, the attachments it makes to pods
// that are reachable already run last (see splitAttaches): each waits out
// an RCU grace period in the kernel (tcx), and meanwhile verify's first
// observation is read, returned in early. What the
// attachments change is written through to the cache when they are
// made, and only then does that observation take the datapath from it.
func (e *Engine) apply(ctx context.Context, res *Result) (applied int, early <-chan observation, err error) {
	rest, atts := plan.SplitAttaches(res.Plan)
	if e.Cache == nil || len(atts.Steps()) == 0 {
		applied, err = Apply(ctx, e.Cfg, res.Plan, e.Log)
		return applied, nil, err
	}
	if applied, err = Apply(ctx, e.Cfg, rest, e.Log); err != nil {
		return applied, nil, err
	}
	e.Cache.Applied(rest)
	dpReady := make(chan struct{})
	ch := make(chan observation, 1)
	go func() {
		obs, err := observeWith(e.Cfg, res.desired, e.Cache, dpReady)
		ch <- observation{obs, err}
	}()
	n, err := apply.From(ctx, e.Cfg.applyConfig(), atts, e.Log, applied)
	if err == nil {
		e.Cache.Applied(atts)
	}
	close(dpReady)
	if err != nil {
		<-ch // a Cache serves one pass at a time
		return applied + n, nil, err
	}
	return applied + n, ch, nil
}

// observation is an Observe's outcome.
type observation struct {
	obs *Observed
	err error
}

func (e *Engine) settle() time.Duration {
	if e.Settle == 0 {
		return 10 * time.Second
	}
	return e.Settle
}

// verify re-plans until the plan is empty. It waits (up to settle) only
// while what is left are deletions the kernel performs asynchronously.
func (e *Engine) verify(ctx context.Context, plan func() (*Plan, error), settle time.Duration) error {
	deadline := time.Now().Add(settle)
	for {
		p, err := plan()
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		if p.Empty() {
			return nil
		}
		if !onlyDeletions(p) || time.Now().After(deadline) || ctx.Err() != nil {
			var left []string
			for _, c := range p.Changes {
				left = append(left, string(c.Action)+" "+c.Kind+" "+c.Key)
			}
			return fmt.Errorf("%w: %s", ErrNotConverged, strings.Join(left, "; "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// namesServices reports whether p changes what the services record says:
// service entries created, deleted, or given another owner (an entry's
// new backends leave its line as it is). Written before the entries when
// p names new owners, cleared of the deleted ones once converged.
func namesServices(p *Plan) (before, after bool) {
	for _, c := range p.Changes {
		if c.Kind != state.KindService.String() {
			continue
		}
		switch {
		case c.Action == Delete:
			after = true
		case c.Action == Create || c.Observed == nil || c.Desired == nil || c.Observed.Owner() != c.Desired.Owner():
			before, after = true, true
		}
	}
	return before, after
}

func onlyDeletions(p *Plan) bool {
	for _, c := range p.Changes {
		if c.Action != Delete {
			return false
		}
	}
	return true
}

// Destroy removes everything netreconcile owns on the node and restores
// the sysctls it changed. It needs nothing from the file but the node's
// existence, so a broken file can still be cleaned up after.
func (e *Engine) Destroy(ctx context.Context) (*Result, error) {
	res, err := e.PlanDestroy()
	if err != nil {
		return nil, err
	}
	p := res.Plan
	e.Cache.InvalidateAll()
	if !p.Empty() {
		if res.Applied, err = Apply(ctx, e.Cfg, p, e.Log); err != nil {
			return res, err
		}
		replan := func() (*Plan, error) {
			res, err := e.destroyPlan()
			if err != nil {
				return nil, err
			}
			return res.Plan, nil
		}
		if err := e.verify(ctx, replan, e.settle()); err != nil {
			return res, err
		}
	}
	// Nothing of ours is left: no pending link, no service entry.
	return res, errors.Join(e.Cfg.records().ClearAllPending(), e.Cfg.recordServices(state.New(), nil))
}

// PlanDestroy observes the node and plans the removal of everything
// netreconcile owns on it (destroy --dry-run); it changes nothing.
func (e *Engine) PlanDestroy() (*Result, error) {
	res, err := e.destroyPlan()
	if err == nil {
		e.warn(res.Observed)
	}
	return res, err
}

func (e *Engine) destroyPlan() (*Result, error) {
	empty := state.New()
	obs, err := Observe(e.Cfg, empty)
	if err != nil {
		return nil, err
	}
	p, err := Diff(e.Cfg.Node, empty, obs)
	if err != nil {
		return nil, err
	}
	return &Result{Plan: p, Observed: obs, desired: empty}, nil
}

// warn logs the state records an observation ignored.
func (e *Engine) warn(obs *Observed) {
	for _, w := range obs.Warnings {
		e.Log.Info("warning: " + w)
	}
}

// Show observes what netreconcile owns on the node, and the datapath's
// defences (Defences). With a file it also observes the pod namespaces
// the file names, and names the defended addresses by their pods.
func (e *Engine) Show(r *spec.Resolved) (*Observed, error) {
	desired := state.New()
	if r != nil {
		if n := r.Node(e.Cfg.Node); n != nil {
			e.Cfg.Uplink = n.Uplink
			up, err := e.uplink(r)
			if err != nil {
				return nil, err
			}
			if d, err := Desired(e.Cfg, r, up); err == nil {
				desired = d
			}
		}
	}
	obs, err := Observe(e.Cfg, desired)
	if err != nil {
		return nil, err
	}
	if obs.Facts, err = e.nodeFacts(obs.Owned); err != nil {
		return nil, err
	}
	nameFrontends(obs)
	if obs.Defences, err = InspectDefences(e.Cfg.BPFFS, PodNames(r)); err != nil {
		return nil, err
	}
	return obs, nil
}
