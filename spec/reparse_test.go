package spec

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/internal/scaletopo"
)

// sameAsFresh fails unless what a Parser decoded from a source's last
// text (t, pos, err) equals a fresh parse of data: topology, errors, and
// every position of both.
func sameAsFresh(t *testing.T, data []byte, top *Topology, pos *Positions, err error) {
	t.Helper()
	ftop, fpos, ferr := parse("fuzz.yaml", data, nil)
	if fmt.Sprint(err) != fmt.Sprint(ferr) {
		t.Fatalf("errors differ:\n%.2000v\nfresh:\n%.2000v\nin:\n%s", err, ferr, data)
	}
	if !reflect.DeepEqual(top, ftop) {
		t.Fatalf("topologies differ:\n%+v\nfresh:\n%+v\nin:\n%s", top, ftop, data)
	}
	got, want := allPositions(pos), allPositions(fpos)
	if !reflect.DeepEqual(got, want) {
		for path, p := range want {
			if got[path] != p {
				t.Errorf("path %s at %v, fresh: %v", path, got[path], p)
			}
		}
		t.Fatalf("%d positions, fresh %d, in:\n%s", len(got), len(want), data)
	}
	if top != nil && pos.data != nil && !bytes.Equal(pos.data, data) {
		t.Fatal("positions of another text")
	}
}

// editor makes random edits of a YAML file's lines, most of them keeping
// it splittable, some breaking it.
type editor struct {
	rng   *rand.Rand
	lines []string // the file's lines, each with its newline
	own   []string // lines to insert: the file's own
	odd   []string // and some odd ones
	good  []string // the lines of the last text that split cleanly
}

func newEditor(seed uint64, data []byte) *editor {
	lines := strings.SplitAfter(string(data), "\n")
	odd := []string{"\n", "# a comment\n", "  # indented comment\n", "pods:\n", "services:\n",
		"  - {name: zz, namespace: a, node: n1}\n", "    - {name: deeper}\n", "- {name: top}\n", "  - {name: [\n",
		"  - {name: x, unknown: 1}\n", "  - {name: y, ports: [{port: 0}]}\n", "cluster: {podCIDR: 10.9.0.0/16}\n",
		"  - &a {name: anchor}\n", "  - name: block\n", "    namespace: a\n", "  -\n", "---\n", "policies:\n",
		"  - {name: \"q\", namespace: 'a', node: n1}\n", "  - {name: é}\n", "nodes: []\n", "  - {name: a1}", "\r\n"}
	return &editor{rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), lines: lines, own: slices.Clone(lines), odd: odd}
}

// line is a line to insert: mostly one of the file's.
func (e *editor) line() string {
	if e.rng.IntN(5) == 0 {
		return e.odd[e.rng.IntN(len(e.odd))]
	}
	return e.own[e.rng.IntN(len(e.own))]
}

// splits tells the editor whether its last text split cleanly: a text
// that did not is often repaired, back to the last that did.
func (e *editor) splits(ok bool) {
	switch {
	case ok:
		e.good = slices.Clone(e.lines)
	case e.good != nil && e.rng.IntN(2) == 0:
		e.lines = slices.Clone(e.good)
	}
}

// edit applies one random edit and returns the text.
func (e *editor) edit() []byte {
	n := len(e.lines)
	at := e.rng.IntN(n + 1)
	switch k := e.rng.IntN(10); {
	case k < 3 && at < n: // change a line for another
		e.lines[at] = e.line()
	case k < 5: // insert lines
		for range 1 + e.rng.IntN(3) {
			e.lines = slices.Insert(e.lines, at, e.line())
		}
	case k < 7 && at < n: // delete lines
		e.lines = slices.Delete(e.lines, at, min(n, at+1+e.rng.IntN(4)))
	case k < 8 && at < n: // change a byte
		b := []byte(e.lines[at])
		if len(b) > 0 {
			b[e.rng.IntN(len(b))] = "{}[]:, -#abn01\n"[e.rng.IntN(15)]
		}
		e.lines[at] = string(b)
	case k < 9: // move a block of lines (a whole sequence, maybe)
		if n > 2 {
			from := e.rng.IntN(n - 1)
			to := min(n, from+1+e.rng.IntN(20))
			block := slices.Clone(e.lines[from:to])
			e.lines = slices.Delete(e.lines, from, to)
			e.lines = slices.Insert(e.lines, e.rng.IntN(len(e.lines)+1), block...)
		}
	default: // nothing changes
	}
	return []byte(strings.Join(e.lines, ""))
}

// TestReparseEdits edits files at random and checks, after every edit,
// that a Parser that saw the previous texts decodes exactly what a fresh
// parse does, and that its reparse (not a parse from the start) did most
// of them.
func TestReparseEdits(t *testing.T) {
	files := map[string][]byte{"nodes": fewPods(scaletopo.Nodes(2), 12), "set-a": []byte(setTeamA), "set-head": []byte(setHead),
		"set-b": []byte(setTeamB)}
	for _, name := range []string{"testdata/good/design.yaml", "testdata/good/multinode.yaml", "../examples/basic.yaml"} {
		if data, err := os.ReadFile(name); err == nil {
			files[name] = data
		}
	}
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			reparsedN, steps := 0, 0
			seeds := uint64(12)
			if testing.Short() {
				seeds = 4
			}
			for seed := range seeds {
				e := newEditor(seed, data)
				var ic itemCache
				text := data
				for range 40 {
					if ic.last != nil {
						want := ic.last
						top, pos, how := ic.reparse("fuzz.yaml", text)
						switch how {
						case reparsed:
							reparsedN++
							sameAsFresh(t, text, top, pos, nil)
						case reparseWhole:
							if _, ok := splitSeqs(text); !ok {
								t.Fatalf("reparse says the text splits, splitSeqs does not:\n%s", text)
							}
							if _, _, ok := splitParse("fuzz.yaml", text, must(splitSeqs(text)), nil); ok {
								t.Fatalf("reparse says the text does not decode cleanly, splitParse does:\n%s", text)
							}
						}
						if how != reparsed {
							ic.last = want // as parse leaves it when it fails
						}
					}
					steps++
					top, pos, err := parse("fuzz.yaml", text, &ic)
					sameAsFresh(t, text, top, pos, err)
					e.splits(ic.last != nil && bytes.Equal(ic.last.data, text))
					text = e.edit()
				}
			}
			// Files with anchors never split; a block-style file breaks
			// more often under random lines than a flow-style one.
			if !bytes.Contains(data, []byte("&")) && reparsedN < steps/8 {
				t.Errorf("reparsed %d texts of %d", reparsedN, steps)
			}
		})
	}
}

// fewPods keeps the first n pods of a generated file: positions are
// compared item by item after every edit.
func fewPods(data []byte, n int) []byte {
	var out []byte
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("  - {name: p")) && !bytes.HasPrefix(line, []byte("  - {name: pol")) {
			if n == 0 {
				continue
			}
			n--
		}
		out = append(out, line...)
	}
	return out
}

func must[T any](v T, ok bool) T {
	if !ok {
		panic("must")
	}
	return v
}

// FuzzReparse edits a text once (bytes at..at+del become ins) and checks
// that a Parser that saw the text decodes the edited one as one document
// does.
func FuzzReparse(f *testing.F) {
	small := fewPods(scaletopo.Nodes(1), 3)
	f.Add(small, uint16(bytes.Index(small, []byte("ns0"))), uint8(3), []byte("ns1"))
	f.Add(small, uint16(bytes.Index(small, []byte("services:"))), uint8(0), []byte("  - {name: p9, namespace: ns0, node: n0}\n"))
	f.Add(small, uint16(bytes.Index(small, []byte("pods:"))), uint8(5), []byte("pod:"))
	f.Add([]byte(setTeamA), uint16(len(setTeamA)), uint8(0), []byte("policies:\n  - {name: p, namespace: a}\n"))
	f.Add([]byte(setTeamA), uint16(strings.Index(setTeamA, "  - {name: a2")), uint8(2), []byte("    "))
	f.Add([]byte(setTeamA), uint16(strings.Index(setTeamA, "a1")), uint8(1), []byte("&"))
	f.Fuzz(func(t *testing.T, data []byte, at uint16, del uint8, ins []byte) {
		var ic itemCache
		parse("fuzz.yaml", data, &ic)
		i := int(at) % (len(data) + 1)
		j := min(len(data), i+int(del))
		edited := append(append(append([]byte{}, data[:i]...), ins...), data[j:]...)
		top, pos, err := parse("fuzz.yaml", edited, &ic)
		sameAsWhole(t, edited, top, pos, err)
	})
}

// TestReparseCases are edits the random ones may miss: items with
// zero-valued fields before and after the edit, a sequence gaining its
// first item or losing its last, the head changing, lines gained above a
// head field below the sequences.
func TestReparseCases(t *testing.T) {
	base := "apiVersion: netreconcile/v1\nkind: Topology\nnodes:\n  - {name: n1, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}\n" +
		"pods:\n  - {name: a, namespace: x, node: n1, ports: [{port: 0}]}\n  - {name: b, namespace: x, node: n1}\n" +
		"  - {name: c, namespace: x, node: n1, ports: [{name: p, port: 0}]}\n" +
		"services:\n  - {name: s, namespace: x, clusterIP: 10.96.0.1, ports: [{port: 0}]}\n" +
		"cluster: {podCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/16, mtu: 0}\n"
	edits := [][2]string{
		{"name: b,", "name: bb,"},
		{"  - {name: b, namespace: x, node: n1}\n", ""},
		{"  - {name: b, namespace: x, node: n1}\n", "  - {name: b, namespace: x, node: n1}\n  - {name: b2, namespace: x, node: n1}\n\n# c\n"},
		{"services:\n  - {name: s, namespace: x, clusterIP: 10.96.0.1, ports: [{port: 0}]}\n", ""},
		{"services:\n", "services:\n  - {name: s0, namespace: x, clusterIP: 10.96.0.2}\n"},
		{"cluster: {", "cluster: {mode: veth, "},
		{"kind: Topology\n", "kind: Topology\n# a comment\n"},
		{"pods:\n", "pods: # the pods\n"},
		{"pods:\n", "podz:\n"},
		{"nodes:\n", "nodes:\n\n"},
		{"  - {name: c", "  - {name: c, labels: {a: b}"},
		{"ports: [{name: p, port: 0}]", "ports: [{name: p, port: 1}]"},
		{"  - {name: a, namespace: x, node: n1, ports: [{port: 0}]}\n", "  - name: a\n    namespace: x\n    node: n1\n"},
		{"mtu: 0}", "mtu: 0, bogus: 1}"},
		{"name: b,", "name: [b,"},
		// YAML counts a lone CR, NEL, LS and PS as line breaks: such a
		// file is one document (a CRLF is one break, as LF).
		{"node: n1}\n  - {name: c", "node: n1}\r  - {name: c"},
		{"node: n1}\n  - {name: c", "node: n1}\r\n  - {name: c"},
		{"{name: c", "{name: \"c\u2028\""},
		{"{name: c", "{name: \"c\u0085\""},
	}
	for _, ed := range edits {
		edited := strings.Replace(base, ed[0], ed[1], 1)
		if edited == base {
			t.Fatalf("edit %q not made", ed[0])
		}
		for _, texts := range [][]string{{base, edited}, {edited, base}} {
			var ic itemCache
			parse("fuzz.yaml", []byte(texts[0]), &ic)
			if ic.last == nil && texts[0] == base {
				t.Fatalf("does not split:\n%s", texts[0])
			}
			top, pos, err := parse("fuzz.yaml", []byte(texts[1]), &ic)
			sameAsFresh(t, []byte(texts[1]), top, pos, err)
			sameAsWhole(t, []byte(texts[1]), top, pos, err)
		}
	}
}

// TestReparseSet edits the files of a set at random: the merged topology,
// its errors and its positions are those of a fresh load after every
// edit.
func TestReparseSet(t *testing.T) {
	srcs := []Source{{"head.yaml", []byte(setHead)}, {"a.yaml", []byte(setTeamA)}, {"b.yaml", []byte(setTeamB)}}
	rng := rand.New(rand.NewPCG(7, 7))
	editors := make([]*editor, len(srcs))
	for i, src := range srcs {
		editors[i] = newEditor(uint64(i), src.Data)
	}
	var p Parser
	for step := range 300 {
		parts, perr := p.parse(srcs, true)
		top, pos, err := assemble(parts, perr)
		var fresh Parser
		fparts, fperr := fresh.parse(srcs, false)
		ftop, fpos, ferr := assemble(fparts, fperr)
		if fmt.Sprint(err) != fmt.Sprint(ferr) || !reflect.DeepEqual(top, ftop) {
			t.Fatalf("step %d: %v\n%+v\nfresh: %v\n%+v", step, err, top, ferr, ftop)
		}
		for _, path := range samplePaths(ftop) {
			if pos.Has(path) != fpos.Has(path) || pos.Lookup(path) != fpos.Lookup(path) ||
				*pos.ErrorAt(path, "x") != *fpos.ErrorAt(path, "x") {
				t.Fatalf("step %d: %s at %v, fresh %v", step, path, pos.ErrorAt(path, "x"), fpos.ErrorAt(path, "x"))
			}
		}
		_, rerr := resolveParsed(top, pos, err)
		_, frerr := resolveParsed(ftop, fpos, ferr)
		if fmt.Sprint(rerr) != fmt.Sprint(frerr) {
			t.Fatalf("step %d: resolve: %v\nfresh: %v", step, rerr, frerr)
		}
		i := rng.IntN(len(srcs))
		for k, src := range srcs {
			last := p.files[src.Name].last
			editors[k].splits(last != nil && bytes.Equal(last.data, src.Data))
		}
		srcs[i].Data = editors[i].edit()
	}
}

// samplePaths are paths of every item of t's lists and some of their
// fields, and of the header.
func samplePaths(t *Topology) []string {
	paths := []string{"apiVersion", "kind", "cluster", "cluster.podCIDR", "pods", "services"}
	if t == nil {
		return paths
	}
	v := reflect.ValueOf(t).Elem()
	fields := fieldsOf(reflect.TypeFor[Topology]())
	for _, list := range mergedLists {
		for i := range v.Field(fields[list]).Len() + 1 {
			for _, f := range []string{"", ".name", ".namespace", ".node", ".ports[0].port", ".labels[app]"} {
				paths = append(paths, index(list, i)+f)
			}
		}
	}
	return paths
}

// A file rewritten with a new first and last line reuses the items
// between them, found by their text, and decodes the same as a fresh
// parse.
func TestReparseRewrittenFile(t *testing.T) {
	data := scaletopo.Nodes(4)
	var ic itemCache
	if _, _, err := parse("fuzz.yaml", data, &ic); err != nil || ic.last == nil {
		t.Fatalf("%v", err)
	}
	wasPods := ic.last.t.Pods
	pod := bytes.Index(data, []byte("  - {name: p7,"))
	edited := slices.Concat([]byte("# generated again\n"), data[:pod], []byte("  - {name: new, namespace: ns0, node: n0}\n"),
		data[pod:], []byte("# end\n"))
	top, pos, err := parse("fuzz.yaml", edited, &ic)
	sameAsFresh(t, edited, top, pos, err)
	if len(top.Pods) != len(wasPods)+1 {
		t.Fatalf("%d pods, was %d", len(top.Pods), len(wasPods))
	}
	// Values decoded again would have their own label maps.
	if reflect.ValueOf(top.Pods[100].Labels).UnsafePointer() != reflect.ValueOf(wasPods[99].Labels).UnsafePointer() {
		t.Error("pods[100] decoded again, not found by its text")
	}
}
