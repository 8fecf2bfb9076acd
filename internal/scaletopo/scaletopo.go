// Package scaletopo writes issue 7's scale topology for benchmarks that
// need no kernel: 1000 veth pods on node n1, 5000 services of 10 backends
// each with a named targetPort, and 500 policies, in flow style as
// e2e/bench/scale writes it.
package scaletopo

import (
	"fmt"
	"strings"
)

// File returns the topology file.
func File() []byte {
	var s strings.Builder
	s.WriteString("apiVersion: netreconcile/v1\nkind: Topology\n")
	s.WriteString("cluster: {podCIDR: 10.0.0.0/10, serviceCIDR: 10.96.0.0/16}\nnamespaces:\n")
	for i := range 10 {
		fmt.Fprintf(&s, "  - {name: g%d, labels: {team: t%d}}\n", i, i)
	}
	s.WriteString("nodes:\n  - {name: n1, address: 192.168.0.1/24, uplink: eth0, podCIDR: 10.1.0.0/16}\npods:\n")
	for i := range 1000 {
		fmt.Fprintf(&s, "  - {name: p%d, namespace: g%d, node: n1, ip: 10.1.%d.%d, mode: veth, netns: p%d, labels: {app: a%d}, ports: [{name: web, port: 8080}]}\n",
			i, i%10, 1+i/250, 1+i%250, i, i%100)
	}
	s.WriteString("services:\n")
	for i := range 5000 {
		fmt.Fprintf(&s, "  - {name: s%d, namespace: g%d, clusterIP: 10.96.%d.%d, selector: {app: a%d}, ports: [{port: 80, targetPort: web}]}\n",
			i, i%10, i/250, 1+i%250, i%100)
	}
	s.WriteString("policies:\n")
	for i := range 500 {
		fmt.Fprintf(&s, "  - {name: pol%d, namespace: g%d, spec: {podSelector: {matchLabels: {app: a%d}}, ingress: [{from: [{podSelector: {matchLabels: {app: a%d}}}], ports: [{port: %d}]}]}}\n",
			i, i%10, i%100, (i+10)%100, 1000+i)
	}
	return []byte(s.String())
}
