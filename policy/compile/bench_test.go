package compile

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/internal/scaletopo"
	"github.com/netreconcile/netreconcile/spec"
)

// BenchmarkCompile1000 compiles 1000 policies over 500 pods (the shape of
// e2e/bench/policy) for the node holding the two pods they select.
func BenchmarkCompile1000(b *testing.B) {
	var s strings.Builder
	s.WriteString("apiVersion: netreconcile/v1\nkind: Topology\ncluster: {podCIDR: 10.244.0.0/16}\nnamespaces:\n")
	for t := range 10 {
		fmt.Fprintf(&s, "  - {name: g%d, labels: {team: t%d}}\n", t, t)
	}
	s.WriteString("nodes:\n  - {name: a, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}\n  - {name: g, address: 172.31.1.9/24, podCIDR: 10.244.8.0/22}\npods:\n")
	s.WriteString("  - {name: client, namespace: bench, node: a, labels: {role: client}}\n  - {name: server, namespace: bench, node: a, labels: {role: server}}\n")
	for k := range 498 {
		fmt.Fprintf(&s, "  - {name: p%d, namespace: g%d, node: g, labels: {app: app-%d, tier: t%d}, ports: [{name: web, port: %d}]}\n", k, k%10, k, k%7, 8000+k%50)
	}
	s.WriteString("policies:\n")
	for i := 2; i < 1000; i++ {
		k := i % 498
		if i%2 == 0 {
			fmt.Fprintf(&s, "  - name: in-%d\n    namespace: bench\n    spec:\n      podSelector: {matchLabels: {role: server}}\n      ingress:\n        - from: [{namespaceSelector: {matchLabels: {team: t%d}}, podSelector: {matchLabels: {app: app-%d}}}, {ipBlock: {cidr: 192.0.%d.0/24, except: [192.0.%d.%d/32]}}]\n          ports: [{port: %d}, {port: web}]\n", i, k%10, k, i%256, i%256, i%200, 10000+i)
		} else {
			fmt.Fprintf(&s, "  - name: out-%d\n    namespace: bench\n    spec:\n      podSelector: {matchLabels: {role: client}}\n      policyTypes: [Egress]\n      egress:\n        - to: [{namespaceSelector: {}, podSelector: {matchLabels: {tier: t%d, app: app-%d}}}]\n          ports: [{port: %d, endPort: %d, protocol: UDP}, {port: web}]\n", i, k%7, k, 10000+i, 10020+i)
		}
	}
	r, err := spec.LoadBytes("x.yaml", []byte(s.String()))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Node(r, "a"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewClusterFrom1000 is a watch pass's policy work at 1000 nodes
// (scaletopo.Nodes: 50,000 pods in as many classes): the file differs
// from the last by a pod removed and one added, the class table is
// compacted as a daemon keeps it, carried and patched, and node n0 is
// compiled. BenchmarkNewCluster1000 is the same without carrying.
func BenchmarkNewClusterFrom1000(b *testing.B) {
	benchmarkEdits(b, func(prev *Cluster, r *spec.Resolved) *Cluster {
		prev.Compact()
		return NewClusterFrom(prev, r)
	})
}

func BenchmarkNewCluster1000(b *testing.B) {
	benchmarkEdits(b, func(_ *Cluster, r *spec.Resolved) *Cluster { return NewCluster(r) })
}

func benchmarkEdits(b *testing.B, next func(*Cluster, *spec.Resolved) *Cluster) {
	data := scaletopo.Nodes(1000)
	at := bytes.Index(data, []byte("\nservices:\n")) + 1
	var p spec.Parser
	var files [2]*spec.Resolved
	for k := range files {
		pod := fmt.Sprintf("  - {name: added%d, namespace: ns0, node: n0, ip: 10.1.0.%d, mode: veth, labels: {app: a0, instance: added}, "+
			"ports: [{name: web, port: 8080}]}\n", k, 100+k)
		r, _, err := p.Load([]spec.Source{{Name: "f", Data: slices.Concat(data[:at], []byte(pod), data[at:])}})
		if err != nil {
			b.Fatal(err)
		}
		files[k] = r
	}
	cl := NewCluster(files[0])
	if _, err := cl.Node("n0"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		cl = next(cl, files[(i+1)%2])
		if _, err := cl.Node("n0"); err != nil {
			b.Fatal(err)
		}
	}
}
