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
// items of the previous file that did not change (reparse.go): the watch
// daemon then pays for the item a user edited, not for the whole file.
//
// The split is an optimisation only. It applies to files in plain block
// style (no anchors, aliases, tags, directives or document markers), and
// whenever any part of the file does not parse or decode cleanly the whole
// file is parsed again as one document, so that errors and their positions
// always come from one path (Parse's fuzz test holds both paths equal).

// itemCache remembers what a Parser needs to decode one source again
// (see Parser). The zero itemCache is ready.
type itemCache struct {
	// items are decoded items from the parse cache (cache.go), by seqKey
	// "\x00" item text; read only. nil when there are none.
	items map[string]*item
	// last is the source's last text that split cleanly, with what it
	// decoded to: the next text is compared with it (reparse.go).
	last *parsed
}

// item is one decoded element of a top-level sequence, as the parse cache
// keeps it, with the positions of its fields written with a zero value,
// relative to its first line (line 1). The positions of the others are
// found again when an error needs one (Positions.lookupItem): recording
// them all cost a tenth of decoding, and most of the watch daemon's memory
// for its parsed file.
type item struct {
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
	if bytes.ContainsAny(data, "&*!") || oddBreaks(data) {
		return nil, false // anchors, aliases, tags, breaks the split misses: one document only
	}
	sp := splitter{data: data, indent: -1}
	for off := 0; off < len(data); {
		if off, ok = sp.step(off); !ok {
			return nil, false
		}
	}
	sp.closeSeq(len(data))
	return sp.seqs, true
}

// oddBreaks reports whether data holds a line break other than "\n" and
// "\r\n": YAML counts a lone "\r", NEL, LS and PS as line breaks too, so
// items split on "\n" would have other lines than in one document.
func oddBreaks(data []byte) bool {
	for i := 0; ; i++ {
		k := bytes.IndexByte(data[i:], '\r')
		if k < 0 {
			break
		}
		if i += k; i+1 >= len(data) || data[i+1] != '\n' {
			return true
		}
	}
	return bytes.Contains(data, []byte("\u0085")) || bytes.Contains(data, []byte("\u2028")) ||
		bytes.Contains(data, []byte("\u2029"))
}

// splitter is splitSeqs's scan, line by line. Its state before a line
// depends only on the lines above, so reparse can resume it at any item's
// line of a file whose text above that line did not change.
type splitter struct {
	data   []byte
	seqs   []seq // the sequences closed so far
	cur    *seq  // the sequence open, if any
	indent int   // cur's indentation, once its first item is read; else -1
	line   int   // lines read
}

func (sp *splitter) closeItem(end int) {
	if sp.cur != nil && len(sp.cur.items) > 0 && sp.cur.items[len(sp.cur.items)-1].end < 0 {
		sp.cur.items[len(sp.cur.items)-1].end = end
	}
}

func (sp *splitter) closeSeq(end int) {
	sp.closeItem(end)
	if sp.cur != nil && len(sp.cur.items) > 0 {
		sp.seqs = append(sp.seqs, *sp.cur)
	}
	sp.cur, sp.indent = nil, -1
}

// step reads the line at off and returns the next line's offset; false
// when the file cannot be split.
func (sp *splitter) step(off int) (int, bool) {
	data := sp.data
	sp.line++
	nl := bytes.IndexByte(data[off:], '\n')
	end := len(data)
	if nl >= 0 {
		end = off + nl
	}
	text := bytes.TrimSuffix(data[off:end], []byte("\r"))
	trimmed := bytes.TrimLeft(text, " ")
	ind := len(text) - len(trimmed)
	isItem := bytes.HasPrefix(trimmed, []byte("- ")) || bytes.Equal(trimmed, []byte("-"))
	switch {
	case len(trimmed) == 0 || trimmed[0] == '#':
		// Blank and comment lines belong to whatever is open.
	case ind == 0 && (bytes.HasPrefix(text, []byte("---")) || bytes.HasPrefix(text, []byte("...")) || text[0] == '%'):
		return 0, false
	case ind == 0 && !isItem:
		sp.closeSeq(off)
		if k, ok := blockKey(text); ok {
			sp.cur = &seq{key: k, keyStart: off, keyEnd: off + len(text)}
		}
	case sp.cur == nil:
		if ind == 0 {
			return 0, false // a top-level sequence, not a mapping
		}
	case sp.indent < 0:
		if !isItem {
			sp.cur = nil // a nested mapping or a scalar: not split
			break
		}
		sp.indent = ind
		sp.cur.items = append(sp.cur.items, span{start: off, end: -1, line: sp.line})
	case ind == sp.indent && isItem:
		sp.closeItem(off)
		sp.cur.items = append(sp.cur.items, span{start: off, end: -1, line: sp.line})
	case ind <= sp.indent:
		return 0, false
	}
	return end + 1, true
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
// CPU, or taken from p's parse cache items. ok is false when anything did
// not parse or decode cleanly: the caller then parses data as one
// document. With p, it remembers data and its decode for the next text.
func splitParse(name string, data []byte, seqs []seq, p *itemCache) (*Topology, *Positions, bool) {
	t, pos, ok := parseHead(name, data, seqs)
	if !ok {
		return nil, nil, false
	}
	var cache map[string]*item
	if p != nil {
		cache = p.items
	}
	v := reflect.ValueOf(t).Elem()
	fields := fieldsOf(reflect.TypeFor[Topology]())
	for _, s := range seqs {
		field := v.Field(fields[s.key])
		if field.Kind() != reflect.Slice {
			return nil, nil, false
		}
		out := reflect.MakeSlice(field.Type(), len(s.items), len(s.items))
		zeros := make([]map[string]Pos, len(s.items))
		if !decodeItems(data, s.key, s.items, out, zeros, cache) {
			return nil, nil, false
		}
		field.Set(out)
		pos.seqs[s.key] = newSeqItems(field.Type().Elem(), s.items, zeros)
		pos.paths[s.key] = dashPos(data, s)
	}
	if p != nil {
		p.last = &parsed{data: data, seqs: seqs, t: t, pos: pos}
	}
	return t, pos, true
}

// parseHead decodes the head of data: data with each sequence written as
// [] and its item lines left empty, so that lines keep their numbers.
func parseHead(name string, data []byte, seqs []seq) (*Topology, *Positions, bool) {
	fields := fieldsOf(reflect.TypeFor[Topology]())
	var head []byte
	last := 0
	for _, s := range seqs {
		if _, known := fields[s.key]; !known {
			return nil, nil, false // the one-document parse names the field
		}
		head = append(head, data[last:s.keyStart]...)
		head = append(head, s.key+": []"...)
		from, to := s.keyEnd, s.items[len(s.items)-1].end
		head = append(head, bytes.Repeat([]byte("\n"), bytes.Count(data[from:to], []byte("\n")))...)
		last = to
	}
	head = append(head, data[last:]...)
	t, pos, err := wholeParse(name, head)
	if err != nil {
		return nil, nil, false
	}
	pos.seqs, pos.data = map[string]*seqItems{}, data
	return t, pos, true
}

// dashPos is where sequence s is: its first item's dash.
func dashPos(data []byte, s seq) Pos {
	first := s.items[0]
	return Pos{Line: first.line, Column: 1 + bytes.IndexByte(data[first.start:first.end], '-')}
}

// groupSize is how many items are parsed as one YAML document: large
// enough that the parser's set-up cost vanishes, small enough to spread
// across CPUs.
const groupSize = 128

// decodeItems decodes the items at spans into out, a slice of as many
// zero values, and their zero-valued fields' positions into zeros. Items
// found in cache (by key "\x00" text) are copied; the others are parsed in
// groups of consecutive items, on every CPU.
func decodeItems(data []byte, key string, spans []span, out reflect.Value, zeros []map[string]Pos, cache map[string]*item) bool {
	type group struct{ from, to int }
	var groups []group
	var k []byte
	for i, sp := range spans {
		if cache != nil {
			k = append(append(append(k[:0], key...), 0), data[sp.start:sp.end]...)
			if it, ok := cache[string(k)]; ok { // no string is made for the lookup
				out.Index(i).Set(it.value)
				zeros[i] = it.zeros
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
		ok[i] = decodeGroup(data, spans[g.from:g.to], out.Slice(g.from, g.to), zeros[g.from:g.to])
	}
	if len(groups) <= 1 {
		for i := range groups {
			decode(i) // a small file or edit: no goroutine
		}
		return !slices.Contains(ok, false)
	}
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
	return !slices.Contains(ok, false)
}

// decodeGroup parses consecutive items as one sequence and decodes each
// into out's elements (zero values), their zero-valued fields into zeros.
func decodeGroup(data []byte, items []span, out reflect.Value, zeros []map[string]Pos) bool {
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
		d.value(n, out.Index(i), "")
		if len(d.errs) > 0 {
			return false
		}
		zeros[i] = d.pos.paths
	}
	return true
}

// seqItems places the items of one split sequence in the file.
type seqItems struct {
	typ   reflect.Type     // the items' Go type
	spans []span           // each item's text in Positions.data
	zeros []map[string]Pos // by item, as item.zeros; nil when no item has any

	mu  sync.Mutex
	all map[int]map[string]Pos // every position of the items decoded again, by index
}

// newSeqItems keeps zeros only when some item has any (few do).
func newSeqItems(typ reflect.Type, spans []span, zeros []map[string]Pos) *seqItems {
	if !slices.ContainsFunc(zeros, func(z map[string]Pos) bool { return z != nil }) {
		zeros = nil
	}
	return &seqItems{typ: typ, spans: spans, zeros: zeros}
}

// zerosOf returns item i's zero-valued fields.
func (s *seqItems) zerosOf(i int) map[string]Pos {
	if s.zeros == nil {
		return nil
	}
	return s.zeros[i]
}

// allPaths returns every recorded position of item i of s, relative to
// its first line, decoding its text again the first time (as decodeGroup
// did, recording everything).
func (p *Positions) allPaths(s *seqItems, i int) map[string]Pos {
	s.mu.Lock()
	defer s.mu.Unlock()
	if paths, ok := s.all[i]; ok {
		return paths
	}
	if s.all == nil {
		s.all = map[int]map[string]Pos{}
	}
	sp := s.spans[i]
	root, err := parseOne("", p.data[sp.start:sp.end])
	if err != nil || root.Kind != yaml.SequenceNode || len(root.Content) != 1 {
		s.all[i] = nil
		return nil
	}
	d := &decoder{pos: &Positions{}}
	d.value(root.Content[0], reflect.New(s.typ).Elem(), "")
	s.all[i] = d.pos.paths
	return d.pos.paths
}

// lookupItem finds path in a split sequence: "pods[3].ip" is item 3's
// "ip". found is false when path is not inside a split sequence. With
// zeros, only fields written with a zero value are known (no decoding).
func (p *Positions) lookupItem(path string, zeros bool) (pos Pos, found, inSeq bool) {
	open := strings.IndexByte(path, '[')
	if open <= 0 || p.seqs == nil {
		return Pos{}, false, false
	}
	s, ok := p.seqs[path[:open]]
	if !ok {
		return Pos{}, false, false
	}
	closing := open + strings.IndexByte(path[open:], ']')
	if closing < open {
		return Pos{}, false, true
	}
	i, err := strconv.Atoi(path[open+1 : closing])
	if err != nil || i < 0 || i >= len(s.spans) {
		return Pos{}, false, true
	}
	rel := path[closing+1:]
	if len(rel) > 0 && rel[0] == '.' {
		rel = rel[1:]
	}
	if zeros {
		pos, found = s.zerosOf(i)[rel]
	} else {
		pos, found = p.allPaths(s, i)[rel]
	}
	pos.Line += s.spans[i].line - 1
	return pos, found, true
}
