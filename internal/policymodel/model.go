// Package policymodel is the standard model of the Kubernetes
// network-policy e2e tests, and the policy scenarios run on it, shared by
// the tests that hold the datapath to package policy's evaluator: the
// compiler's tests (in memory) and the end-to-end tests (in real
// namespaces, through the binary).
//
// The model: namespaces x, y, z labelled ns=<name>, pods a, b, c in each
// labelled pod=<name>, every pod serving TCP and UDP on 80 and 81 with the
// e2e port names, spread over two nodes so that ipBlock scenarios can pick
// pods by pod CIDR: node 1 (10.244.1.0/24) holds x/a x/c y/b z/a z/c,
// node 2 (10.244.2.0/24) holds x/b y/a y/c z/b. The scenarios carry no
// expected tables: callers compute them with policy.Matrix, which package
// policy's own tests check against hand-written tables.
package policymodel

import (
	"fmt"
	"strings"
)

// Pods are the model's pod keys, in the order of a matrix's rows.
var Pods = []string{"x/a", "x/b", "x/c", "y/a", "y/b", "y/c", "z/a", "z/b", "z/c"}

// Placement is where each pod runs: node 0 or 1, and its address.
var Placement = map[string]struct {
	Node int
	IP   string
}{
	"x/a": {0, "10.244.1.11"},
	"x/b": {1, "10.244.2.12"},
	"x/c": {0, "10.244.1.13"},
	"y/a": {1, "10.244.2.21"},
	"y/b": {0, "10.244.1.22"},
	"y/c": {1, "10.244.2.23"},
	"z/a": {0, "10.244.1.31"},
	"z/b": {1, "10.244.2.32"},
	"z/c": {0, "10.244.1.33"},
}

// Check is one port and protocol a scenario's matrix is checked on.
type Check struct {
	Port  int
	Proto string
}

// Scenario is a set of policies on the model.
type Scenario struct {
	Name string
	// Policies are YAML list items of policies:, indented by two spaces.
	Policies string
	// WebPort, when not nil, also gives every pod a TCP port named "web"
	// on 80, or on the number listed for it.
	WebPort map[string]int
	Checks  []Check
}

// Options shape the topology file of the model.
type Options struct {
	// Nodes are the two node names (default node-1, node-2).
	Nodes [2]string
	// Netns names a pod's namespace (default: the file leaves it out).
	Netns func(key string) string
	// Mode gives a pod's mode (default: the file leaves it out).
	Mode func(key string) string
	// ServiceCIDR is cluster.serviceCIDR (default: none).
	ServiceCIDR string
	// Extra is appended to the file (for example a services: section).
	Extra string
}

// YAML writes the model as a topology file with the scenario's policies.
func YAML(sc Scenario, o Options) string {
	if o.Nodes[0] == "" {
		o.Nodes = [2]string{"node-1", "node-2"}
	}
	var b strings.Builder
	b.WriteString("apiVersion: netreconcile/v1\nkind: Topology\ncluster:\n  podCIDR: 10.244.0.0/16\n")
	if o.ServiceCIDR != "" {
		fmt.Fprintf(&b, "  serviceCIDR: %s\n", o.ServiceCIDR)
	}
	fmt.Fprintf(&b, `namespaces:
  - {name: x, labels: {ns: x}}
  - {name: y, labels: {ns: y}}
  - {name: z, labels: {ns: z}}
nodes:
  - {name: %s, address: 172.31.1.2/24, uplink: eth0, podCIDR: 10.244.1.0/24}
  - {name: %s, address: 172.31.1.3/24, uplink: eth0, podCIDR: 10.244.2.0/24}
pods:
`, o.Nodes[0], o.Nodes[1])
	for _, key := range Pods {
		ns, name, _ := strings.Cut(key, "/")
		pl := Placement[key]
		ports := "{name: serve-80-tcp, port: 80, protocol: TCP}, {name: serve-80-udp, port: 80, protocol: UDP}, " +
			"{name: serve-81-tcp, port: 81, protocol: TCP}, {name: serve-81-udp, port: 81, protocol: UDP}"
		if sc.WebPort != nil {
			w := 80
			if n, ok := sc.WebPort[key]; ok {
				w = n
			}
			ports += fmt.Sprintf(", {name: web, port: %d}", w)
		}
		extra := ""
		if o.Netns != nil {
			extra += ", netns: " + o.Netns(key)
		}
		if o.Mode != nil {
			extra += ", mode: " + o.Mode(key)
		}
		fmt.Fprintf(&b, "  - {name: %s, namespace: %s, node: %s, ip: %s, labels: {pod: %s}, ports: [%s]%s}\n",
			name, ns, o.Nodes[pl.Node], pl.IP, name, ports, extra)
	}
	if strings.TrimSpace(sc.Policies) != "" {
		b.WriteString("policies:\n" + sc.Policies)
	}
	b.WriteString(o.Extra)
	return b.String()
}
