package spec

import (
	"bytes"
	"reflect"
	"slices"
	"sort"
)

// The watch daemon reloads a file of which a line changed. Splitting,
// decoding and placing its 60,000 items again costs tens of milliseconds
// although all but one are the same. reparse compares the text with the
// source's last one instead: the bytes before the first difference and
// after the last are the same, so only the lines between them are split
// and decoded again; the items after them are the old ones moved by the
// edit, and the head (the text that is not items) is decoded again only
// when its own text changed. The result is what splitParse gives for the
// new text (TestReparseEdits and FuzzReparse hold them equal).

// parsed is a source's last text that split cleanly, and its decode.
type parsed struct {
	data []byte
	seqs []seq // their spans are those of pos.seqs
	t    *Topology
	pos  *Positions
}

// reparseResult says what reparse made of a text.
type reparseResult int

const (
	// reparseUnknown: parse the text from the start (it may not split).
	reparseUnknown reparseResult = iota
	// reparseWhole: the text splits but does not decode cleanly, as
	// splitParse would find: decode it as one document for its errors.
	reparseWhole
	reparsed
)

// reparse decodes data, the source's new text, reusing ic.last.
func (ic *itemCache) reparse(name string, data []byte) (*Topology, *Positions, reparseResult) {
	old := ic.last
	if bytes.Equal(old.data, data) {
		return old.t, old.pos, reparsed
	}
	e := diff(old.data, data)
	if !e.clean(data) {
		return nil, nil, reparseUnknown
	}
	seqs, srcs, ok := e.resplit(old, data)
	if !ok || len(seqs) == 0 {
		return nil, nil, reparseUnknown
	}
	t, pos, ok := rebuild(name, old, data, seqs, srcs, ic.items)
	if !ok {
		return nil, nil, reparseWhole
	}
	ic.last = &parsed{data: data, seqs: seqs, t: t, pos: pos}
	return t, pos, reparsed
}

// edit is where two texts differ: old[from:oldEnd] became new[from:newEnd].
type edit struct {
	from, oldEnd, newEnd int
	delta                int // len(new) - len(old): how far the text after the edit moved
}

func diff(old, new []byte) edit {
	from := commonPrefix(old, new)
	same := commonSuffix(old[from:], new[from:])
	return edit{from: from, oldEnd: len(old) - same, newEnd: len(new) - same, delta: len(new) - len(old)}
}

// compareBlock is how much commonPrefix and commonSuffix compare at once:
// bytes.Equal is a memcmp, ten times faster than a loop over bytes.
const compareBlock = 512

// commonPrefix is the length of the longest common prefix of a and b.
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i+compareBlock <= n && bytes.Equal(a[i:i+compareBlock], b[i:i+compareBlock]) {
		i += compareBlock
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// commonSuffix is the length of the longest common suffix of a and b.
func commonSuffix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i+compareBlock <= n && bytes.Equal(a[len(a)-i-compareBlock:len(a)-i], b[len(b)-i-compareBlock:len(b)-i]) {
		i += compareBlock
	}
	for i < n && a[len(a)-i-1] == b[len(b)-i-1] {
		i++
	}
	return i
}

// clean reports whether the changed text of data keeps it splittable as
// far as splitSeqs and parse check the bytes: text, no line breaks but
// "\n" and "\r\n" (both checked on whole lines, so that no rune or "\r\n"
// is cut), no anchors, aliases or tags. The rest was checked in the old
// text.
func (e edit) clean(data []byte) bool {
	if bytes.ContainsAny(data[e.from:e.newEnd], "&*!") {
		return false
	}
	from, to := bytes.LastIndexByte(data[:e.from], '\n')+1, len(data)
	if i := bytes.IndexByte(data[e.newEnd:], '\n'); i >= 0 {
		to = e.newEnd + i + 1
	}
	_, _, _, ok := checkText(data[from:to])
	return ok && !oddBreaks(data[from:to])
}

// seqSrc says which items of a new sequence are old ones: items[:prefix]
// are those of the old sequence of the same key, at the same place;
// items[suffix:] are those of the old sequence oldKey from oldFrom on,
// moved by the edit. The items between are new.
type seqSrc struct {
	prefix, suffix int
	oldKey         string
	oldFrom        int
}

// resplit splits data as splitSeqs would, scanning only from the last
// old item above the edit to the first old item below it at which the
// scan is in the same state as the old scan was: from there on the old
// split holds, moved by the edit.
func (e edit) resplit(old *parsed, data []byte) ([]seq, []seqSrc, bool) {
	sp, off, a, b := resume(old, data, e.from)
	resumed := sp.cur
	oa, ob := a, b // the old scan's next item
	for off < len(data) {
		if off >= e.newEnd {
			oa, ob = nextItem(old.seqs, oa, ob, off-e.delta)
			if oa < len(old.seqs) && old.seqs[oa].items[ob].start == off-e.delta && sp.cur != nil &&
				sp.indent == seqIndent(old, oa, ob) {
				closed := len(sp.seqs) > a // before stitch adds the open one
				seqs, srcs := e.stitch(old, sp, off, oa, ob)
				markPrefix(srcs, a, b, resumedAt(resumed, sp.cur, closed, a, len(sp.seqs)))
				return seqs, srcs, true
			}
		}
		var ok bool
		if off, ok = sp.step(off); !ok {
			return nil, nil, false
		}
	}
	sp.closeSeq(len(data))
	srcs := make([]seqSrc, len(sp.seqs))
	for k, s := range sp.seqs {
		srcs[k] = seqSrc{suffix: len(s.items)}
	}
	markPrefix(srcs, a, b, resumedAt(resumed, nil, len(sp.seqs) > a, a, 0))
	return sp.seqs, srcs, true
}

// markPrefix marks the old items the scan resumed after: the a sequences
// before it whole, and the b items above it in the sequence it resumed in
// (at k). The last of those ends where it did: the line resumed at is the
// same, and read in the same state it closes that item again.
func markPrefix(srcs []seqSrc, a, b, k int) {
	for i := range a {
		srcs[i].prefix = srcs[i].suffix
	}
	if k >= 0 {
		srcs[k].prefix = b
	}
}

// resumedAt is the index among the new sequences of the one the scan
// resumed in, or -1: closed during the scan, it follows the a old ones;
// still open (cur), it is the one stitch added at open.
func resumedAt(resumed, cur *seq, closed bool, a, open int) int {
	switch {
	case resumed == nil:
		return -1
	case closed:
		return a
	case cur == resumed:
		return open
	}
	return -1
}

// resume returns a splitter set as splitSeqs's is before the last old
// item whose first line ends before from (the text above is the same),
// that line's offset and the item's place (sequence a, item b). With no
// such item it starts at the start of the file: off, a and b are 0.
func resume(old *parsed, data []byte, from int) (sp *splitter, off, a, b int) {
	a, b = -1, -1
	for k := len(old.seqs) - 1; k >= 0 && a < 0; k-- {
		items := old.seqs[k].items
		i := sort.Search(len(items), func(i int) bool { return items[i].start >= from }) - 1
		if i < 0 {
			continue
		}
		a, b = k, i
		if nl := bytes.IndexByte(old.data[items[i].start:], '\n'); nl < 0 || items[i].start+nl >= from {
			// Its first line changed: the item before, whose line ends
			// above this one's.
			a, b = prevItem(old.seqs, k, i)
		}
	}
	if a < 0 {
		return &splitter{data: data, indent: -1}, 0, 0, 0
	}
	s := old.seqs[a]
	// Room for the old items below too, which stitch adds after the
	// edit's. The item above is open: the line resumed at may still
	// belong to it.
	items := append(make([]span, 0, len(s.items)+16), s.items[:b]...)
	if b > 0 {
		items[b-1].end = -1
	}
	sp = &splitter{data: data, seqs: old.seqs[:a:a], line: s.items[b].line - 1, indent: seqIndent(old, a, b),
		cur: &seq{key: s.key, keyStart: s.keyStart, keyEnd: s.keyEnd, items: items}}
	return sp, s.items[b].start, a, b
}

// prevItem is the place of the item before item i of sequence k; -1, -1
// for the first.
func prevItem(seqs []seq, k, i int) (int, int) {
	if i > 0 {
		return k, i - 1
	}
	if k > 0 {
		return k - 1, len(seqs[k-1].items) - 1
	}
	return -1, -1
}

// nextItem advances the place (k, i) to the first old item starting at
// or after off; k is len(seqs) past the last.
func nextItem(seqs []seq, k, i, off int) (int, int) {
	for k < len(seqs) {
		items := seqs[k].items
		switch {
		case i >= len(items):
			k, i = k+1, 0
		case items[i].start < off:
			i++
		default:
			return k, i
		}
	}
	return k, i
}

// seqIndent is the splitter's indent before item i of old sequence k: -1
// before the first item, the items' indentation after.
func seqIndent(old *parsed, k, i int) int {
	if i == 0 {
		return -1
	}
	line := old.data[old.seqs[k].items[0].start:]
	return len(line) - len(bytes.TrimLeft(line, " "))
}

// stitch ends a scan in the same state as the old one before item ob of
// old sequence oa, at off: the open sequence takes that item and the
// rest of its old sequence, and the old sequences after it follow, all
// moved by the edit.
func (e edit) stitch(old *parsed, sp *splitter, off, oa, ob int) ([]seq, []seqSrc) {
	lines := sp.line + 1 - old.seqs[oa].items[ob].line
	sp.closeItem(off)
	cur := sp.cur
	src := seqSrc{suffix: len(cur.items), oldKey: old.seqs[oa].key, oldFrom: ob}
	cur.items = append(cur.items, old.seqs[oa].items[ob:]...)
	e.move(cur.items[src.suffix:], lines)
	srcs := make([]seqSrc, len(sp.seqs), len(sp.seqs)+len(old.seqs)-oa)
	for k, s := range sp.seqs {
		srcs[k] = seqSrc{suffix: len(s.items)}
	}
	seqs := append(sp.seqs, *cur)
	srcs = append(srcs, src)
	for _, s := range old.seqs[oa+1:] {
		if e.delta != 0 || lines != 0 {
			s.keyStart, s.keyEnd = s.keyStart+e.delta, s.keyEnd+e.delta
			s.items = slices.Clone(s.items)
			e.move(s.items, lines)
		}
		seqs = append(seqs, s)
		srcs = append(srcs, seqSrc{oldKey: s.key})
	}
	return seqs, srcs
}

// move shifts spans (a copy of the old ones) by the edit's length and by
// lines.
func (e edit) move(spans []span, lines int) {
	for i := range spans {
		spans[i].start += e.delta
		spans[i].end += e.delta
		spans[i].line += lines
	}
}

// rebuild decodes the split data: the head again only when its text
// changed, and of each sequence the items that are not old ones. ok is
// false when the head or a new item does not decode cleanly.
func rebuild(name string, old *parsed, data []byte, seqs []seq, srcs []seqSrc, cache map[string]*item) (*Topology, *Positions, bool) {
	t, pos, ok := reuseHead(name, old, data, seqs)
	if !ok {
		if t, pos, ok = parseHead(name, data, seqs); !ok {
			return nil, nil, false
		}
	}
	fields := fieldsOf(reflect.TypeFor[Topology]())
	v := reflect.ValueOf(t).Elem()
	for k, s := range seqs {
		field := v.Field(fields[s.key]) // a known field: see parseHead
		if field.Kind() != reflect.Slice {
			return nil, nil, false
		}
		items, at, ok := rebuildSeq(data, s, srcs[k], old, field.Type(), cache)
		if !ok {
			return nil, nil, false
		}
		field.Set(items)
		pos.seqs[s.key], pos.paths[s.key] = at, dashPos(data, s)
	}
	return t, pos, true
}

// rebuildSeq returns the items of s and their positions: the old ones
// when all are old, else new ones holding the old values and the new
// items decoded.
func rebuildSeq(data []byte, s seq, src seqSrc, old *parsed, typ reflect.Type, cache map[string]*item) (reflect.Value, *seqItems, bool) {
	n := len(s.items)
	prevAt := old.pos.seqs[s.key]
	if prevAt == nil {
		src.prefix, src.suffix = 0, n // a sequence that was not one
	} else if src.oldKey != s.key {
		src.suffix = n // another sequence's items, of another type maybe
	}
	var prev reflect.Value
	if prevAt != nil {
		prev = reflect.ValueOf(old.t).Elem().Field(fieldsOf(reflect.TypeFor[Topology]())[s.key])
		switch {
		case src.prefix == n:
			return prev, prevAt, true // the same spans too
		case src.suffix == 0 && src.oldFrom == 0 && prev.Len() == n:
			return prev, &seqItems{typ: prevAt.typ, spans: s.items, zeros: prevAt.zeros}, true
		}
	}
	out := reflect.MakeSlice(typ, n, n)
	zeros := make([]map[string]Pos, n)
	if src.prefix > 0 {
		reflect.Copy(out, prev.Slice(0, src.prefix))
		if prevAt.zeros != nil {
			copy(zeros, prevAt.zeros[:src.prefix])
		}
	}
	if src.suffix < n {
		reflect.Copy(out.Slice(src.suffix, n), prev.Slice(src.oldFrom, prev.Len()))
		if prevAt.zeros != nil {
			copy(zeros[src.suffix:], prevAt.zeros[src.oldFrom:])
		}
	}
	from, to := src.prefix, src.suffix
	if cache == nil && to-from >= bigEdit && prevAt != nil {
		oldTo := prev.Len()
		if src.suffix < n {
			oldTo = src.oldFrom
		}
		cache = byText(old, s.key, prev, prevAt, from, oldTo)
	}
	if from < to && !decodeItems(data, s.key, s.items[from:to], out.Slice(from, to), zeros[from:to], cache) {
		return reflect.Value{}, nil, false
	}
	return out, newSeqItems(typ.Elem(), s.items, zeros), true
}

// bigEdit is how many new items make rebuildSeq look for them among the
// old ones by their text: a generator that rewrites a line at the top of
// a file and one at the bottom changes every byte between them, as diff
// sees it, not every item.
const bigEdit = 64

// byText returns the old items from..to of a sequence by key "\x00" text,
// as decodeItems looks them up.
func byText(old *parsed, key string, prev reflect.Value, at *seqItems, from, to int) map[string]*item {
	m := make(map[string]*item, max(0, to-from))
	for j := from; j < to; j++ {
		sp := at.spans[j]
		m[key+"\x00"+string(old.data[sp.start:sp.end])] = &item{value: prev.Index(j), zeros: at.zerosOf(j)}
	}
	return m
}

// reuseHead returns the old head's decode when the head text of data is
// the old one but for the number of its empty lines (those of items):
// the same text between the sequences and the same keys. Its positions
// move by the lines the sequences above them gained or lost.
func reuseHead(name string, old *parsed, data []byte, seqs []seq) (*Topology, *Positions, bool) {
	if len(seqs) != len(old.seqs) {
		return nil, nil, false
	}
	wasLast, last := 0, 0
	ends := make([][2]int, len(seqs)) // the old and new lines following each sequence
	for k, s := range seqs {
		o := old.seqs[k]
		if s.key != o.key || !bytes.Equal(old.data[wasLast:o.keyStart], data[last:s.keyStart]) {
			return nil, nil, false
		}
		wasLast, last = o.items[len(o.items)-1].end, s.items[len(s.items)-1].end
		ends[k] = [2]int{endLine(old.data, o), endLine(data, s)}
	}
	if !bytes.Equal(old.data[wasLast:], data[last:]) {
		return nil, nil, false
	}
	t := *old.t // its sequences are replaced; the rest is read only
	pos := &Positions{File: name, paths: make(map[string]Pos, len(old.pos.paths)), seqs: map[string]*seqItems{}, data: data}
	for path, at := range old.pos.paths {
		for k := len(ends) - 1; k >= 0; k-- {
			if at.Line >= ends[k][0] {
				at.Line += ends[k][1] - ends[k][0]
				break
			}
		}
		pos.paths[path] = at
	}
	return &t, pos, true
}

// endLine is the line after sequence s's last item.
func endLine(data []byte, s seq) int {
	last := s.items[len(s.items)-1]
	return last.line + bytes.Count(data[last.start:last.end], []byte("\n"))
}

// kept returns the items of the source's last text for the parse cache,
// by sequence key "\x00" item text.
func (ic *itemCache) kept() map[string]*item {
	if ic.last == nil {
		return nil
	}
	last := ic.last
	fields := fieldsOf(reflect.TypeFor[Topology]())
	v := reflect.ValueOf(last.t).Elem()
	items := map[string]*item{}
	for _, s := range last.seqs {
		values, at := v.Field(fields[s.key]), last.pos.seqs[s.key]
		for i, sp := range s.items {
			items[s.key+"\x00"+string(last.data[sp.start:sp.end])] = &item{value: values.Index(i), zeros: at.zerosOf(i)}
		}
	}
	return items
}
