package spec

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// yamlHints says in plain words what the YAML parser's messages usually
// mean, and where on the line to point: the parser's own words name its
// grammar, not the mistake a person made.
var yamlHints = []struct {
	prefix string
	hint   string
	at     func(line string) int // byte offset in the line, -1: first non-space
}{
	{"found character that cannot start any token", "YAML is indented with spaces, never tabs; a value starting with @, ` or % must be quoted", tabOr(-1)},
	{"found a tab character", "YAML is indented with spaces, never tabs", tabOr(-1)},
	{"mapping values are not allowed in this context", "a \"key: value\" where none can be: check this line's indentation against the line above, or quote a value that contains \": \"", colonAt},
	{"did not find expected ',' or ']'", "a list opened with [ is not closed with ], or its items lack commas between them", byteAt('[')},
	{"did not find expected ',' or '}'", "a mapping opened with { is not closed with }, or its entries lack commas between them", byteAt('{')},
	{"did not find expected key", "this line is indented differently from the other keys of its mapping", firstChar},
	{"did not find expected '-' indicator", "this list item is not aligned with the items above it", firstChar},
	{"could not find expected ':'", "a key has no \": \" after it, or a quoted string is not closed", firstChar},
	{"found unexpected end of stream", "a quoted string, [ list or { mapping is never closed", firstChar},
	{"block sequence entries are not allowed in this context", "a \"- \" list item follows a key on the same line: put the list on the lines below, indented", byteAt('-')},
	{"did not find expected node content", "a value is missing here", firstChar},
}

// yamlHint returns the column (1-based, runes) of line in data that msg
// is about, and a plain-words hint; 0 and "" when it knows none.
func yamlHint(data []byte, line int, msg string) (col int, hint string) {
	for _, h := range yamlHints {
		if !strings.HasPrefix(msg, h.prefix) {
			continue
		}
		text := lineOf(data, line)
		i := h.at(text)
		if i < 0 {
			i = firstChar(text)
		}
		return 1 + utf8.RuneCountInString(text[:i]), h.hint
	}
	return 0, ""
}

// lineOf returns line n (1-based) of data without its newline.
func lineOf(data []byte, n int) string {
	for i := 1; i < n; i++ {
		j := bytes.IndexByte(data, '\n')
		if j < 0 {
			return ""
		}
		data = data[j+1:]
	}
	if j := bytes.IndexByte(data, '\n'); j >= 0 {
		data = data[:j]
	}
	return string(data)
}

func firstChar(line string) int {
	return len(line) - len(strings.TrimLeft(line, " \t"))
}

func tabOr(def int) func(string) int {
	return func(line string) int {
		if i := strings.IndexByte(line, '\t'); i >= 0 {
			return i
		}
		return def
	}
}

func byteAt(c byte) func(string) int {
	return func(line string) int { return strings.IndexByte(line, c) }
}

// colonAt points at the first ": " (or a line-ending ":") after the
// line's first key.
func colonAt(line string) int {
	first := strings.Index(line, ": ")
	if first < 0 {
		return -1
	}
	if i := strings.Index(line[first+2:], ": "); i >= 0 {
		return first + 2 + i
	}
	if strings.HasSuffix(line, ":") && len(line)-1 > first {
		return len(line) - 1
	}
	return first
}
