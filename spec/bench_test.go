package spec

import (
	"bytes"
	"fmt"
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

// withPod is issue 18's 1000-node file with one pod more (k picks it).
func withPod(b *testing.B, data []byte, k int) []byte {
	pod := fmt.Sprintf("  - {name: added%d, namespace: ns0, node: n0, ip: 10.1.0.%d, mode: veth, labels: {app: a0, instance: added}, "+
		"ports: [{name: web, port: 8080}, {name: metrics, port: 9090}]}\n", k, 100+k)
	i := bytes.Index(data, []byte("\nservices:\n"))
	if i < 0 {
		b.Fatal("no services in the file")
	}
	return bytes.Join([][]byte{data[:i+1], []byte(pod), data[i+1:]}, nil)
}

// BenchmarkParserEdit1000 is the watch daemon's reload of issue 18's
// 1000-node file (50,000 pods) after a one-pod edit: the Parser decodes
// that item alone and resolves by difference.
func BenchmarkParserEdit1000(b *testing.B) {
	data := scaletopo.Nodes(1000)
	files := [][]byte{withPod(b, data, 0), withPod(b, data, 1)}
	var p Parser
	if _, _, err := p.Load([]Source{{"f.yaml", data}}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, err := p.Load([]Source{{"f.yaml", files[i%2]}}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	if p.deltas < i {
		b.Fatalf("%d of %d loads resolved by difference", p.deltas, i)
	}
}

// BenchmarkResolveEdit1000 is the resolve step of BenchmarkParserEdit1000
// alone, by difference (delta) and whole (full: before).
func BenchmarkResolveEdit1000(b *testing.B) {
	data := scaletopo.Nodes(1000)
	var p Parser
	var ts [2]*Topology
	var ps [2]*Positions
	for k := range 2 {
		parts, err := p.parse([]Source{{"f.yaml", withPod(b, data, k)}}, true)
		if ts[k], ps[k], err = assemble(parts, err); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			if _, err := Resolve(ts[0], ps[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("delta", func(b *testing.B) {
		r, err := Resolve(ts[0], ps[0])
		if err != nil {
			b.Fatal(err)
		}
		p.remember(ts[0], ps[0], r)
		p.resolveDelta(ts[1], ps[1]) // builds the index
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if p.resolveDelta(ts[i%2], ps[i%2]) == nil {
				b.Fatal("not resolved by difference")
			}
			i++
		}
	})
}

// BenchmarkParseEdit1000 is the parse step (everything before Resolve)
// of the watch daemon's reload at 1000 nodes after one line changed, every
// other run back: a pod's line edited ("change"), or a pod added before
// the services ("insert", which moves every item below it). It reports the
// live heap of a Parser and the parts it returned (what the daemon holds)
// after GC as heap-MB.
func BenchmarkParseEdit1000(b *testing.B) {
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
