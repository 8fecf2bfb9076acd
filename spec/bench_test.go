package spec

import (
	"bytes"
	"fmt"
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
