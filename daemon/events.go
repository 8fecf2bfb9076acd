package daemon

import (
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/state"
)

// kernelEvents owns what the kernel tells the daemon: the subscriptions
// of the watched namespaces (kernel.go), the observation cache their
// events invalidate, and the count of events the next pass answers (for
// its log line and the drift repair latency). Events arrive on the
// subscriptions' goroutines into an inbox under mu, and wake the loop,
// which drains the inbox into the counts; the rest is the loop's.
type kernelEvents struct {
	w         *kernelWatcher
	cache     *reconcile.Cache // observations kept between passes
	m         *Metrics
	nodeNetns string // the node's namespace reference

	mu      sync.Mutex
	inFirst time.Time
	inKinds map[string]int // "ns/kind" -> count since the last drain
	wake    chan struct{}

	first  time.Time      // first kernel event not yet handled by a pass
	counts map[string]int // "ns/kind" -> count, for the next pass
}

func newKernelEvents(m *Metrics, nodeNetns string) *kernelEvents {
	k := &kernelEvents{cache: reconcile.NewCache(), m: m, nodeNetns: nodeNetns, wake: make(chan struct{}, 1)}
	k.w = newKernelWatcher(k.on)
	return k
}

func (k *kernelEvents) close() { k.w.close() }

// on runs on a subscription's goroutine.
func (k *kernelEvents) on(ev KernelEvent) {
	k.m.KernelEvents.WithLabelValues(ev.Kind).Inc()
	switch ev.Kind {
	case EventOverflow:
		k.cache.InvalidateAll() // events were lost: anything may have changed
	case EventLink:
		k.cache.InvalidateLink(ev.NS, ev.Index)
	case EventAddr, EventRoute, EventNeigh:
		k.cache.InvalidateObjects(ev.NS)
	case EventTC:
		k.cache.InvalidateAttachments()
	default:
		k.cache.Invalidate(ev.NS)
	}
	k.mu.Lock()
	if k.inFirst.IsZero() {
		k.inFirst = ev.At
	}
	if k.inKinds == nil {
		k.inKinds = map[string]int{}
	}
	k.inKinds[state.NSLabel(ev.NS)+"/"+ev.Kind]++
	k.mu.Unlock()
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// drain moves the inbox into the counts of the next pass. It reports
// whether there was anything: then a pass is due.
func (k *kernelEvents) drain() bool {
	k.mu.Lock()
	first, kinds := k.inFirst, k.inKinds
	k.inFirst, k.inKinds = time.Time{}, nil
	k.mu.Unlock()
	if first.IsZero() {
		return false
	}
	if k.counts == nil {
		k.counts = map[string]int{}
	}
	for kind, n := range kinds {
		k.counts[kind] += n
	}
	if k.first.IsZero() {
		k.first = first
	}
	return true
}

// netnsName handles a watched namespace's name that appeared, or went
// away (gone). It reports whether this is news: a pass is then due.
func (k *kernelEvents) netnsName(log logr.Logger, key string, gone bool, now time.Time) bool {
	// A name that still names the namespace we subscribed to is old
	// news: typically our own pass created it, and the event was queued
	// behind the pass.
	ref := key
	if key == state.NodeNS {
		ref = k.nodeNetns
	}
	if !gone && k.w.known(key, ref) {
		return false
	}
	// Our subscription holds a deleted namespace alive (and its veths
	// with it): let it go now, so the kernel tears it down and the pass
	// sees it gone.
	k.m.KernelEvents.WithLabelValues(EventNetns).Inc()
	if k.counts == nil {
		k.counts = map[string]int{}
	}
	k.counts[state.NSLabel(key)+"/"+EventNetns]++
	if k.w.drop(key, ref) {
		log.V(1).Info("netns went away", "netns", state.NSLabel(key))
	}
	if k.first.IsZero() {
		k.first = now
	}
	return true
}

// take hands the events gathered so far to a pass, and starts anew.
func (k *kernelEvents) take() (first time.Time, counts map[string]int) {
	first, counts = k.first, k.counts
	k.first, k.counts = time.Time{}, nil
	return first, counts
}

// prepare readies the kernel side of a pass over the namespaces in want
// (key -> reference): subscriptions no longer wanted, or whose namespace
// went, are closed first (they would hold it alive), and a full pass
// trusts no cached observation.
func (k *kernelEvents) prepare(want map[string]string, full bool) {
	k.w.prune(want)
	if full {
		k.cache.InvalidateAll()
	}
}

// owns tells the subscriptions which neighbour IPs netreconcile owns, by
// namespace key: events about other dynamic neighbours are not news.
func (k *kernelEvents) owns(neighs map[string]map[netip.Addr]bool) { k.w.setNeighs(neighs) }

// subscribe subscribes to the namespaces in want that exist.
func (k *kernelEvents) subscribe(log logr.Logger, want map[string]string) {
	added, err := k.w.sync(want)
	// What changed between a namespace's last observation and its new
	// subscription raised no event: read it again next time.
	for _, key := range added {
		k.cache.Invalidate(key)
	}
	if err != nil {
		k.cache.InvalidateAll() // an unwatched namespace cannot be trusted
		k.m.Errors.WithLabelValues(StageSubscribe).Inc()
		log.Error(err, "subscribe to kernel events")
	}
	k.m.Watched.Set(float64(k.w.count()))
}
