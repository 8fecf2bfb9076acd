package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"

	"github.com/go-logr/logr"

	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
)

// The followed file: what was read last and what is served. An invalid,
// missing or unreadable file is reported once per content and the last
// good model stays served, so that a bad edit never tears the node down.
// Sums of the content make an event that changed nothing cost one read.

// File states, as the status line shows them.
const (
	fileOK         = "ok"
	fileInvalid    = "invalid"
	fileMissing    = "missing"
	fileUnreadable = "unreadable"
)

// topoFile is the topology file followed and the last good model read
// from it. Only the loop goroutine touches it.
type topoFile struct {
	path, node string
	m          *Metrics
	log        logr.Logger // the daemon's, for the datapath collector
	pinDir     string      // the node's datapath pin directory, for the collector

	spec    *spec.Resolved
	parser  spec.Parser // reuses the unchanged items of the last file read
	specSum [32]byte    // of the last good content (the one served)
	readSum [32]byte    // of the last content read, good or not
	state   string
	err     error // why the last content read is not served (state not ok)
}

// open reads the file at start. Without a valid file there is no last
// good state to serve: errors wrap ErrFile.
func (f *topoFile) open() error {
	if f.path == "" || f.path == "-" {
		return fmt.Errorf("%w: watch needs a file path (standard input cannot be watched)", ErrFile)
	}
	data, err := spec.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFile, err)
	}
	r, err := f.parser.Load(f.path, data)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFile, err)
	}
	if r.Node(f.node) == nil {
		return fmt.Errorf("%w %s: node %q is not in the file (nodes: %s)", ErrFile, f.path, f.node, r.NodeNames())
	}
	f.spec, f.specSum, f.readSum, f.state = r, sha256.Sum256(data), sha256.Sum256(data), fileOK
	f.m.ConfigOK.Set(1)
	return nil
}

// serveDatapath points the datapath metrics at pinDir and the pods of
// the model served.
func (f *topoFile) serveDatapath(pinDir string) {
	f.pinDir = pinDir
	f.m.datapath.set(f.pinDir, reconcile.PodNames(f.spec), f.log)
}

// pods is the number of pods the model served puts on the node.
func (f *topoFile) pods() int { return len(f.spec.PodsOn(f.node)) }

// reload reads the file. It reports whether the model served changed
// (or force, for SIGHUP, when the file is valid). An unreadable, missing
// or invalid file is logged once per content and the last good model
// is kept.
func (f *topoFile) reload(log logr.Logger, force bool) bool {
	data, err := spec.ReadFile(f.path)
	if err != nil {
		f.unreadable(log, err)
		return false
	}
	sum := sha256.Sum256(data)
	if sum == f.readSum && !force {
		return false // state and err still describe it
	}
	f.readSum = sum
	r, err := f.parser.Load(f.path, data)
	if err == nil && r.Node(f.node) == nil {
		err = fmt.Errorf("%s: node %q is not in the file (nodes: %s)", f.path, f.node, r.NodeNames())
	}
	if err != nil {
		f.state, f.err = fileInvalid, err
		f.m.ConfigReloads.WithLabelValues(fileInvalid).Inc()
		f.m.Errors.WithLabelValues(StageLoad).Inc()
		f.m.ConfigOK.Set(0)
		log.Error(err, "topology file is invalid; keeping the last good state", "file", f.path)
		return false
	}
	f.state, f.err = fileOK, nil
	f.m.ConfigReloads.WithLabelValues(fileOK).Inc()
	f.m.ConfigOK.Set(1)
	if sum == f.specSum {
		return force // back to the content already served
	}
	f.spec, f.specSum = r, sum
	f.m.datapath.set(f.pinDir, reconcile.PodNames(r), f.log)
	log.Info("topology file changed", "file", f.path, "sha256", hex.EncodeToString(sum[:6]),
		"pods", len(r.PodsOn(f.node)))
	return true
}

// unreadable records a file that cannot be read, logging it when its
// state changes.
func (f *topoFile) unreadable(log logr.Logger, err error) {
	st := fileUnreadable
	if errors.Is(err, fs.ErrNotExist) {
		st = fileMissing
	}
	if f.state != st {
		f.m.ConfigReloads.WithLabelValues(st).Inc()
		f.m.Errors.WithLabelValues(StageLoad).Inc()
		f.m.ConfigOK.Set(0)
		if st == fileMissing {
			log.Error(err, "topology file is gone; keeping the last good state until it is back", "file", f.path)
		} else {
			log.Error(err, "cannot read the topology file; keeping the last good state", "file", f.path)
		}
	}
	f.state, f.err, f.readSum = st, err, [32]byte{}
}
