package spec

import (
	"bytes"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// Cluster-sized files are generated, and generators write one item a
// line in flow style: "- {name: p1, labels: {app: a1}, ports: [...]}".
// yaml.v3 parses those at about 10 MB/s, most of a node's plan in a
// 1000-node file. flowGroup builds the node tree yaml.v3 builds for such
// a group of items, directly, for a plain subset of flow YAML only: ASCII,
// one item a line, flow mappings and sequences, plain scalars of letters,
// digits and "-._/+", quoted scalars without escapes or line breaks, keys
// under YAML's 1024-character bound. Anything else
// declines and yaml.v3 parses the group, so this is an optimisation
// only; TestFlowGroupCorpus and FuzzFlowGroup hold the two trees equal.

// flowParser reads one group's text.
type flowParser struct {
	b         []byte
	s         string // b, once: scalars are its substrings, not allocations of their own
	i         int    // next byte
	line      int    // line of b[i], the group's first line being 1
	lineStart int    // offset of that line's first byte
	slab      []yaml.Node
}

// slabs keeps the nodes of groups already decoded for the next: nothing
// keeps a node once its group is decoded into Go values.
var slabs = sync.Pool{New: func() any { return new([]yaml.Node) }}

// flowGroup returns the block sequence yaml.v3 would parse from
// data[items[0].start:items[last].end], or false when the text is not in
// the subset. The nodes live in slab, which the caller may reuse once it
// is done with them.
func flowGroup(data []byte, items []span, slab *[]yaml.Node) (*yaml.Node, bool) {
	first := items[0]
	text := data[first.start:items[len(items)-1].end]
	if n := flowNodes(text); cap(*slab) < n {
		*slab = make([]yaml.Node, 0, n)
	}
	p := &flowParser{b: text, s: string(text), line: 1, slab: (*slab)[:0]}
	seq := p.node(yaml.SequenceNode, 0, "!!seq", "")
	seq.Content = make([]*yaml.Node, 0, len(items))
	indent := -1
	for _, it := range items {
		p.i, p.lineStart, p.line = it.start-first.start, it.start-first.start, it.line-first.line+1
		end := it.end - first.start
		ind := p.spaces()
		if indent >= 0 && ind != indent || !p.at('-') {
			return nil, false
		}
		if indent < 0 {
			indent, seq.Column = ind, ind+1
		}
		p.i++
		if p.spaces() == 0 || !p.at('{') {
			return nil, false
		}
		n, ok := p.value()
		if !ok {
			return nil, false
		}
		p.spaces()
		if p.i < end && p.b[p.i] == '\n' {
			p.i++
		}
		if p.i != end {
			return nil, false
		}
		seq.Content = append(seq.Content, n)
	}
	return seq, true
}

// flowNodes bounds the number of nodes in text: every node but the first
// item's follows a '{', '[', ',' or ':'.
func flowNodes(text []byte) int {
	n := 1
	for _, c := range text {
		switch c {
		case '{', '[', ',', ':', '\n':
			n++
		}
	}
	return n
}

// node takes a node from the slab (sized by flowNodes, so it never grows
// and pointers into it stay valid), at the current offset.
func (p *flowParser) node(kind yaml.Kind, style yaml.Style, tag, value string) *yaml.Node {
	if len(p.slab) == cap(p.slab) {
		p.slab = make([]yaml.Node, 0, 64) // not reached: flowNodes bounds the nodes
	}
	p.slab = append(p.slab, yaml.Node{Kind: kind, Style: style, Tag: tag, Value: value,
		Line: p.line, Column: p.i - p.lineStart + 1})
	return &p.slab[len(p.slab)-1]
}

func (p *flowParser) at(c byte) bool { return p.i < len(p.b) && p.b[p.i] == c }

// spaces skips spaces and returns how many.
func (p *flowParser) spaces() int {
	from := p.i
	for p.at(' ') {
		p.i++
	}
	return p.i - from
}

// value reads a mapping, sequence or scalar.
func (p *flowParser) value() (*yaml.Node, bool) {
	if p.i >= len(p.b) {
		return nil, false
	}
	switch p.b[p.i] {
	case '{':
		return p.collection(yaml.MappingNode, "!!map", '}')
	case '[':
		return p.collection(yaml.SequenceNode, "!!seq", ']')
	}
	return p.scalar()
}

// collection reads a flow mapping or sequence up to its closing byte:
// entries separated by ", ", no trailing comma, keys scalars followed by
// ": ".
func (p *flowParser) collection(kind yaml.Kind, tag string, closing byte) (*yaml.Node, bool) {
	n := p.node(kind, yaml.FlowStyle, tag, "")
	p.i++
	p.spaces()
	if p.at(closing) {
		p.i++
		return n, true
	}
	for {
		if kind == yaml.MappingNode {
			from := p.i
			k, ok := p.scalar()
			// YAML bounds an implicit key at 1024 characters.
			if !ok || p.i-from > 1000 || !p.at(':') || p.i+1 >= len(p.b) || p.b[p.i+1] != ' ' {
				return nil, false
			}
			p.i++
			p.spaces()
			n.Content = append(n.Content, k)
		}
		v, ok := p.value()
		if !ok {
			return nil, false
		}
		n.Content = append(n.Content, v)
		p.spaces()
		switch {
		case p.at(closing):
			p.i++
			return n, true
		case p.at(','):
			p.i++
			p.spaces()
			if p.at(closing) || p.at(',') {
				return nil, false // a trailing or empty entry
			}
		default:
			return nil, false
		}
	}
}

// scalar reads a quoted or plain scalar, on the current line.
func (p *flowParser) scalar() (*yaml.Node, bool) {
	if p.i >= len(p.b) {
		return nil, false
	}
	switch c := p.b[p.i]; c {
	case '\'', '"':
		end := bytes.IndexByte(p.b[p.i+1:], c)
		if end < 0 {
			return nil, false
		}
		v := p.b[p.i+1 : p.i+1+end]
		if bytes.ContainsAny(v, "\n\r\t\\") || !ascii(v) ||
			c == '\'' && p.i+2+end < len(p.b) && p.b[p.i+2+end] == '\'' { // '' escapes a quote
			return nil, false
		}
		style := yaml.SingleQuotedStyle
		if c == '"' {
			style = yaml.DoubleQuotedStyle
		}
		n := p.node(yaml.ScalarNode, style, "!!str", p.s[p.i+1:p.i+1+end])
		p.i += end + 2
		return n, true
	}
	return p.plain()
}

// plain reads a plain scalar: it ends before a flow indicator or ": ",
// without its trailing spaces. Only letters, digits, spaces and "-._/+"
// are read (names, numbers, addresses, label keys); any other byte
// declines, so the subtler rules of plain scalars never apply.
func (p *flowParser) plain() (*yaml.Node, bool) {
	from, end := p.i, p.i
	if !plainByte(p.b[from]) || p.b[from] == '-' || p.b[from] == ' ' {
		return nil, false
	}
	for ; end < len(p.b); end++ {
		c := p.b[end]
		if c == ',' || c == ']' || c == '}' || c == ':' && end+1 < len(p.b) && p.b[end+1] == ' ' {
			break
		}
		if !plainByte(c) {
			return nil, false
		}
	}
	v := strings.TrimRight(p.s[from:end], " ")
	if v == "" || v == "<<" {
		return nil, false // nothing, or a merge key (yaml.v3 tags it !!merge)
	}
	n := p.node(yaml.ScalarNode, 0, plainTag(v), v)
	if n.Tag == "" {
		n.Tag = n.ShortTag() // the tag yaml.v3 resolves for the plain value
	}
	p.i = end
	return n, true
}

// plainTag is the tag yaml.v3 resolves for the commonest plain values
// without its resolver: a word is a string unless it is one of YAML's
// booleans or nulls, a decimal without sign or leading zero an integer.
// Other values return "".
func plainTag(v string) string {
	switch c := v[0]; {
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		switch v {
		case "true", "True", "TRUE", "false", "False", "FALSE":
			return "!!bool"
		case "null", "Null", "NULL":
			return "!!null"
		}
		return "!!str"
	case c >= '1' && c <= '9' || v == "0":
		if _, ok := decimal(v); ok {
			return "!!int"
		}
	}
	return ""
}

func plainByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == ' ' || c == '-' || c == '.' || c == '_' || c == '/' || c == '+'
}

func ascii(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}
