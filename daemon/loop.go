package daemon

import (
	"context"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"

	"github.com/netreconcile/netreconcile/state"
)

// The loop is the daemon's one goroutine of decisions: it routes what
// arrives (kernel events, file system events, control requests, SIGHUP,
// the scheduler's timer) to the part that owns it, and runs a pass when
// the scheduler says one is due. Nothing it calls blocks on the outside
// except the pass.

func (d *daemon) loop(ctx, runCtx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			d.Log.Info("stopping; pods, routes and pinned state stay in place")
			d.n.Stopping("stopping; the datapath stays in place")
			return nil
		case <-d.kernel.wake:
			if d.kernel.drain() {
				d.sched.schedule(tKernel, time.Now())
			}
		case ev, ok := <-d.dirs.fw.Events:
			if ok {
				d.fsEvent(ev)
				d.drainFS()
			}
		case err, ok := <-d.dirs.fw.Errors:
			if ok {
				// An inotify queue overflow loses events: read everything
				// again rather than trust what was seen.
				d.m.Errors.WithLabelValues(StageWatch).Inc()
				d.Log.Error(err, "file watch")
				d.sched.schedule(tFile, time.Now())
				d.sched.schedule(tKernel, time.Now())
			}
		case n := <-d.store.news:
			d.storeEvent(n)
		case r := <-d.ctl.reqs:
			if d.ctl.accept(r) {
				d.sched.schedule(tApply, time.Now())
			}
		case <-d.Reload:
			d.Log.Info("SIGHUP: reading the file again")
			d.n.Reloading()
			d.sched.schedule(tReload, time.Now())
		case now := <-d.sched.C():
			d.fire(runCtx, now)
		}
	}
}

// fire runs what is due.
func (d *daemon) fire(ctx context.Context, now time.Time) {
	run := d.sched.take(now)
	if run&tDirs != 0 {
		d.syncDirs()
		run &^= tDirs
	}
	if run != 0 {
		d.pass(ctx, run)
		if run&tReload != 0 {
			d.n.Ready(d.status())
		}
	}
	d.sched.arm(time.Now())
}

// drainFS handles the file system events already queued, so that a
// backlog gathered during a long pass (our own apply creating many pod
// namespaces) is read at once rather than one per pass.
func (d *daemon) drainFS() {
	for {
		select {
		case ev, ok := <-d.dirs.fw.Events:
			if !ok {
				return
			}
			d.fsEvent(ev)
		default:
			return
		}
	}
}

// fsEvent acts on a file system event: the topology file's directory, or
// a watched namespace's name.
func (d *daemon) fsEvent(ev fsnotify.Event) {
	now := time.Now()
	news := d.dirs.sort(ev)
	if news.dirGone {
		d.sched.schedule(tDirs, now)
	}
	if news.file {
		d.sched.schedule(tFile, now)
	}
	if news.netns && d.kernel.netnsName(d.Log, news.key, news.gone, now) {
		d.sched.schedule(tKernel, now)
	}
}

// wanted maps the namespaces to watch (object namespace key -> reference):
// the node's and every pod namespace of the last good file on this node.
func (d *daemon) wanted() map[string]string {
	want := map[string]string{state.NodeNS: d.NodeNetns}
	for _, p := range d.file.spec.PodsOn(d.Node) {
		want[p.Netns] = p.Netns
	}
	return want
}

// syncWatches subscribes to the wanted namespaces that exist and watches
// the directories of the file and of the namespaces' names.
func (d *daemon) syncWatches(log logr.Logger) {
	d.kernel.subscribe(log, d.wanted())
	d.syncDirs()
}

// syncDirs watches the directories that matter now. A directory of the
// file watched again after the first pass may hide a change: read the
// file. One still missing is tried again later.
func (d *daemon) syncDirs() {
	refile, lost := d.dirs.sync(d.wanted())
	if refile && d.health.started {
		d.sched.schedule(tFile, time.Now())
	}
	if lost {
		d.sched.schedule(tDirs, time.Now())
	}
}

// status is the one-line summary for systemd's STATUS=.
func (d *daemon) status() string {
	return d.health.status(d.file.pods(), d.file.state)
}
