package reconcile

import (
	"testing"

	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// TestSelectedBy: a pod's side names the policies of its own namespace
// that select it for that direction, and none of a namespace whose name
// begins with (or sorts next to) its own.
func TestSelectedBy(t *testing.T) {
	r, err := spec.LoadBytes("sel.yaml", []byte(`apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16}
nodes:
  - {name: n1, address: 192.168.1.1/24, podCIDR: 10.244.1.0/24}
pods:
  - {name: web, namespace: a, node: n1, labels: {app: web}}
policies:
  - {name: all, namespace: a-b, spec: {podSelector: {}}}
  - {name: web-in, namespace: a, spec: {podSelector: {matchLabels: {app: web}}}}
  - {name: db-in, namespace: a, spec: {podSelector: {matchLabels: {app: db}}}}
  - {name: out, namespace: a, spec: {podSelector: {}, policyTypes: [Egress]}}
  - {name: all, namespace: ab, spec: {podSelector: {}}}
  - {name: all, namespace: a0, spec: {podSelector: {}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	side := func(dir string) *Change {
		return &Change{Kind: state.KindPodPolicy.String(), Key: "10.244.1.2/" + dir, Owner: "pod/a/web"}
	}
	if got, want := selectedBy(r, side("ingress")), "pod a/web: ingress selected by a/web-in (app=web)"; got != want {
		t.Errorf("ingress: %q, want %q", got, want)
	}
	if got, want := selectedBy(r, side("egress")), "pod a/web: egress selected by a/out ({})"; got != want {
		t.Errorf("egress: %q, want %q", got, want)
	}
}
