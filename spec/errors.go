package spec

import (
	"cmp"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Sentinel errors, matched with errors.Is through *Errors and *Error.
var (
	// ErrInvalid marks every problem found in a file's content: a field of
	// the wrong type, an unknown or duplicate field, or a semantic error.
	ErrInvalid = errors.New("invalid topology")
	// ErrTooLarge marks a file over MaxFileSize.
	ErrTooLarge = errors.New("topology file too large")
	// ErrNotYAML marks a file that is not a single well-formed YAML document.
	ErrNotYAML = errors.New("not a YAML document")
	// ErrTooManyAliases marks a file whose aliases expand to more nodes
	// than maxAliasExpansion (a "billion laughs" document).
	ErrTooManyAliases = errors.New("too many alias expansions")
)

// Error is one problem in a topology file. Line and Column are 1-based and
// zero when unknown; Path is the field path (pods[2].ip) or empty for
// problems with the file as a whole.
type Error struct {
	File   string
	Line   int
	Column int
	Path   string
	Msg    string
	// Err is the sentinel this error matches (ErrInvalid, ErrNotYAML...).
	Err error
}

// Error formats the problem as `file:line:column: field.path: message`,
// leaving out the parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" || e.Line > 0 {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
			if e.Column > 0 {
				b.WriteString(":" + strconv.Itoa(e.Column))
			}
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the sentinel the error matches.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found in a set of files, sorted by file and
// position. It is the
// error type returned by Parse, Resolve and Load for bad input, so that a
// caller can print them all (one per line) or inspect them.
type Errors struct {
	List []*Error
}

// Error prints one problem per line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, err := range e.List {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes each problem to errors.Is and errors.As.
func (e *Errors) Unwrap() []error {
	out := make([]error, len(e.List))
	for i, err := range e.List {
		out[i] = err
	}
	return out
}

// sort orders the problems by position, then path, so that output is
// stable and reads top to bottom like the file.
func (e *Errors) sort() {
	slices.SortStableFunc(e.List, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Column, b.Column),
			cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.Msg, b.Msg),
		)
	})
}

// orNil returns e as an error, or nil when it holds no problem; it keeps a
// typed nil pointer from becoming a non-nil error.
func (e *Errors) orNil() error {
	if e == nil || len(e.List) == 0 {
		return nil
	}
	e.sort()
	return e
}

// Pos is a 1-based line and column in the file.
type Pos struct {
	Line, Column int
}

// Positions maps field paths (pods[2].ip, services[0].ports[1].targetPort,
// pods[0].labels[app]) to where their values are written, so that errors
// found after decoding still point into the file.
type Positions struct {
	// File is the name errors are reported under.
	File  string
	paths map[string]Pos
	seqs  map[string]*seqItems // top-level sequences decoded item by item (split.go)
	data  []byte               // the file, when seqs is set: their items' text
	// set, for a topology merged from several sources, places each path
	// in its source's Positions (load.go); the fields above are then unused.
	set *posSet
}

// Has reports whether the field at path was written in the file. It tells
// an absent field from one written with its zero value.
func (p *Positions) Has(path string) bool { return p.has(path, false) }

// writtenZero is Has for a field whose value is its type's zero: it
// tells an explicit 0 from an absent field without decoding split items
// again (their zero-valued fields are recorded as they are decoded).
func (p *Positions) writtenZero(path string) bool { return p.has(path, true) }

// has is Has; with zeros, split items answer from their zero-valued
// fields alone.
func (p *Positions) has(path string, zeros bool) bool {
	if p == nil {
		return false
	}
	if p.set != nil {
		q, local := p.set.locate(path)
		return q.has(local, zeros)
	}
	if _, found, inSeq := p.lookupItem(path, zeros); inSeq {
		return found
	}
	_, ok := p.paths[path]
	return ok
}

// zeroPaths flattens what writtenZero answers from into one map, for a
// Positions of those paths alone (the parse cache keeps it): the paths
// of fields outside split sequences, and those written with a zero value
// inside them. nil when there are none.
func (p *Positions) zeroPaths() map[string]Pos {
	out := maps.Clone(p.paths)
	for seq, items := range p.seqs {
		for i, zeros := range items.zeros {
			for rel, pos := range zeros {
				path := index(seq, i)
				if rel != "" {
					path += "." + rel
				}
				pos.Line += items.spans[i].line - 1
				out[path] = pos
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Lookup returns the position of path or, when the field is not in the file
// (a missing required field, a defaulted value), of the closest enclosing
// field: an error about something missing points at the mapping that
// should hold it. The zero Pos means nothing is known.
func (p *Positions) Lookup(path string) Pos {
	if p == nil {
		return Pos{}
	}
	if p.set != nil {
		q, local := p.set.locate(path)
		return q.Lookup(local)
	}
	for {
		if pos, found, inSeq := p.lookupItem(path, false); found {
			return pos
		} else if !inSeq {
			if pos, ok := p.paths[path]; ok {
				return pos
			}
		}
		if path == "" {
			return Pos{}
		}
		path = parentPath(path)
	}
}

// ErrorAt builds an Error about the field at path, placed with Lookup, for
// checks made outside this package that should still point into the file.
// p may be nil.
func (p *Positions) ErrorAt(path, msg string) *Error {
	e := &Error{Path: path, Msg: msg, Err: ErrInvalid}
	if p != nil && p.set != nil {
		// The path in its own file: pods[7] of the set may be pods[2]
		// of b.yaml.
		p, e.Path = p.set.locate(path)
	}
	if p != nil {
		e.File = p.File
		pos := p.Lookup(e.Path)
		e.Line, e.Column = pos.Line, pos.Column
	}
	return e
}

// parentPath drops the last element of a field path: "a.b[2]" → "a.b",
// "a.b" → "a", "a" → "".
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return ""
}

// isUnder reports whether path is parent or lies inside it.
func isUnder(path, parent string) bool {
	if parent == "" || path == parent {
		return true
	}
	if !strings.HasPrefix(path, parent) {
		return false
	}
	next := path[len(parent)]
	return next == '.' || next == '['
}

// join appends a field name to a path.
func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// index appends a sequence index to a path.
func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// key appends a map key to a path, Kubernetes style: labels[app].
func key(path, k string) string {
	return path + "[" + k + "]"
}
