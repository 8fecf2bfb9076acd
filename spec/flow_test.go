package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/netreconcile/netreconcile/internal/scaletopo"
)

// sameTree reports the first difference between two node trees.
func sameTree(a, b *yaml.Node, path string) error {
	if a.Kind != b.Kind || a.Style != b.Style || a.Tag != b.Tag || a.Value != b.Value || a.Anchor != b.Anchor ||
		a.Line != b.Line || a.Column != b.Column || a.HeadComment != b.HeadComment ||
		a.LineComment != b.LineComment || a.FootComment != b.FootComment || (a.Alias == nil) != (b.Alias == nil) {
		return fmt.Errorf("%s: fast %+v, yaml.v3 %+v", path, *a, *b)
	}
	if len(a.Content) != len(b.Content) {
		return fmt.Errorf("%s: fast has %d children, yaml.v3 %d", path, len(a.Content), len(b.Content))
	}
	for i := range a.Content {
		if err := sameTree(a.Content[i], b.Content[i], fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	return nil
}

// checkFlow compares flowGroup with yaml.v3 on items of data; it returns
// whether the fast path took them.
func checkFlow(t *testing.T, data []byte, items []span) bool {
	t.Helper()
	fast, ok := flowGroup(data, items, new([]yaml.Node))
	if !ok {
		return false
	}
	want, err := parseOne("", data[items[0].start:items[len(items)-1].end])
	if err != nil {
		t.Fatalf("fast path took what yaml.v3 refuses (%v):\n%s", err, data[items[0].start:items[len(items)-1].end])
	}
	if err := sameTree(fast, want, "group"); err != nil {
		t.Fatalf("%v\nin:\n%s", err, data[items[0].start:items[len(items)-1].end])
	}
	return true
}

// TestFlowGroupCorpus holds the fast path equal to yaml.v3 on every
// sequence of the examples, the test files and the generated clusters,
// as whole groups and item by item, and checks it takes every item of
// the generated files (else it would be no faster).
func TestFlowGroupCorpus(t *testing.T) {
	files := map[string][]byte{"nodes": scaletopo.Nodes(3), "cluster": scaletopo.Cluster(2), "scale": scaletopo.File()}
	for _, glob := range []string{"testdata/good/*.yaml", "testdata/bad/*.yaml", "../examples/*.yaml", "../examples/*/*.yaml"} {
		names, _ := filepath.Glob(glob)
		for _, name := range names {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			files[name] = data
		}
	}
	taken := 0
	for name, data := range files {
		seqs, ok := splitSeqs(data)
		if !ok {
			continue
		}
		for _, s := range seqs {
			whole := checkFlow(t, data, s.items)
			for i := range s.items {
				one := checkFlow(t, data, s.items[i:i+1])
				if one {
					taken++
				}
				if generated := !strings.Contains(name, "/"); generated && !one {
					t.Errorf("%s: %s[%d] not taken by the fast path: %q", name, s.key, i, data[s.items[i].start:s.items[i].end])
				}
			}
			if !strings.Contains(name, "/") && !whole {
				t.Errorf("%s: %s not taken by the fast path as one group", name, s.key)
			}
		}
	}
	if taken == 0 {
		t.Fatal("no item took the fast path")
	}
}

// FuzzFlowGroup: whatever the fast path takes, yaml.v3 parses to the same
// tree. Each input line is an item ("  - " + line).
func FuzzFlowGroup(f *testing.F) {
	for _, line := range strings.Split(string(scaletopo.Nodes(2)), "\n") {
		if item, ok := strings.CutPrefix(line, "  - "); ok {
			f.Add(item)
		}
	}
	for _, s := range []string{
		"{a: b c, 'd': \"e\"}", "{a: [1, 0x10, 010, 1_0, -1, +1, .5, 1e3, ~, null, Null, true, yes, on, 2001-01-01]}",
		"{a: {b: {c: []}}, d: {}}", "{a: 'it''s'}", "{a: \"x\\\"y\"}", "{a:b}", "{a: b:c}", "{a: b #c}", "{a: b}#c",
		"{a: b,}", "{a: , b: c}", "{a: [b,]}", "{<<: {a: b}}", "{? a: b}", "{a: -b}", "{a: b}\n{c: d}", "{a: é}",
		"{a: b\tc}", "{a: 'b\n'}", "{a: .inf, b: .NaN, c: 0o17, d: 00, e: 0}", "{a: b  , c: d}", "{ a : b }",
		"{0: 0?}", "{" + strings.Repeat("k", 1100) + ": v}", // found by fuzzing: '?' ends a plain scalar; keys are bounded
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var data []byte
		var items []span
		for i, line := range strings.Split(in, "\n") {
			start := len(data)
			data = append(data, "  - "+line+"\n"...)
			items = append(items, span{start: start, end: len(data), line: i + 1})
		}
		checkFlow(t, data, items)
	})
}
