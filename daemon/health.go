package daemon

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// health is what the passes achieved, as the outside sees it: systemd's
// status line and watchdog, /healthz and /readyz, and the drift rule
// (changes needed although the file is the one last converged to). The
// loop writes it; ready and passStart are atomic because the HTTP
// handlers and the watchdog read them from their own goroutines.
type health struct {
	timeout time.Duration    // PassTimeout: a pass running longer is stuck
	gauge   prometheus.Gauge // the ready metric, kept equal to ready

	converged    bool       // the last pass converged ...
	convergedSum contentSum // ... to this file content
	lastErr      error
	started      bool // a pass has ended
	managed      int  // objects owned after the last converged pass
	drifts       int  // drift repairs since start

	ready     atomic.Bool
	passStart atomic.Int64 // unix nanoseconds of the pass in flight, 0 when idle
}

// begin and end bracket a pass, for healthy.
func (h *health) begin(start time.Time) { h.passStart.Store(start.UnixNano()) }
func (h *health) end()                  { h.passStart.Store(0) }

// failed records a failed pass: not ready until one converges.
func (h *health) failed(err error) {
	h.lastErr, h.converged = err, false
	h.ready.Store(false)
	h.gauge.Set(0)
}

// isDrift says whether a pass that needed changes (changed) to converge
// to the file content sum repaired drift: the file is what the last
// converged pass applied. Changes after a file change are not drift.
func (h *health) isDrift(sum contentSum, changed bool) bool {
	return h.converged && h.convergedSum == sum && changed
}

// succeeded records a pass that converged to sum, owning managed objects.
func (h *health) succeeded(sum contentSum, managed int) {
	h.managed = managed
	h.converged, h.convergedSum, h.lastErr = true, sum, nil
	h.ready.Store(true)
	h.gauge.Set(1)
}

// status is the one-line summary for systemd's STATUS=, given the pods
// the file puts on the node and the file's state.
func (h *health) status(pods int, fileState string) string {
	var b strings.Builder
	switch {
	case h.lastErr != nil:
		msg, _, _ := strings.Cut(h.lastErr.Error(), "\n")
		if len(msg) > 160 {
			msg = msg[:160] + "..."
		}
		b.WriteString("error (retrying): " + msg)
	case !h.started:
		b.WriteString("starting")
	default:
		b.WriteString("converged")
	}
	fmt.Fprintf(&b, "; %d pods, %d objects", pods, h.managed)
	if h.drifts > 0 {
		fmt.Fprintf(&b, "; %d drift repairs", h.drifts)
	}
	if fileState != fileOK {
		fmt.Fprintf(&b, "; file %s, serving the last good one", fileState)
	}
	return b.String()
}

// healthy is false only when a pass has been running for longer than
// PassTimeout: the loop is stuck. An idle loop waits in select, healthy.
func (h *health) healthy() bool {
	s := h.passStart.Load()
	return s == 0 || time.Since(time.Unix(0, s)) < h.timeout
}

// watchdog sends systemd's keep-alives every iv/2 while the loop is
// healthy, until ctx ends.
func (h *health) watchdog(ctx context.Context, iv time.Duration, n *Notifier) {
	t := time.NewTicker(iv / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if h.healthy() {
				n.Watchdog()
			}
		}
	}
}

// handler serves /metrics from reg, /healthz and /readyz.
func (h *health) handler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !h.healthy() {
			http.Error(w, "a reconcile pass has been running for more than "+h.timeout.String(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !h.ready.Load() {
			http.Error(w, "not converged (see the logs and netreconcile_errors_total)", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}
