package daemon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"

	"github.com/go-logr/logr"

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
	set    spec.Set // -f: files, directories and store prefixes
	max    int64    // --max-file-size
	node   string
	m      *Metrics
	log    logr.Logger // the daemon's, for the datapath collector
	pinDir string      // the node's datapath pin directory, for the collector

	spec    *spec.Resolved
	parser  spec.Parser // reuses the unchanged items of the last set read, per file
	specSum contentSum  // of the last good content (the one served)
	readSum contentSum  // of the last content read, good or not
	state   string
	err     error // why the last content read is not served (state not ok)
}

func newTopoFile(cfg Config, set spec.Set, m *Metrics) *topoFile {
	f := &topoFile{set: set, max: cfg.MaxFileSize, node: cfg.Node, m: m, log: cfg.Log}
	if cfg.Parser != nil {
		f.parser = *cfg.Parser
	}
	return f
}

// open reads the file at start. Without a valid file there is no last
// good state to serve: errors wrap ErrFile.
func (f *topoFile) open() error {
	if len(f.set) == 0 || f.set.Paths().Stdin() {
		return fmt.Errorf("%w: watch needs file or directory paths or etcd prefixes (standard input cannot be watched)", ErrFile)
	}
	srcs, err := f.set.Sources(f.maxSize())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFile, err)
	}
	r, _, err := f.parser.Load(srcs)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFile, err)
	}
	if r.Node(f.node) == nil {
		return fmt.Errorf("%w %s: node %q is not in the file (nodes: %s)", ErrFile, f.set, f.node, r.NodeNames())
	}
	sum := sumOf(srcs)
	f.spec, f.specSum, f.readSum, f.state = r, sum, sum, fileOK
	f.m.ConfigOK.Set(1)
	return nil
}

// serveDatapath points the datapath metrics at pinDir and the pods of
// the model served.
func (f *topoFile) serveDatapath(pinDir string) {
	f.pinDir = pinDir
	f.m.datapath.set(f.pinDir, f.spec, f.log)
}

// pods is the number of pods the model served puts on the node.
func (f *topoFile) pods() int { return len(f.spec.PodsOn(f.node)) }

// reload reads the file. It reports whether the model served changed
// (or force, for SIGHUP, when the file is valid). An unreadable, missing
// or invalid file is logged once per content and the last good model
// is kept.
func (f *topoFile) reload(log logr.Logger, force bool) bool {
	srcs, err := f.set.Sources(f.maxSize())
	if err != nil {
		f.unreadable(log, err)
		return false
	}
	sum := sumOf(srcs)
	if sum == f.readSum && !force {
		return false // state and err still describe it
	}
	f.readSum = sum
	r, _, err := f.parser.Load(srcs)
	if err == nil && r.Node(f.node) == nil {
		err = fmt.Errorf("%s: node %q is not in the file (nodes: %s)", f.set, f.node, r.NodeNames())
	}
	if err != nil {
		f.state, f.err = fileInvalid, err
		f.m.ConfigReloads.WithLabelValues(fileInvalid).Inc()
		f.m.Errors.WithLabelValues(StageLoad).Inc()
		f.m.ConfigOK.Set(0)
		log.Error(err, "topology file is invalid; keeping the last good state", "files", f.set.String())
		return false
	}
	f.state, f.err = fileOK, nil
	f.m.ConfigReloads.WithLabelValues(fileOK).Inc()
	f.m.ConfigOK.Set(1)
	if sum == f.specSum {
		return force // back to the content already served
	}
	f.spec, f.specSum = r, sum
	f.m.datapath.set(f.pinDir, r, f.log)
	log.Info("topology file changed", "files", f.set.String(), "sources", len(srcs), "bytes", sum.size,
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
			log.Error(err, "topology file is gone; keeping the last good state until it is back", "files", f.set.String())
		} else {
			log.Error(err, "cannot read the topology file; keeping the last good state", "files", f.set.String())
		}
	}
	f.state, f.err, f.readSum = st, err, contentSum{}
}

// storeDown records that a store of the set cannot be reached, without
// reading it: the status says so until the set is read again (whatever
// it then holds, as readSum no longer matches).
func (f *topoFile) storeDown(err error) {
	f.state, f.err, f.readSum = fileUnreadable, err, contentSum{}
}

// maxSize is --max-file-size, defaulted.
func (f *topoFile) maxSize() int64 {
	if f.max <= 0 {
		return spec.DefaultMaxFileSize
	}
	return f.max
}

// contentSum identifies the content of a set: whether a read found what
// was read before. A seeded 64-bit hash (a collision is out of reach of
// whoever writes the files) reads a cluster's 10 MB in a millisecond,
// where SHA-256 took six on every reload.
type contentSum struct {
	hash uint64
	size int64
}

// sumSeed is this process's seed: the sums are compared within it only.
var sumSeed = maphash.MakeSeed()

// sumOf digests a set: its sources' names and bytes, in order.
func sumOf(srcs []spec.Source) contentSum {
	var h maphash.Hash
	h.SetSeed(sumSeed)
	var size int64
	for _, src := range srcs {
		var n [16]byte
		binary.LittleEndian.PutUint64(n[:8], uint64(len(src.Name)))
		binary.LittleEndian.PutUint64(n[8:], uint64(len(src.Data)))
		h.Write(n[:])
		h.WriteString(src.Name)
		h.Write(src.Data)
		size += int64(len(src.Data))
	}
	return contentSum{hash: h.Sum64(), size: size}
}
