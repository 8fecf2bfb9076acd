// Package scaletopo writes issue 7's scale topology for benchmarks that
// need no kernel: 1000 veth pods on node n1, 5000 services of 10 backends
// each with a named targetPort, and 500 policies, in flow style as
// e2e/bench/scale writes it.
package scaletopo

import (
	"fmt"
	"strings"

	"github.com/netreconcile/netreconcile/spec"
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
// benchmark and issue 18's per-node ones: reach/bench_test.go's 1000-node
// cluster scaled to it (Cluster(100): ten times smaller). One namespace
// per node (at least 100), labelled by team and env; 50 veth pods per
// node spread over the namespaces, labelled with one of 50 apps and a
// label of their own; 10 services per node, one per 5 pods (two per
// namespace and app at 100 nodes, each backed by its one pod there, ten
// pods each from 1000 nodes on, on a named targetPort); 2 policies per
// node, so 2 per namespace (ingress on 8080 from the next app or from a
// team's namespaces; one in ten also has an egress rule to the prod
// namespaces).
func Cluster(nodes int) []byte {
	nss := max(100, nodes)
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

// Split cuts a file written by this package (flow style: one item a line
// under its list's key) into documents of at most max bytes each (a line
// longer than that makes its own document), for files over the parser's
// limit: every document but the first repeats the header lines
// (apiVersion, kind) and the key of the list it continues. Parsed and
// joined (Join), they are the file.
func Split(data []byte, max int) [][]byte {
	var parts [][]byte
	var cur, header []byte
	list := ""
	for line := range strings.Lines(string(data)) {
		item := strings.HasPrefix(line, " ")
		if len(cur)+len(line) > max && len(cur) > len(header)+len(list) {
			parts = append(parts, cur)
			cur = append([]byte(nil), header...)
			if item {
				cur = append(cur, list...)
			}
		}
		switch {
		case strings.HasPrefix(line, "apiVersion:") || strings.HasPrefix(line, "kind:"):
			header = append(header, line...)
		case !item:
			list = line // a top-level key: a list follows, or a mapping on its line
		}
		cur = append(cur, line...)
	}
	return append(parts, cur)
}

// Join parses the documents Split made and resolves them as one file
// (spec.Resolve, without positions): the model of a file over the
// parser's limit, built in memory. It also returns the joined topology,
// for edits.
func Join(parts [][]byte) (*spec.Topology, *spec.Resolved, error) {
	t := &spec.Topology{}
	for i, data := range parts {
		p, _, err := spec.Parse(fmt.Sprintf("part%d.yaml", i), data)
		if err != nil {
			return nil, nil, err
		}
		if i == 0 {
			t.APIVersion, t.Kind, t.Cluster = p.APIVersion, p.Kind, p.Cluster
		}
		t.Namespaces = append(t.Namespaces, p.Namespaces...)
		t.Nodes = append(t.Nodes, p.Nodes...)
		t.Pods = append(t.Pods, p.Pods...)
		t.Services = append(t.Services, p.Services...)
		t.Policies = append(t.Policies, p.Policies...)
	}
	r, err := spec.Resolve(t, nil)
	return t, r, err
}
