package policy

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/spec"
)

// The standard model of the Kubernetes network-policy e2e tests:
// namespaces x, y, z labelled ns=<name>, pods a, b, c in each labelled
// pod=<name>, every pod serving TCP and UDP on 80 and 81 with the e2e port
// names. Pods are spread over two nodes so that ipBlock tests can pick
// them by pod CIDR: node-1 (10.244.1.0/24) holds x/a x/c y/b z/a z/c,
// node-2 (10.244.2.0/24) holds x/b y/a y/c z/b.
var stdPods = []string{"x/a", "x/b", "x/c", "y/a", "y/b", "y/c", "z/a", "z/b", "z/c"}

var stdPlacement = map[string]struct{ node, ip string }{
	"x/a": {"node-1", "10.244.1.11"},
	"x/b": {"node-2", "10.244.2.12"},
	"x/c": {"node-1", "10.244.1.13"},
	"y/a": {"node-2", "10.244.2.21"},
	"y/b": {"node-1", "10.244.1.22"},
	"y/c": {"node-2", "10.244.2.23"},
	"z/a": {"node-1", "10.244.1.31"},
	"z/b": {"node-2", "10.244.2.32"},
	"z/c": {"node-1", "10.244.1.33"},
}

// modelYAML writes the standard model with the given policies (YAML list
// items, indented by two spaces). webPort, when not nil, also gives every
// pod a TCP port named "web" on 80, or on the number webPort lists for it,
// to show that named ports resolve per destination pod.
func modelYAML(policies string, webPort map[string]int) string {
	var b strings.Builder
	b.WriteString(`apiVersion: netreconcile/v1
kind: Topology
cluster:
  podCIDR: 10.244.0.0/16
namespaces:
  - {name: x, labels: {ns: x}}
  - {name: y, labels: {ns: y}}
  - {name: z, labels: {ns: z}}
nodes:
  - {name: node-1, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}
  - {name: node-2, address: 172.31.1.3/24, podCIDR: 10.244.2.0/24}
pods:
`)
	for _, key := range stdPods {
		ns, name, _ := strings.Cut(key, "/")
		pl := stdPlacement[key]
		ports := "{name: serve-80-tcp, port: 80, protocol: TCP}, {name: serve-80-udp, port: 80, protocol: UDP}, " +
			"{name: serve-81-tcp, port: 81, protocol: TCP}, {name: serve-81-udp, port: 81, protocol: UDP}"
		if webPort != nil {
			w := 80
			if n, ok := webPort[key]; ok {
				w = n
			}
			ports += fmt.Sprintf(", {name: web, port: %d}", w)
		}
		fmt.Fprintf(&b, "  - {name: %s, namespace: %s, node: %s, ip: %s, labels: {pod: %s}, ports: [%s]}\n",
			name, ns, pl.node, pl.ip, name, ports)
	}
	if strings.TrimSpace(policies) != "" {
		b.WriteString("policies:\n" + policies)
	}
	return b.String()
}

func loadModel(t *testing.T, policies string, webPort map[string]int) *spec.Resolved {
	t.Helper()
	src := modelYAML(policies, webPort)
	r, err := spec.LoadBytes("model.yaml", []byte(src))
	if err != nil {
		t.Fatalf("load model: %v\n%s", err, src)
	}
	return r
}

// grid parses a hand-written expected table over the standard pods.
func grid(t *testing.T, text string) [][]bool {
	t.Helper()
	names, m, err := ParseMatrix(text)
	if err != nil {
		t.Fatalf("expected table: %v", err)
	}
	if !slices.Equal(names, stdPods) {
		t.Fatalf("expected table names %v, want %v", names, stdPods)
	}
	return m
}
