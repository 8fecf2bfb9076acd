package spec

import (
	"bytes"
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
