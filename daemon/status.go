package daemon

import (
	"sync/atomic"
	"time"
)

// Status is what a watch daemon says of its node when asked (`netreconcile
// status`), as of its last pass.
type Status struct {
	PID  int    `json:"pid"`
	Node string `json:"node"`
	File string `json:"file"`
	// State is "starting" (no pass ended yet), "converged" or "error" (the
	// last pass failed; it is retried).
	State        string    `json:"state"`
	LastPass     time.Time `json:"last_pass,omitzero"`
	LastDuration string    `json:"last_duration,omitempty"`
	// LastConverged is when a pass last converged.
	LastConverged time.Time `json:"last_converged,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	Pods          int       `json:"pods"`
	Objects       int       `json:"objects"`
	DriftRepairs  int       `json:"drift_repairs"`
	// FileState is "ok", or why the file is not served (the last good one
	// is).
	FileState string `json:"file_state"`
}

// statusBoard holds the latest Status for the control socket's
// goroutines; the loop replaces it whole.
type statusBoard struct{ p atomic.Pointer[Status] }

func (b *statusBoard) load() Status {
	if s := b.p.Load(); s != nil {
		return *s
	}
	return Status{State: "starting"}
}

// publish records the daemon's state after a pass (or a file check).
func (d *daemon) publish(p *passRun) {
	h := d.health
	s := &Status{Node: d.Node, File: d.ctl.file, Pods: d.file.pods(), Objects: h.managed, DriftRepairs: h.drifts,
		FileState: d.file.state}
	prev := d.board.load()
	s.LastPass, s.LastDuration, s.LastConverged = prev.LastPass, prev.LastDuration, prev.LastConverged
	if p != nil && p.dur > 0 {
		s.LastPass, s.LastDuration = p.start, p.dur.String()
	}
	switch {
	case h.lastErr != nil:
		s.State, s.LastError = "error", h.lastErr.Error()
	case !h.started:
		s.State = "starting"
	default:
		s.State = "converged"
		if p != nil && p.dur > 0 {
			s.LastConverged = p.start.Add(p.dur)
		}
	}
	d.board.p.Store(s)
}
