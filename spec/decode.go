package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// maxAliasExpansion bounds how many YAML nodes may be visited through
// aliases. The parser keeps an alias as a pointer, so parsing is cheap;
// expansion happens while walking, and a "billion laughs" document (aliases
// of aliases) would grow without this cap. It is far above what sharing
// labels or port lists between pods needs.
const maxAliasExpansion = 100_000

// maxErrors bounds how many problems are collected. Past a few screens a
// user learns nothing more, and a large generated file that is wrong
// everywhere would otherwise cost memory per error.
const maxErrors = 1000

// tooManyErrors is the note that ends a truncated list.
func tooManyErrors(file string) *Error {
	return &Error{File: file, Msg: fmt.Sprintf("too many errors; showing the first %d", maxErrors), Err: ErrInvalid}
}

// Parse decodes one topology file strictly: it must be UTF-8 text holding
// exactly one YAML document, whose fields all
// exist in Topology (matched exactly by their yaml names), appear once per
// mapping, and have the right type. Aliases and merge keys (<<) are
// followed, within maxAliasExpansion.
//
// name is the file name used in error messages. The returned Positions
// records where each field path is written, for Resolve.
//
// Errors are always *Errors. When the file is not usable at all (not
// YAML, alias bomb) the Topology is nil. When only some fields are
// wrong, the Topology and Positions are still returned, holding what could
// be decoded, so that a caller can run Resolve as well and report every
// problem at once (Load does).
func Parse(name string, data []byte) (*Topology, *Positions, error) {
	return parse(name, data, nil)
}

// parse decodes data item by item when the file allows it (see split.go),
// as one document otherwise. With p, from what p kept of the source's last
// text when it can (reparse.go).
func parse(name string, data []byte, p *itemCache) (*Topology, *Positions, error) {
	if p != nil && p.last != nil {
		switch t, pos, how := p.reparse(name, data); how {
		case reparsed:
			return t, pos, nil
		case reparseWhole:
			return wholeParse(name, data)
		}
	}
	if _, _, _, ok := checkText(data); ok {
		if seqs, ok := splitSeqs(data); ok && len(seqs) > 0 {
			if t, pos, ok := splitParse(name, data, seqs, p); ok {
				return t, pos, nil
			}
		}
	}
	return wholeParse(name, data)
}

// wholeParse decodes data as one document.
func wholeParse(name string, data []byte) (t *Topology, pos *Positions, err error) {
	fatal := func(line, col int, sentinel error, format string, args ...any) error {
		return &Errors{List: []*Error{{
			File: name, Line: line, Column: col, Msg: fmt.Sprintf(format, args...), Err: sentinel,
		}}}
	}
	if line, col, msg, ok := checkText(data); !ok {
		return nil, nil, fatal(line, col, ErrNotYAML, "not valid YAML: %s", msg)
	}
	root, err := parseOne(name, data)
	if err != nil {
		return nil, nil, err
	}
	pos = &Positions{File: name, paths: map[string]Pos{}}
	d := &decoder{pos: pos}
	t = &Topology{}
	d.value(root, reflect.ValueOf(t).Elem(), "")
	errs := &Errors{List: d.errs}
	if d.tooMany {
		return nil, nil, errs.orNil()
	}
	return t, pos, errs.orNil()
}

// yamlLine extracts the line yaml.v3 puts in its syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlParserErrors are the problems yaml.v3's parser (not its scanner)
// reports. For those it gives the line where the enclosing collection
// starts counted from 0, so one less than the line in an editor (scanner
// errors are counted from 1).
var yamlParserErrors = map[string]bool{
	"did not find expected ',' or ']'": true, "did not find expected ',' or '}'": true,
	"did not find expected '-' indicator": true, "did not find expected key": true,
	"did not find expected node content": true, "found undefined tag handle": true,
}

var unknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

// locate returns the line and column of the first occurrence of s in
// data, or 1:0 when it is not there.
func locate(data []byte, s string) (line, col int) {
	i := bytes.Index(data, []byte(s))
	if i < 0 {
		return 1, 0
	}
	line = 1 + bytes.Count(data[:i], []byte("\n"))
	col = 1 + utf8.RuneCount(data[bytes.LastIndexByte(data[:i], '\n')+1:i])
	return line, col
}

// parseOne parses data into a node tree and returns the single document's
// root node. yaml.v3 panics on a few malformed inputs instead of returning
// an error; those become errors too, since the file is user input.
func parseOne(name string, data []byte) (root *yaml.Node, err error) {
	notYAML := func(err error) error {
		msg, line, col := err.Error(), 0, 0
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
			if yamlParserErrors[msg] {
				line++
			}
		}
		msg = strings.TrimPrefix(msg, "yaml: ")
		if line == 0 {
			// yaml.v3 leaves the line out when its marks are on the first
			// line, and for an unknown anchor, which we can find.
			line = 1
			if m := unknownAnchor.FindStringSubmatch(msg); m != nil {
				line, col = locate(data, "*"+m[1])
			}
		}
		if c, hint := yamlHint(data, line, msg); hint != "" {
			if col == 0 {
				col = c
			}
			msg += " — " + hint
		}
		return &Errors{List: []*Error{{File: name, Line: line, Column: col, Msg: "not valid YAML: " + msg, Err: ErrNotYAML}}}
	}
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, notYAML(fmt.Errorf("parser failure: %v", r))
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Errors{List: []*Error{{File: name, Msg: "file holds no YAML document", Err: ErrNotYAML}}}
		}
		return nil, notYAML(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, &Errors{List: []*Error{{
			File: name, Line: extra.Line, Column: extra.Column, Err: ErrNotYAML,
			Msg: "file holds more than one YAML document; a topology is exactly one",
		}}}
	case !errors.Is(err, io.EOF):
		return nil, notYAML(err)
	}
	root = &doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, &Errors{List: []*Error{{File: name, Msg: "file holds no YAML document", Err: ErrNotYAML}}}
		}
		root = doc.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, &Errors{List: []*Error{{File: name, Line: root.Line, Column: root.Column, Msg: "the YAML document is empty", Err: ErrNotYAML}}}
	}
	return root, nil
}

// checkText rejects what is not UTF-8 text before the YAML parser sees it,
// because the parser reports these without a position ("control characters
// are not allowed") and a binary file deserves a precise, obvious message.
func checkText(data []byte) (line, col int, msg string, ok bool) {
	if plainASCII(data) {
		return 0, 0, "", true
	}
	line, col = 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return line, col, fmt.Sprintf("invalid UTF-8 byte 0x%02x (the file must be UTF-8 text)", data[i]), false
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r', r == 0x7f, r >= 0x80 && r <= 0x9f && r != 0x85, r == 0xfffe, r == 0xffff:
			return line, col, fmt.Sprintf("control character U+%04X (is this a binary file?)", r), false
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return 0, 0, "", true
}

// plainASCII reports whether data is printable ASCII, tabs and line
// breaks only: the common file, checked without decoding runes.
func plainASCII(data []byte) bool {
	for _, c := range data {
		if (c < 0x20 || c >= 0x7f) && c != '\n' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

// decoder walks a YAML node tree against the Go types, by reflection on
// their yaml tags, filling the values, recording positions, and collecting
// every structural problem instead of stopping at the first.
type decoder struct {
	pos  *Positions
	errs []*Error

	aliasDepth int                       // > 0 while inside an alias expansion
	expanded   int                       // nodes visited through aliases
	active     map[*yaml.Node]bool       // alias targets being expanded, to catch cycles
	aliasOf    map[*yaml.Node]*yaml.Node // alias target being expanded → the alias
	tooMany    bool                      // alias budget or error cap hit: stop everything
	lineBase   int                       // subtracted from recorded lines (split items)
	// zerosOnly records only scalars decoded as their type's zero value:
	// what the checks ask of items decoded apart (Positions.writtenZero),
	// whose other positions are found again on demand.
	zerosOnly bool
}

var intOrStringType = reflect.TypeFor[IntOrString]()

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	if len(d.errs) >= maxErrors {
		// Stop walking: the file is wrong throughout, and Parse returns
		// no topology.
		d.tooMany = true
		d.errs = append(d.errs, tooManyErrors(d.pos.File))
		return
	}
	if a := d.aliasOf[n]; a != nil {
		// The value as a whole is wrong: point at the alias, where the
		// user used it, rather than at the anchor.
		n = a
	}
	d.errs = append(d.errs, &Error{
		File: d.pos.File, Line: n.Line, Column: n.Column, Path: path,
		Msg: fmt.Sprintf(format, args...), Err: ErrInvalid,
	})
}

// record notes where path is written. The first position wins, so that a
// field given through an alias points at the alias, not at the anchor.
func (d *decoder) record(n *yaml.Node, path string) {
	if d.zerosOnly {
		return
	}
	d.put(n, path)
}

func (d *decoder) put(n *yaml.Node, path string) {
	if _, ok := d.pos.paths[path]; !ok {
		if d.pos.paths == nil {
			d.pos.paths = map[string]Pos{}
		}
		d.pos.paths[path] = Pos{Line: n.Line - d.lineBase, Column: n.Column}
	}
}

// count charges one node visited through an alias against the budget and
// reports whether walking may go on.
func (d *decoder) count(n *yaml.Node, path string) bool {
	if d.tooMany {
		return false
	}
	if d.aliasDepth == 0 {
		return true
	}
	d.expanded++
	if d.expanded > maxAliasExpansion {
		d.tooMany = true
		d.errs = append(d.errs, &Error{
			File: d.pos.File, Line: n.Line, Column: n.Column, Path: path, Err: ErrTooManyAliases,
			Msg: fmt.Sprintf("aliases expand to more than %d nodes; refusing to expand further", maxAliasExpansion),
		})
		return false
	}
	return true
}

// follow expands alias n by calling fn on its target, guarding against
// cycles (an anchor containing an alias to itself) and runaway expansion.
func (d *decoder) follow(n *yaml.Node, path string, fn func(target *yaml.Node)) {
	t := n.Alias
	if t == nil {
		d.fail(n, path, "alias *%s refers to no anchor", n.Value)
		return
	}
	if d.active[t] {
		d.fail(n, path, "alias *%s refers to a node that contains it", n.Value)
		return
	}
	if d.active == nil { // files without aliases never need them
		d.active, d.aliasOf = map[*yaml.Node]bool{}, map[*yaml.Node]*yaml.Node{}
	}
	d.active[t] = true
	d.aliasOf[t] = n
	d.aliasDepth++
	fn(t)
	d.aliasDepth--
	delete(d.active, t)
	delete(d.aliasOf, t)
}

// value decodes node n into v, whose path in the file is path.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if d.tooMany {
		return
	}
	d.record(n, path)
	if n.Kind == yaml.AliasNode {
		d.follow(n, path, func(t *yaml.Node) { d.value(t, v, path) })
		return
	}
	if !d.count(n, path) {
		return
	}
	switch {
	case v.Type() == intOrStringType:
		d.intOrString(n, v, path)
	case v.Kind() == reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		d.value(n, elem.Elem(), path)
		v.Set(elem)
	case v.Kind() == reflect.Struct:
		d.structure(n, v, path)
	case v.Kind() == reflect.Slice:
		d.sequence(n, v, path)
	case v.Kind() == reflect.Map && v.Type().Key().Kind() == reflect.String:
		d.stringMap(n, v, path)
	case v.Kind() == reflect.String:
		d.str(n, v, path)
	case v.Kind() == reflect.Int:
		d.integer(n, v, path)
	case v.Kind() == reflect.Bool:
		d.boolean(n, v, path)
	default:
		// Only reachable when a field of a new type is added to Topology
		// without teaching the decoder about it.
		d.fail(n, path, "internal error: cannot decode into Go type %s", v.Type())
	}
	if d.zerosOnly && n.Kind == yaml.ScalarNode && v.IsZero() {
		d.put(n, path)
	}
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	fieldPath := func(name string) string { return join(path, name) }
	d.entries(n, path, fieldPath, func(k, val *yaml.Node, name string) {
		i, ok := fields[name]
		if !ok {
			hint := suggest(name, fields)
			if h, ok := v.Addr().Interface().(interface{ unknownFieldHint(string) string }); ok {
				hint += h.unknownFieldHint(name)
			}
			d.fail(k, fieldPath(name), "unknown field %q%s", name, hint)
			return
		}
		d.value(val, v.Field(i), fieldPath(name))
	})
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "expected a sequence, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, e := range n.Content {
		if d.tooMany {
			return
		}
		d.value(e, s.Index(i), index(path, i))
	}
	v.Set(s)
}

func (d *decoder) stringMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	keyPath := func(k string) string { return key(path, k) }
	d.entries(n, path, keyPath, func(k, val *yaml.Node, name string) {
		// A map entry is placed at its key: errors about a label usually
		// concern the key, and key and value share the line.
		d.record(k, keyPath(name))
		elem := reflect.New(v.Type().Elem()).Elem()
		d.value(val, elem, keyPath(name))
		m.SetMapIndex(reflect.ValueOf(name).Convert(v.Type().Key()), elem)
	})
	v.Set(m)
}

func (d *decoder) str(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		d.fail(n, path, "expected a string, got %s%s", describe(n), quoteHint(n))
		return
	}
	v.SetString(n.Value)
}

func (d *decoder) integer(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.fail(n, path, "expected an integer, got %s", describe(n))
		return
	}
	if i, ok := decimal(n.Value); ok {
		v.SetInt(i)
		return
	}
	var i int64
	if err := n.Decode(&i); err != nil {
		d.fail(n, path, "integer %s is out of range", n.Value)
		return
	}
	v.SetInt(i)
}

// decimal reads the common integer, a plain decimal without sign or
// leading zero, without yaml.v3's decoder (a tenth of decoding a large
// file); anything else (0x10, 0o17, 1_000, -1) is left to yaml.v3.
func decimal(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 18 || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	var i int64
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		i = i*10 + int64(c-'0')
	}
	return i, true
}

// boolean accepts YAML 1.2 booleans (true, false; "yes" is a string).
func (d *decoder) boolean(n *yaml.Node, v reflect.Value, path string) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		d.fail(n, path, "expected true or false, got %s", describe(n))
		return
	}
	v.SetBool(b)
}

func (d *decoder) intOrString(n *yaml.Node, v reflect.Value, path string) {
	var ios IntOrString
	if err := ios.UnmarshalYAML(n); err != nil {
		d.fail(n, path, "%s", err.Error())
		return
	}
	v.Set(reflect.ValueOf(ios))
}

// entries calls fn for every key of mapping n: first the keys written in n,
// in file order, each at most once (a repeated key is an error, as YAML
// requires), then the keys that merge keys (<<) bring in and n does not set
// itself, earlier merges winning, as YAML's merge type specifies.
func (d *decoder) entries(n *yaml.Node, path string, keyPath func(string) string, fn func(k, val *yaml.Node, name string)) {
	seen := map[string]*yaml.Node{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content) && !d.tooMany; i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, val)
			continue
		}
		name, ok := d.keyName(k, path)
		if !ok {
			continue
		}
		if first, dup := seen[name]; dup {
			d.fail(k, keyPath(name), "duplicate key %q (first at line %d)", name, first.Line)
			continue
		}
		seen[name] = k
		fn(k, val, name)
	}
	for _, m := range merges {
		d.merge(m, path, seen, fn)
	}
}

// merge applies the value of a merge key: a mapping, an alias of one, or a
// sequence of those.
func (d *decoder) merge(m *yaml.Node, path string, seen map[string]*yaml.Node, fn func(k, val *yaml.Node, name string)) {
	if d.tooMany {
		return
	}
	switch m.Kind {
	case yaml.AliasNode:
		d.follow(m, path, func(t *yaml.Node) { d.merge(t, path, seen, fn) })
	case yaml.MappingNode:
		if !d.count(m, path) {
			return
		}
		var nested []*yaml.Node
		for i := 0; i+1 < len(m.Content) && !d.tooMany; i += 2 {
			k, val := m.Content[i], m.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				nested = append(nested, val)
				continue
			}
			name, ok := d.keyName(k, path)
			if !ok {
				continue
			}
			if _, dup := seen[name]; dup {
				continue
			}
			seen[name] = k
			fn(k, val, name)
		}
		for _, nm := range nested {
			d.merge(nm, path, seen, fn)
		}
	case yaml.SequenceNode:
		if !d.count(m, path) {
			return
		}
		for _, e := range m.Content {
			target := e
			if e.Kind == yaml.AliasNode && e.Alias != nil {
				target = e.Alias
			}
			// Only one level of sequence: anything else nested is not a
			// merge YAML defines, and following it would let a sequence
			// of aliased sequences expand like a billion laughs.
			if target.Kind != yaml.MappingNode {
				d.fail(e, path, "merge key << takes a mapping or a sequence of mappings, got %s in the sequence", describe(e))
				continue
			}
			d.merge(e, path, seen, fn)
		}
	default:
		d.fail(m, path, "merge key << takes a mapping or a sequence of mappings, got %s", describe(m))
	}
}

// keyName returns the text of a mapping key, which must be a scalar.
func (d *decoder) keyName(k *yaml.Node, path string) (string, bool) {
	if k.Kind == yaml.AliasNode && k.Alias != nil {
		k = k.Alias
	}
	if k.Kind != yaml.ScalarNode {
		d.fail(k, path, "expected a field name, got %s as a key", describe(k))
		return "", false
	}
	return k.Value, true
}

// fieldCache maps a struct type to its fields by yaml name.
var fieldCache sync.Map // reflect.Type → map[string]int

func fieldsOf(t reflect.Type) map[string]int {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]int)
	}
	fields := map[string]int{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
	}
	fieldCache.Store(t, fields)
	return fields
}

// suggest proposes the known field closest to an unknown one, which is
// nearly always a typo or a case slip (podCidr for podCIDR).
func suggest(name string, fields map[string]int) string {
	best, bestDist := "", 3
	names := make([]string, 0, len(fields))
	for f := range fields {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		if strings.EqualFold(f, name) {
			return fmt.Sprintf("; did you mean %q?", f)
		}
		if dist := levenshtein(strings.ToLower(f), strings.ToLower(name)); dist < bestDist {
			best, bestDist = f, dist
		}
	}
	if best == "" {
		return fmt.Sprintf("; valid fields: %s", strings.Join(names, ", "))
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// describe names what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.AliasNode:
		if n.Alias != nil {
			return describe(n.Alias)
		}
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch tag := n.ShortTag(); tag {
	case "!!str":
		return fmt.Sprintf("string %q", n.Value)
	case "!!int":
		return "integer " + n.Value
	case "!!float":
		return "number " + n.Value
	case "!!bool":
		return "boolean " + n.Value
	case "!!null":
		return "null (an empty value)"
	case "!!timestamp":
		return "timestamp " + n.Value
	case "!!binary":
		return "binary data"
	default:
		return fmt.Sprintf("a value tagged %s", tag)
	}
}

// quoteHint tells how to write a scalar that YAML read as a number,
// boolean or timestamp so that it becomes a string.
func quoteHint(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		return ""
	}
	switch n.ShortTag() {
	case "!!int", "!!float", "!!bool", "!!timestamp":
		return fmt.Sprintf(" (quote it: %q)", n.Value)
	}
	return ""
}
