package spec

import (
	"bytes"
	"runtime"
	"slices"
	"testing"

	"github.com/netreconcile/netreconcile/internal/scaletopo"
)

// BenchmarkParseScale decodes, validates and resolves the scale file: the
// fixed cost of every plan at that size.
func BenchmarkParseScale(b *testing.B) {
	data := scaletopo.File()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadBytes("scale.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParserOneChange is what the watch daemon pays to read the scale
// file after one service changed: the Parser decodes that item alone.
func BenchmarkParserOneChange(b *testing.B) {
	data := scaletopo.File()
	changed := bytes.Replace(data, []byte("{name: s0, namespace: g0, clusterIP: 10.96.0.1, selector: {app: a0}"),
		[]byte("{name: s0, namespace: g0, clusterIP: 10.96.0.1, selector: {app: a10}"), 1)
	if bytes.Equal(changed, data) {
		b.Fatal("no service to change")
	}
	var p Parser
	if _, _, err := p.Load([]Source{{"scale.yaml", data}}); err != nil {
		b.Fatal(err)
	}
	files := [][]byte{changed, data}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, err := p.Load([]Source{{"scale.yaml", files[i%2]}}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkParserEdit1000 is the parse step (everything before Resolve)
// of the watch daemon's reload at 1000 nodes after one line changed, every
// other run back: a pod's line edited ("change"), or a pod added before
// the services ("insert", which moves every item below it). It reports the
// live heap of a Parser and the parts it returned (what the daemon holds)
// after GC as heap-MB.
func BenchmarkParserEdit1000(b *testing.B) {
	data := scaletopo.Nodes(1000)
	changed := bytes.Replace(data, []byte("{name: p25000, namespace: ns0,"), []byte("{name: p25000, namespace: ns1,"), 1)
	i := bytes.Index(data, []byte("\nservices:\n")) + 1
	inserted := slices.Concat(data[:i], []byte("  - {name: added, namespace: ns0, node: n0, labels: {app: a0}}\n"), data[i:])
	if bytes.Equal(changed, data) || i == 0 {
		b.Fatal("no pod to edit")
	}
	for _, edit := range []struct {
		name string
		data []byte
	}{{"change", changed}, {"insert", inserted}} {
		b.Run(edit.name, func(b *testing.B) {
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			var p Parser
			parts, err := p.parse([]Source{{"scale.yaml", data}}, true)
			if err != nil {
				b.Fatal(err)
			}
			var after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(parts)
			heap := float64(after.HeapAlloc) - float64(before.HeapAlloc)
			files := [][]byte{edit.data, data}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := p.parse([]Source{{"scale.yaml", files[i%2]}}, true); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(heap/1e6, "heap-MB")
		})
	}
}
