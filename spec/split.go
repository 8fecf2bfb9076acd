package spec

import (
	"bytes"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// Large topologies are long block sequences at the top level (pods,
// services, policies) of small, independent items. Parsing them item by
// item lets the items be parsed on every CPU, and lets a Parser reuse the
// items of the previous file that did not change: the watch daemon then
// pays for the item a user edited, not for the whole file.
//
// The split is an optimisation only. It applies to files in plain block
// style (no anchors, aliases, tags, directives or document markers), and
// whenever any part of the file does not parse or decode cleanly the whole
// file is parsed again as one document, so that errors and their positions
// always come from one path (Parse's fuzz test holds both paths equal).

// itemCache remembers the decoded items of the last text of one source
// (see Parser). The zero itemCache is ready.
type itemCache struct {
	items map[string]*item // seqKey "\x00" item text → decoded item
}

// item is one decoded element of a top-level sequence, with the positions
// of its fields written with a zero value, relative to its first line
// (line 1). The positions of the others are found again when an error
// needs one (Positions.lookupItem): recording them all cost a tenth of
// decoding, and most of the watch daemon's memory for its parsed file.
type item struct {
	key   string // its key in an itemCache, kept so a reused item costs no new key
	value reflect.Value
	zeros map[string]Pos // path below the element ("" is the element) → position; nil: none
}

// span is one item's text: data[start:end], starting on line (1-based).
type span struct {
	start, end, line int
}

// seq is a top-level key whose value is a block sequence.
type seq struct {
	key      string
	keyStart int // offset of the key's line
	keyEnd   int // offset past the key's line, before its newline
	items    []span
}

// splitSeqs finds the top-level block sequences of data. ok is false when
// the file is not plain enough to split safely.
func splitSeqs(data []byte) (seqs []seq, ok bool) {
	if bytes.ContainsAny(data, "&*!") {
		return nil, false // anchors, aliases, tags: one document only
	}
	var cur *seq
	indent := -1 // the current sequence's indentation, once known
	closeItem := func(end int) {
		if cur != nil && len(cur.items) > 0 && cur.items[len(cur.items)-1].end < 0 {
			cur.items[len(cur.items)-1].end = end
		}
	}
	closeSeq := func(end int) {
		closeItem(end)
		if cur != nil && len(cur.items) > 0 {
			seqs = append(seqs, *cur)
		}
		cur, indent = nil, -1
	}
	line := 0
	for off := 0; off < len(data); {
		line++
		nl := bytes.IndexByte(data[off:], '\n')
		end := len(data)
		if nl >= 0 {
			end = off + nl
		}
		text := bytes.TrimSuffix(data[off:end], []byte("\r"))
		next := end + 1
		trimmed := bytes.TrimLeft(text, " ")
		ind := len(text) - len(trimmed)
		isItem := bytes.HasPrefix(trimmed, []byte("- ")) || bytes.Equal(trimmed, []byte("-"))
		switch {
		case len(trimmed) == 0 || trimmed[0] == '#':
			// Blank and comment lines belong to whatever is open.
		case ind == 0 && (bytes.HasPrefix(text, []byte("---")) || bytes.HasPrefix(text, []byte("...")) || text[0] == '%'):
			return nil, false
		case ind == 0 && !isItem:
			closeSeq(off)
			if k, ok := blockKey(text); ok {
				cur = &seq{key: k, keyStart: off, keyEnd: off + len(text)}
			}
		case cur == nil:
			if ind == 0 {
				return nil, false // a top-level sequence, not a mapping
			}
		case indent < 0:
			if !isItem {
				cur = nil // a nested mapping or a scalar: not split
				break
			}
			indent = ind
			cur.items = append(cur.items, span{start: off, end: -1, line: line})
		case ind == indent && isItem:
			closeItem(off)
			cur.items = append(cur.items, span{start: off, end: -1, line: line})
		case ind <= indent:
			return nil, false
		}
		off = next
	}
	closeSeq(len(data))
	return seqs, true
}

// blockKey returns k for a line "k:" (a plain key with no value on its
// line, maybe a comment).
func blockKey(line []byte) (string, bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return "", false
	}
	for j, c := range line[:i] {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (j == 0 || c != '_' && (c < '0' || c > '9')) {
			return "", false
		}
	}
	rest := bytes.TrimLeft(line[i+1:], " ")
	if len(rest) > 0 && (rest[0] != '#' || len(rest) == len(line[i+1:])) {
		return "", false
	}
	return string(line[:i]), true
}

// splitParse decodes data as head (everything but the sequences' items,
// each sequence written as []) plus the items, parsed in groups on every
// CPU, or reused from p. ok is false when anything did not parse or decode
// cleanly: the caller then parses data as one document.
func splitParse(name string, data []byte, seqs []seq, p *itemCache) (*Topology, *Positions, bool) {
	fields := fieldsOf(reflect.TypeFor[Topology]())
	var head []byte
	last := 0
	for _, s := range seqs {
		if _, known := fields[s.key]; !known {
			return nil, nil, false // the one-document parse names the field
		}
		head = append(head, data[last:s.keyStart]...)
		head = append(head, s.key+": []"...)
		// Keep line numbers: every item line becomes an empty line.
		from, to := s.keyEnd, s.items[len(s.items)-1].end
		head = append(head, bytes.Repeat([]byte("\n"), bytes.Count(data[from:to], []byte("\n")))...)
		last = to
	}
	head = append(head, data[last:]...)
	t, pos, err := wholeParse(name, head)
	if err != nil {
		return nil, nil, false
	}
	pos.seqs, pos.data = map[string][]seqItem{}, data
	var fresh map[string]*item
	if p != nil {
		fresh = make(map[string]*item, len(p.items)+1)
	}
	v := reflect.ValueOf(t).Elem()
	for _, s := range seqs {
		field := v.Field(fields[s.key])
		if field.Kind() != reflect.Slice {
			return nil, nil, false
		}
		items, ok := decodeItems(data, s, field.Type(), p, fresh)
		if !ok {
			return nil, nil, false
		}
		out := reflect.MakeSlice(field.Type(), len(items), len(items))
		pi := make([]seqItem, len(items))
		for i, it := range items {
			out.Index(i).Set(it.value)
			pi[i] = seqItem{line: s.items[i].line - 1, zeros: it.zeros, span: s.items[i], typ: field.Type().Elem()}
		}
		field.Set(out)
		pos.seqs[s.key] = pi
		// The sequence is where its first item's dash is.
		first := s.items[0]
		col := 1 + bytes.IndexByte(data[first.start:first.end], '-')
		pos.paths[s.key] = Pos{Line: first.line, Column: col}
	}
	if p != nil {
		p.items = fresh // only the current file's items stay
	}
	return t, pos, true
}

// groupSize is how many items are parsed as one YAML document: large
// enough that the parser's set-up cost vanishes, small enough to spread
// across CPUs.
const groupSize = 128

// decodeItems returns the decoded items of s, reusing p's and parsing the
// others in groups of consecutive items; with p, it records them all in
// fresh.
func decodeItems(data []byte, s seq, typ reflect.Type, p *itemCache, fresh map[string]*item) ([]*item, bool) {
	out := make([]*item, len(s.items))
	type group struct{ from, to int }
	var groups []group
	var key []byte
	for i, sp := range s.items {
		if p != nil {
			key = append(append(append(key[:0], s.key...), 0), data[sp.start:sp.end]...)
			if it, ok := p.items[string(key)]; ok { // no string is made for the lookup
				out[i] = it
				continue
			}
		}
		if n := len(groups); n > 0 && groups[n-1].to == i && i-groups[n-1].from < groupSize {
			groups[n-1].to++
		} else {
			groups = append(groups, group{i, i + 1})
		}
	}
	ok := make([]bool, len(groups))
	decode := func(i int) {
		g := groups[i]
		ok[i] = decodeGroup(data, s.items[g.from:g.to], typ, out[g.from:g.to])
	}
	if len(groups) == 1 {
		decode(0) // a small file: no goroutine
	} else {
		work := make(chan int, len(groups))
		for i := range groups {
			work <- i
		}
		close(work)
		var wg sync.WaitGroup
		for range min(runtime.GOMAXPROCS(0), len(groups)) {
			wg.Go(func() {
				for i := range work {
					decode(i)
				}
			})
		}
		wg.Wait()
	}
	if slices.Contains(ok, false) {
		return nil, false
	}
	if p != nil {
		for i, it := range out {
			if it.key == "" {
				sp := s.items[i]
				it.key = s.key + "\x00" + string(data[sp.start:sp.end])
			}
			fresh[it.key] = it
		}
	}
	return out, true
}

// decodeGroup parses consecutive items as one sequence and decodes each
// into out.
func decodeGroup(data []byte, items []span, typ reflect.Type, out []*item) bool {
	first := items[0]
	slab := slabs.Get().(*[]yaml.Node)
	defer slabs.Put(slab)
	root, ok := flowGroup(data, items, slab)
	if !ok {
		var err error
		root, err = parseOne("", data[first.start:items[len(items)-1].end])
		if err != nil || root.Kind != yaml.SequenceNode || len(root.Content) != len(items) {
			return false
		}
	}
	for i, n := range root.Content {
		// Lines relative to the item's own first line.
		base := items[i].line - first.line
		d := &decoder{pos: &Positions{}, lineBase: base, zerosOnly: true}
		v := reflect.New(typ.Elem()).Elem()
		d.value(n, v, "")
		if len(d.errs) > 0 {
			return false
		}
		out[i] = &item{value: v, zeros: d.pos.paths}
	}
	return true
}

// seqItem places one split item's positions in the file.
type seqItem struct {
	line  int            // added to the item's relative lines
	zeros map[string]Pos // as in item
	span  span           // the item's text in Positions.data
	typ   reflect.Type   // its Go type

	once  sync.Once
	paths map[string]Pos // all of them, decoded again on first use
}

// allPaths returns every recorded position of item it, decoding its text
// again the first time (as decodeGroup did, recording everything).
func (p *Positions) allPaths(it *seqItem) map[string]Pos {
	it.once.Do(func() {
		root, err := parseOne("", p.data[it.span.start:it.span.end])
		if err != nil || root.Kind != yaml.SequenceNode || len(root.Content) != 1 {
			return
		}
		d := &decoder{pos: &Positions{}}
		d.value(root.Content[0], reflect.New(it.typ).Elem(), "")
		it.paths = d.pos.paths
	})
	return it.paths
}

// lookupItem finds path in a split sequence: "pods[3].ip" is item 3's
// "ip". found is false when path is not inside a split sequence. With
// zeros, only fields written with a zero value are known (no decoding).
func (p *Positions) lookupItem(path string, zeros bool) (pos Pos, found, inSeq bool) {
	open := strings.IndexByte(path, '[')
	if open <= 0 || p.seqs == nil {
		return Pos{}, false, false
	}
	items, ok := p.seqs[path[:open]]
	if !ok {
		return Pos{}, false, false
	}
	closing := open + strings.IndexByte(path[open:], ']')
	if closing < open {
		return Pos{}, false, true
	}
	i, err := strconv.Atoi(path[open+1 : closing])
	if err != nil || i < 0 || i >= len(items) {
		return Pos{}, false, true
	}
	rel := path[closing+1:]
	if len(rel) > 0 && rel[0] == '.' {
		rel = rel[1:]
	}
	it := &items[i]
	if zeros {
		pos, found = it.zeros[rel]
	} else {
		pos, found = p.allPaths(it)[rel]
	}
	pos.Line += it.line
	return pos, found, true
}
