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

// Cluster returns a cluster of nodes nodes, for issue 16's cluster plan
// benchmark: reach/bench_test.go's 1000-node cluster scaled down to it
// (Cluster(100): ten times). 100 namespaces labelled by team and env; 50
// veth pods per node spread over the namespaces, labelled with one of
// 50 apps and a label of their own; 10 services per node (two per
// namespace and app at 100 nodes, each backed by its one pod there, on a
// named targetPort); 2 policies per node (ingress on 8080 from the next
// app or from a team's namespaces; one in ten also has an egress rule to
// the prod namespaces). Past 100 nodes a service's backends grow with
// the cluster (50 each at 5000 nodes): Nodes keeps them at 5.
func Cluster(nodes int) []byte {
	nss := 100
	var s strings.Builder
	s.WriteString("apiVersion: netreconcile/v1\nkind: Topology\n")
	s.WriteString("cluster: {podCIDR: 10.0.0.0/8, serviceCIDR: 172.20.0.0/16}\nnamespaces:\n")
	for i := range nss {
		fmt.Fprintf(&s, "  - {name: ns%d, labels: {team: t%d, env: %s}}\n", i, i%10, []string{"prod", "dev"}[i%2])
	}
	s.WriteString("nodes:\n")
	for i := range nodes {
		fmt.Fprintf(&s, "  - {name: n%d, address: 192.168.%d.%d/16, uplink: eth0, podCIDR: 10.%d.%d.0/24}\n",
			i, i/250, 1+i%250, 1+i/250, i%250)
	}
	s.WriteString("pods:\n")
	for j := range 50 * nodes {
		n := j / 50
		fmt.Fprintf(&s, "  - {name: p%d, namespace: ns%d, node: n%d, ip: 10.%d.%d.%d, mode: veth, labels: {app: a%d, instance: p%d}, "+
			"ports: [{name: web, port: 8080}, {name: metrics, port: 9090}]}\n", j, j%nss, n, 1+n/250, n%250, 2+j%50, (j/100)%50, j)
	}
	s.WriteString("services:\n")
	for k := range 10 * nodes {
		fmt.Fprintf(&s, "  - {name: s%d, namespace: ns%d, clusterIP: 172.20.%d.%d, selector: {app: a%d}, ports: [{port: 80, targetPort: web}]}\n",
			k, k%nss, k/250, 1+k%250, (k/100)%50)
	}
	s.WriteString("policies:\n")
	for k := range 2 * nodes {
		egress := ""
		if k%10 == 0 {
			egress = ", policyTypes: [Ingress, Egress], egress: [{to: [{namespaceSelector: {matchLabels: {env: prod}}}]}]"
		}
		fmt.Fprintf(&s, "  - {name: pol%d, namespace: ns%d, spec: {podSelector: {matchLabels: {app: a%d}}, ingress: [{from: "+
			"[{podSelector: {matchLabels: {app: a%d}}}, {namespaceSelector: {matchLabels: {team: t%d}}}], ports: [{port: 8080}]}]%s}}\n",
			k, k%nss, k%50, (k+1)%50, k%10, egress)
	}
	return []byte(s.String())
}

// Nodes returns issue 18's cluster of nodes nodes: per node 50 veth pods,
// 10 services (one per 5 pods) and one namespace with 2 policies. A
// node's pods go to 50 namespaces and each namespace has pods on 50
// nodes: pod j is in namespace j mod nodes, labelled with one of 10
// apps (5 pods each per namespace, on 5 nodes) and a label of its own.
// Service k selects one app of namespace k mod nodes (5 backends, named
// targetPort). Policy k selects one app of its namespace and admits
// ingress on 8080 from another app there or from the 10 infra namespaces
// (ns0-ns9, whatever the size); one in ten also has an egress rule to
// them. So what a node's policies admit does not grow with the cluster.
// Map sizes are raised where the defaults are too small for what every
// node holds (every service's backends); a node's policy identities are
// its own pods and the peers its policies name, well under the default.
func Nodes(nodes int) []byte {
	pods, svcs := 50*nodes, 10*nodes
	var s strings.Builder
	s.WriteString("apiVersion: netreconcile/v1\nkind: Topology\n")
	fmt.Fprintf(&s, "cluster: {podCIDR: 10.0.0.0/8, serviceCIDR: 172.16.0.0/12%s}\nnamespaces:\n", mapSizes(5*svcs, svcs))
	for i := range nodes {
		fmt.Fprintf(&s, "  - {name: ns%d, labels: {team: t%d, role: %s}}\n", i, i%10, map[bool]string{true: "infra", false: "app"}[i < 10])
	}
	s.WriteString("nodes:\n")
	for i := range nodes {
		fmt.Fprintf(&s, "  - {name: n%d, address: 192.168.%d.%d/16, uplink: eth0, podCIDR: 10.%d.%d.0/24}\n",
			i, i/250, 1+i%250, 1+i/250, i%250)
	}
	s.WriteString("pods:\n")
	for j := range pods {
		n := j / 50
		fmt.Fprintf(&s, "  - {name: p%d, namespace: ns%d, node: n%d, ip: 10.%d.%d.%d, mode: veth, labels: {app: a%d, instance: p%d}, "+
			"ports: [{name: web, port: 8080}, {name: metrics, port: 9090}]}\n", j, j%nodes, n, 1+n/250, n%250, 2+j%50, j/nodes/5, j)
	}
	s.WriteString("services:\n")
	for k := range svcs {
		fmt.Fprintf(&s, "  - {name: s%d, namespace: ns%d, clusterIP: 172.%d.%d.%d, selector: {app: a%d}, ports: [{port: 80, targetPort: web}]}\n",
			k, k%nodes, 16+k/62500, (k%62500)/250, 1+k%250, k/nodes)
	}
	s.WriteString("policies:\n")
	for k := range 2 * nodes {
		egress := ""
		if k%10 == 0 {
			egress = ", policyTypes: [Ingress, Egress], egress: [{to: [{namespaceSelector: {matchLabels: {role: infra}}}]}]"
		}
		fmt.Fprintf(&s, "  - {name: pol%d, namespace: ns%d, spec: {podSelector: {matchLabels: {app: a%d}}, ingress: [{from: "+
			"[{podSelector: {matchLabels: {app: a%d}}}, {namespaceSelector: {matchLabels: {role: infra}}}], ports: [{port: 8080}]}]%s}}\n",
			k, k%nodes, k%10, (k+1)%10, egress)
	}
	return []byte(s.String())
}

// mapSizes is the cluster's datapath map sizes for backends and
// services, each twice what is needed in a power of two, where that is
// over the default (65536).
func mapSizes(backends, services int) string {
	var fields []string
	for _, f := range []struct {
		name string
		n    int
	}{{"backends", backends}, {"services", services}} {
		size := 1 << 16
		for size < 2*f.n {
			size <<= 1
		}
		if size > 1<<16 {
			fields = append(fields, fmt.Sprintf("%s: %d", f.name, size))
		}
	}
	if len(fields) == 0 {
		return ""
	}
	return ", datapath: {maps: {" + strings.Join(fields, ", ") + "}}"
}
