package desired

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/policy/compile"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// capacityTopology writes a random but valid file from seed: 3 to 6
// nodes, pods of two namespaces spread over them, some declaring the
// named port "web" (on different numbers) and some not, some bridge
// pods; services of both types with every traffic policy, external IPs,
// named and numbered target ports; policies selecting by app, admitting
// pods, namespaces and ipBlocks (one of them a node's podCIDR), on named
// and numbered ports, some with egress.
func capacityTopology(seed uint64) string {
	rnd := rand.New(rand.NewPCG(seed, 18))
	var b strings.Builder
	b.WriteString("apiVersion: netreconcile/v1\nkind: Topology\n")
	b.WriteString("cluster: {podCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/16}\n")
	b.WriteString("namespaces:\n  - {name: x, labels: {team: t0}}\n  - {name: y, labels: {team: t1}}\nnodes:\n")
	nodes := 3 + rnd.IntN(4)
	for n := range nodes {
		fmt.Fprintf(&b, "  - {name: n%d, address: 172.31.1.%d/24, podCIDR: 10.244.%d.0/24}\n", n, n+1, n)
	}
	b.WriteString("pods:\n")
	for i := range 6 + rnd.IntN(20) {
		mode, ports := "veth", ""
		if rnd.IntN(5) == 0 {
			mode = "bridge"
		}
		if rnd.IntN(4) != 0 {
			ports = fmt.Sprintf(", ports: [{name: web, port: %d}]", 8080+rnd.IntN(2))
		}
		fmt.Fprintf(&b, "  - {name: p%d, namespace: %s, node: n%d, mode: %s, labels: {app: a%d}%s}\n",
			i, []string{"x", "y"}[rnd.IntN(2)], rnd.IntN(nodes), mode, rnd.IntN(3), ports)
	}
	b.WriteString("services:\n")
	for k := range 2 + rnd.IntN(8) {
		fields, nodePort := serviceFields(rnd, k)
		fmt.Fprintf(&b, "  - {name: s%d, namespace: %s, clusterIP: 10.96.0.%d, selector: {app: a%d}%s, ports: [%s]}\n",
			k, []string{"x", "y"}[rnd.IntN(2)], k+1, rnd.IntN(3), fields, servicePorts(rnd, k, nodePort))
	}
	b.WriteString("policies:\n")
	for k := range 1 + rnd.IntN(5) {
		fmt.Fprintf(&b, "  - {name: pol%d, namespace: %s, spec: {podSelector: {matchLabels: {app: a%d}}, %s}}\n",
			k, []string{"x", "y"}[rnd.IntN(2)], rnd.IntN(3), policyRules(rnd))
	}
	return b.String()
}

// serviceFields are a random service's type, traffic policies and
// external IPs, and whether it is a NodePort.
func serviceFields(rnd *rand.Rand, k int) (string, bool) {
	var f []string
	nodePort := rnd.IntN(2) == 0
	if nodePort {
		f = append(f, "type: NodePort")
	}
	if rnd.IntN(2) == 0 {
		f = append(f, "internalTrafficPolicy: Local")
	}
	ips := make([]string, rnd.IntN(3))
	for i := range ips {
		ips[i] = fmt.Sprintf("198.51.100.%d", 10*k+i+1)
	}
	if len(ips) > 0 {
		f = append(f, "externalIPs: ["+strings.Join(ips, ", ")+"]")
	}
	if (nodePort || len(ips) > 0) && rnd.IntN(2) == 0 {
		f = append(f, "externalTrafficPolicy: Local")
	}
	if len(f) == 0 {
		return "", nodePort
	}
	return ", " + strings.Join(f, ", "), nodePort
}

// servicePorts are one or two ports of service k, named or numbered
// targets; a NodePort service's each get their own nodePort.
func servicePorts(rnd *rand.Rand, k int, nodePort bool) string {
	var ports []string
	for j := range 1 + rnd.IntN(2) {
		target := "web"
		if rnd.IntN(2) == 0 {
			target = "9090"
		}
		np := ""
		if nodePort {
			np = fmt.Sprintf(", nodePort: %d", 30000+10*k+j)
		}
		ports = append(ports, fmt.Sprintf("{name: p%d, port: %d, targetPort: %s%s}", j, 80+j, target, np))
	}
	return strings.Join(ports, ", ")
}

// policyRules are a random policy's ingress rule and, one in three, an
// egress rule.
func policyRules(rnd *rand.Rand) string {
	peers := []string{"{podSelector: {matchLabels: {app: a0}}}", "{podSelector: {matchLabels: {app: a2}}}",
		"{namespaceSelector: {matchLabels: {team: t1}}}", "{ipBlock: {cidr: 10.244.1.0/24, except: [10.244.1.4/32]}}",
		"{ipBlock: {cidr: 192.0.2.0/24}}"}
	ports := []string{"[{port: web}]", "[{port: 80}, {port: 443}]", "[{port: 1000, endPort: 1031, protocol: UDP}]", "[]"}
	rule := func() string {
		var from []string
		for _, p := range peers {
			if rnd.IntN(3) == 0 {
				from = append(from, p)
			}
		}
		return "[" + strings.Join(from, ", ") + "], ports: " + ports[rnd.IntN(len(ports))]
	}
	out := "ingress: [{from: " + rule() + "}]"
	if rnd.IntN(3) == 0 {
		out = "policyTypes: [Ingress, Egress], " + out + ", egress: [{to: " + rule() + "}]"
	}
	return out
}

// slowUse counts node n's entries the way the plan does: its own walk of
// every service frontend (desiredServices), and its policies compiled with
// nothing shared with another node.
func slowUse(t *testing.T, r *spec.Resolved, n *spec.ResolvedNode) *MapUse {
	u, err := desiredServices(NewShared(r), &drivers.Node{Name: n.Name, Spec: n}, state.New())
	if err != nil {
		t.Fatal(err)
	}
	for i := range r.Pods {
		if r.Pods[i].Node == n.Name && hasEndpoint(&r.Pods[i]) {
			u.Endpoints++
		}
	}
	prog, err := compile.NewCluster(r).Shape(n.Name)
	if err != nil {
		t.Fatal(err)
	}
	u.policyUse(prog)
	return u
}

// median is the middle of the uses of each map over the nodes: sizes at
// which some nodes overflow and others fit.
func median(uses []*MapUse) spec.MapSizes {
	mid := func(f func(*MapUse) int) int {
		v := make([]int, len(uses))
		for i, u := range uses {
			v[i] = f(u)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return spec.MapSizes{
		Services:         mid(func(u *MapUse) int { return u.Services }),
		Backends:         mid(func(u *MapUse) int { return u.Backends }),
		Endpoints:        mid(func(u *MapUse) int { return u.Endpoints }),
		PolicyIdentities: mid(func(u *MapUse) int { return u.PolicyIdentities }),
		PolicyPods:       mid(func(u *MapUse) int { return u.PolicyPods }),
		PolicyRules:      mid(func(u *MapUse) int { return u.PolicyRules }),
	}
}

// TestCheckCapacityCountsAsThePlan: validate's counts, made once for the
// file with per-node adjustments (Local frontends, NodePort entries) and
// policy rules shared between nodes, equal each node's own count from
// its frontends and its own compilation, on random topologies; so the
// same nodes overflow, with the same messages.
func TestCheckCapacityCountsAsThePlan(t *testing.T) {
	overflowed := 0
	for seed := range uint64(40) {
		file := capacityTopology(seed)
		top, pos, err := spec.Parse("cap.yaml", []byte(file))
		if err != nil {
			t.Fatalf("seed %d: %v\n%s", seed, err, file)
		}
		r, err := spec.Resolve(top, pos)
		if err != nil {
			t.Fatalf("seed %d: %v\n%s", seed, err, file)
		}
		// A node without an underlay address (a model made by hand: a
		// file requires one) has no NodePort entries.
		r.Nodes[0].Address = netip.Prefix{}
		svcs := countServices(NewShared(r))
		var uses []*MapUse
		for i := range r.Nodes {
			n := &r.Nodes[i]
			u := slowUse(t, r, n)
			uses = append(uses, u)
			if s, b := svcs.of(n); s != u.Services || b != u.Backends {
				t.Errorf("seed %d node %s: counted %d services and %d backends, its frontends have %d and %d\n%s",
					seed, n.Name, s, b, u.Services, u.Backends, file)
			}
		}
		r.Maps = median(uses)
		var want []string
		for i := range r.Nodes {
			for _, msg := range uses[i].overflows(r.Nodes[i].Name, r.Maps) {
				want = append(want, fmt.Sprintf("cap.yaml:%d: nodes[%d]: %s", pos.Lookup(fmt.Sprintf("nodes[%d]", i)).Line, i, msg))
			}
		}
		var got []string
		var errs *spec.Errors
		if err := CheckCapacity(r, pos); errors.As(err, &errs) {
			for _, e := range errs.List {
				got = append(got, fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Path, e.Msg))
			}
		} else if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("seed %d: validate says\n%s\nthe nodes' own counts say\n%s\n%s", seed,
				strings.Join(got, "\n"), strings.Join(want, "\n"), file)
		}
		overflowed += len(want)
	}
	if overflowed == 0 {
		t.Fatal("no node overflowed: the comparison checked no message")
	}
}
