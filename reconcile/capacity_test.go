package reconcile

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/internal/scaletopo"
	"github.com/netreconcile/netreconcile/spec"
)

// capacityFile has node a with pods a0..a{pods-1} (veth) and node b with
// one bridge pod; services s0..s{services-1} select every pod of
// namespace x (3 backends when pods is 2); policy "wide" isolates pod a0
// for ingress from blocks ipBlocks on ports 80 and 443 (2 rules each), and
// policy "narrow" isolates pod a1 for port 80 from anywhere (1 rule).
func capacityFile(pods, services, blocks int) string {
	var b strings.Builder
	b.WriteString(`apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/16}
nodes:
  - {name: b, address: 172.31.1.3/24, podCIDR: 10.244.2.0/24}
  - {name: a, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}
pods:
  - {name: bb, namespace: x, node: b, mode: bridge, labels: {app: web}}
`)
	for i := range pods {
		fmt.Fprintf(&b, "  - {name: a%d, namespace: x, node: a, labels: {app: web, pod: a%d}}\n", i, i)
	}
	b.WriteString("services:\n")
	for i := range services {
		fmt.Fprintf(&b, "  - {name: s%d, namespace: x, clusterIP: 10.96.0.%d, selector: {app: web}, ports: [{port: 80}]}\n", i, i+1)
	}
	b.WriteString(`policies:
  - name: narrow
    namespace: x
    spec: {podSelector: {matchLabels: {pod: a1}}, ingress: [{ports: [{port: 80}]}]}
  - name: wide
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a0}}
      ingress:
        - ports: [{port: 80}, {port: 443}]
          from:
`)
	for i := range blocks {
		fmt.Fprintf(&b, "            - ipBlock: {cidr: 192.168.%d.%d/32}\n", i/250, i%250)
	}
	return b.String()
}

func TestCapacity(t *testing.T) {
	tests := []struct {
		name                   string
		pods, services, blocks int
		sizes                  func(*spec.MapSizes)
		want                   string // "" means it fits
	}{
		{"defaults fit", 2, 3, 100, func(*spec.MapSizes) {}, ""},
		{"rules fit exactly", 2, 1, 10, func(m *spec.MapSizes) { m.PolicyRules = 21 }, ""},
		{"rules", 2, 1, 10, func(m *spec.MapSizes) { m.PolicyRules = 20 },
			`node "a" needs 21 entries in datapath map nr_pol_rules, over its size of 20 (pod x/a0 needs the most: 20)`},
		// 10 blocks, a's 2 pods and 2 host addresses: b's pod is named by
		// no rule of a, so a holds no entry for it.
		{"identities", 2, 1, 10, func(m *spec.MapSizes) { m.PolicyIdentities = 5 },
			`node "a" needs 14 entries in datapath map nr_pol_ids, over its size of 5`},
		{"isolated sides", 2, 1, 1, func(m *spec.MapSizes) { m.PolicyPods = 1 },
			`node "a" needs 2 entries in datapath map nr_pol_pods, over its size of 1`},
		{"services", 2, 3, 1, func(m *spec.MapSizes) { m.Services = 2 },
			`node "a" needs 3 entries in datapath map nr_services, over its size of 2`},
		{"backends", 2, 3, 1, func(m *spec.MapSizes) { m.Backends = 8 },
			`node "a" needs 9 entries in datapath map nr_backends, over its size of 8`},
		{"endpoints", 3, 1, 1, func(m *spec.MapSizes) { m.Endpoints = 2 },
			`node "a" needs 3 entries in datapath map nr_endpoints, over its size of 2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top, pos, err := spec.Parse("cap.yaml", []byte(capacityFile(tt.pods, tt.services, tt.blocks)))
			if err != nil {
				t.Fatal(err)
			}
			r, err := spec.Resolve(top, pos)
			if err != nil {
				t.Fatal(err)
			}
			tt.sizes(&r.Maps)
			err = CheckCapacity(r, pos)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
			} else {
				var errs *spec.Errors
				if !errors.As(err, &errs) {
					t.Fatalf("got %v, want: %s", err, tt.want)
				}
				// Placed at node a, the second of the file's nodes; node b
				// holds every service too.
				e := errs.List[len(errs.List)-1]
				if e.Path != "nodes[1]" || e.Line != 6 || e.Column != 5 || !strings.Contains(e.Msg, tt.want) {
					t.Fatalf("got %v (%s), want cap.yaml:6:5: nodes[1]: ...%s", e, e.Path, tt.want)
				}
				if b := strings.Replace(tt.want, `node "a"`, `node "b"`, 1); len(errs.List) != 1 &&
					(len(errs.List) != 2 || errs.List[0].Path != "nodes[0]" || !strings.Contains(errs.List[0].Msg, b)) {
					t.Fatalf("got %v", err)
				}
				if !errors.Is(err, ErrCapacity) || !errors.Is(err, spec.ErrInvalid) {
					t.Errorf("error matches neither ErrCapacity nor spec.ErrInvalid: %v", err)
				}
			}

			// The plan of node a counts the same, from what it writes.
			cfg := testCfg()
			cfg.Node = "a"
			_, derr := Desired(cfg, r, testUplink)
			switch {
			case tt.want == "" && derr != nil:
				t.Errorf("plan refused what validate accepts: %v", derr)
			case tt.want != "" && (!errors.Is(derr, ErrCapacity) || !strings.Contains(derr.Error(), tt.want)):
				t.Errorf("plan: %v, want ErrCapacity and %q", derr, tt.want)
			}
		})
	}
}

// TestCapacityEveryNode: validate checks the nodes the plan of one node
// would not see.
func TestCapacityEveryNode(t *testing.T) {
	r, err := spec.LoadBytes("cap.yaml", []byte(capacityFile(2, 1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	r.Maps.Endpoints = 0 // node b's bridge pod no longer fits either
	err = CheckCapacity(r, nil)
	if err == nil || !strings.Contains(err.Error(), `node "a" needs 2 entries in datapath map nr_endpoints`) ||
		!strings.Contains(err.Error(), `node "b" needs 1 entries in datapath map nr_endpoints`) {
		t.Fatalf("got %v", err)
	}
}

// BenchmarkCheckCapacityScale is what validate adds at the scale file
// (1000 pods, 5000 services, 500 policies on one node).
func BenchmarkCheckCapacityScale(b *testing.B) {
	r, err := spec.LoadBytes("scale.yaml", scaletopo.File())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckCapacity(r, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCapacityFrontends: every frontend is an entry, and a Local one
// holds the node's backends only: validate and the plan count alike, per
// node.
func TestCapacityFrontends(t *testing.T) {
	// Node a: clusterIP (3 backends), nodePort and external IP (Local:
	// a's 2 backends each) = 3 services, 7 backends; node b: 3 and 5.
	file := strings.Replace(capacityFile(2, 0, 1), "services:\n", "services:\n  - {name: np, namespace: x, type: NodePort, "+
		"externalTrafficPolicy: Local, clusterIP: 10.96.0.1, externalIPs: [198.51.100.50], selector: {app: web}, "+
		"ports: [{port: 80, nodePort: 30080}]}\n", 1)
	r, err := spec.LoadBytes("cap.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	r.Maps.Services, r.Maps.Backends = 2, 6
	err = CheckCapacity(r, nil)
	for _, want := range []string{`node "a" needs 3 entries in datapath map nr_services, over its size of 2`,
		`node "a" needs 7 entries in datapath map nr_backends, over its size of 6`,
		`node "b" needs 3 entries in datapath map nr_services, over its size of 2`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate: %v, want %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), `node "b" needs 5 entries in datapath map nr_backends`) {
		t.Errorf("validate: node b's 5 backends fit 6: %v", err)
	}
	cfg := testCfg()
	cfg.Node = "a"
	if _, derr := Desired(cfg, r, testUplink); derr == nil || !strings.Contains(derr.Error(), "needs 7 entries in datapath map nr_backends") {
		t.Errorf("plan of node a: %v, want 7 backend entries counted", derr)
	}
}

// BenchmarkCheckCapacityNodes is what validate adds at issue 18's
// 1000-node cluster (50 pods a node, 10,000 services, 2000 policies).
func BenchmarkCheckCapacityNodes(b *testing.B) {
	r, err := spec.LoadBytes("nodes.yaml", scaletopo.Nodes(1000))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckCapacity(r, nil); err != nil {
			b.Fatal(err)
		}
	}
}
