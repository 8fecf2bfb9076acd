package spec

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Load decodes and resolves a topology given as a set of sources (files,
// standard input, store entries; see Provider), reporting every problem of
// every source at once as *Errors, each at its own file:line:column. The
// Positions say where each field of the merged topology is written, for
// checks made outside this package (Positions.ErrorAt).
//
// The sources merge into one topology: their lists (namespaces, nodes,
// pods, services, policies) are concatenated in source order; every
// source gives apiVersion and kind (so that a stray YAML file in a
// directory is named, not merged), and exactly one gives cluster. A
// name defined in two sources is a duplicate, reported with both places.
func Load(srcs []Source) (*Resolved, *Positions, error) {
	var p Parser
	return p.load(srcs, false)
}

// LoadBytes is Load of one source held in memory; name is used in
// messages.
func LoadBytes(name string, data []byte) (*Resolved, error) {
	r, _, err := Load([]Source{{Name: name, Data: data}})
	return r, err
}

// LoadFiles is Load of files, directories or "-" (see Files), within
// DefaultMaxFileSize; for tests and tools that take no --max-file-size.
func LoadFiles(paths ...string) (*Resolved, error) {
	srcs, err := ReadFiles(DefaultMaxFileSize, paths...)
	if err != nil {
		return nil, err
	}
	r, _, err := Load(srcs)
	return r, err
}

// Parser loads sets of sources, remembering for each source of the last
// set its text and what it decoded to, so that loading the set again
// decodes only the lines that changed (the watch daemon's reload; see
// reparse.go). The zero Parser is ready; it is not safe for concurrent
// use. A source's Data is kept and must not be changed afterwards.
// Decoded items, and the whole Topology of a source whose text did not
// change, are shared between the Topologies it returns, which must
// therefore be treated as read-only (Resolve only reads them). It also
// remembers its last successful model and resolves the next set from it
// when only some pods, services or policies changed (incremental.go);
// the models it returns share what did not change, and are read-only
// too. A copied Parser shares that state: use the copy or the original,
// not both.
type Parser struct {
	files map[string]*itemCache // by source name
	last  *lastResolve          // the last successful load, for resolving by difference
	// deltas counts the loads resolved by difference (for tests).
	deltas int
}

// Load is the package-level Load, reusing the unchanged items of the
// previous set.
func (p *Parser) Load(srcs []Source) (*Resolved, *Positions, error) {
	return p.load(srcs, true)
}

// load parses each source (keeping items when keep is set), merges them
// and resolves the whole; when keep is set, from the last load where
// only some items changed (see incremental.go).
func (p *Parser) load(srcs []Source, keep bool) (*Resolved, *Positions, error) {
	parts, err := p.parse(srcs, keep)
	t, pos, err := assemble(parts, err)
	if keep && err == nil {
		if r := p.resolveDelta(t, pos); r != nil {
			return r, pos, nil
		}
	}
	r, err := resolveParsed(t, pos, err)
	if keep && err == nil {
		p.remember(t, pos, r)
	}
	return r, pos, err
}

// parse decodes every source: their parts, and the problems found as
// *Errors (another error stops at once). A source that cannot be decoded
// at all has a nil part, but the others are still decoded so that all
// their errors are reported.
func (p *Parser) parse(srcs []Source, keep bool) ([]part, error) {
	if len(srcs) == 0 {
		return nil, errors.New("load topology: no source")
	}
	files := map[string]*itemCache{}
	parts := make([]part, len(srcs))
	var errs Errors
	for i, src := range srcs {
		var ic *itemCache
		if keep {
			if ic = p.files[src.Name]; ic == nil {
				ic = &itemCache{}
			}
			files[src.Name] = ic
		}
		t, pos, err := parse(src.Name, src.Data, ic)
		if err != nil && !collect(&errs, err) {
			return nil, err
		}
		parts[i] = part{t, pos}
	}
	if keep {
		p.files = files // only the current set's sources stay
	}
	return parts, errs.orNil()
}

// items is every item of the sources' last texts, for the parse cache
// (keys hold the item's text, so sources can share them).
func (p *Parser) items() map[string]*item {
	all := map[string]*item{}
	for _, ic := range p.files {
		maps.Copy(all, ic.kept())
	}
	return all
}

// assemble merges decoded parts into one topology; err holds the
// problems decoding found (*Errors), to which merging adds its own.
func assemble(parts []part, err error) (*Topology, *Positions, error) {
	if err != nil && !errors.As(err, new(*Errors)) {
		return nil, nil, err
	}
	for _, pt := range parts {
		if pt.t == nil {
			return nil, nil, err
		}
	}
	if len(parts) == 1 {
		return parts[0].t, parts[0].pos, err
	}
	var errs Errors
	if err != nil {
		collect(&errs, err)
	}
	t, pos := merge(parts, &errs)
	return t, pos, errs.orNil()
}

// collect adds the problems of err, an *Errors, to errs; false when err
// is of another kind.
func collect(errs *Errors, err error) bool {
	var list *Errors
	if !errors.As(err, &list) {
		return false
	}
	errs.List = append(errs.List, list.List...)
	return true
}

// part is one decoded source of a set.
type part struct {
	t   *Topology
	pos *Positions
}

// mergedLists are the Topology's list fields, which sources concatenate.
var mergedLists = []string{"namespaces", "nodes", "pods", "services", "policies"}

// merge concatenates the parts' lists into one Topology and builds the
// Positions that place its paths back in their parts. Every part must
// give apiVersion and kind (checked here, each in its own file; the merged
// header is then the valid one) and one part alone cluster.
func merge(parts []part, errs *Errors) (*Topology, *Positions) {
	set := &posSet{starts: map[string][]int{}, cluster: -1}
	t := &Topology{APIVersion: APIVersion, Kind: Kind}
	out := reflect.ValueOf(t).Elem()
	fields := fieldsOf(reflect.TypeFor[Topology]())
	for i, pt := range parts {
		set.parts = append(set.parts, pt.pos)
		c := &checker{pos: pt.pos}
		c.header(pt.t)
		errs.List = append(errs.List, c.errs.List...)
		if pt.pos.Has("cluster") {
			if set.cluster >= 0 {
				first := set.parts[set.cluster]
				at := first.Lookup("cluster")
				errs.List = append(errs.List, pt.pos.ErrorAt("cluster", fmt.Sprintf(
					"cluster is already given in %s:%d; give it in one file of the set", first.File, at.Line)))
			} else {
				set.cluster, t.Cluster = i, pt.t.Cluster
			}
		}
		in := reflect.ValueOf(pt.t).Elem()
		for _, name := range mergedLists {
			f := out.Field(fields[name])
			set.starts[name] = append(set.starts[name], f.Len())
			f.Set(reflect.AppendSlice(f, in.Field(fields[name])))
		}
	}
	return t, &Positions{File: parts[0].pos.File, set: set}
}

// posSet places the paths of a merged topology in the parts they came
// from: pods[7] is pods[2] of the part whose pods start at 5.
type posSet struct {
	parts   []*Positions
	starts  map[string][]int // list → where each part's items start in the merged list
	cluster int              // the part that gives cluster; -1: none
}

// locate returns the part that holds path and the path in it.
func (s *posSet) locate(path string) (*Positions, string) {
	head, i, rest, indexed := splitIndex(path)
	starts, isList := s.starts[head]
	switch {
	case isList && indexed:
		k := max(0, partOf(starts, i))
		return s.parts[k], index(head, i-starts[k]) + rest
	case isList:
		// The list as a whole (at least one node...): the first part
		// that writes it.
		for _, p := range s.parts {
			if p.Has(head) {
				return p, path
			}
		}
	case head == "cluster" && s.cluster >= 0:
		return s.parts[s.cluster], path
	}
	return s.parts[0], path
}

// partOf returns the last k with starts[k] <= i (parts with no items
// have equal starts: the last of them is the one holding item i).
func partOf(starts []int, i int) int {
	k, _ := slices.BinarySearch(starts, i+1)
	return k - 1
}

// splitIndex splits "pods[3].ip" into "pods", 3, ".ip", true; a path with
// no index right after its first field gives indexed false.
func splitIndex(path string) (head string, i int, rest string, indexed bool) {
	end := strings.IndexAny(path, ".[")
	if end < 0 {
		return path, 0, "", false
	}
	head, rest = path[:end], path[end:]
	closing := strings.IndexByte(rest, ']')
	if rest[0] != '[' || closing < 0 {
		return head, 0, rest, false
	}
	i, err := strconv.Atoi(rest[1:closing])
	if err != nil {
		return head, 0, rest, false
	}
	return head, i, rest[closing+1:], true
}
