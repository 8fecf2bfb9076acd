package reconcile_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/drivers/veth"
	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// frontendsTopo has two nodes, a web pod on each and a lone pod on b, and
// services of every kind of frontend.
const frontendsTopo = `apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/16}
nodes:
  - {name: a, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}
  - {name: b, address: 172.31.1.3/24, podCIDR: 10.244.2.0/24}
pods:
  - {name: wa, node: a, ip: 10.244.1.10, labels: {app: web}}
  - {name: wb, node: b, ip: 10.244.2.10, labels: {app: web}}
  - {name: lone, node: b, ip: 10.244.2.20, labels: {app: lone}}
services:
  - name: np-cluster
    type: NodePort
    clusterIP: 10.96.0.10
    selector: {app: web}
    ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
    externalIPs: [198.51.100.50]
  - name: np-local
    type: NodePort
    externalTrafficPolicy: Local
    clusterIP: 10.96.0.11
    selector: {app: web}
    ports: [{port: 80, targetPort: 8080, nodePort: 30081, protocol: UDP}]
    externalIPs: [198.51.100.51]
  - name: itp-local
    internalTrafficPolicy: Local
    clusterIP: 10.96.0.12
    selector: {app: lone}
    ports: [{port: 80}]
  - name: sticky
    clusterIP: 10.96.0.13
    selector: {app: web}
    sessionAffinity: ClientIP
    sessionAffinityConfig: {clientIP: {timeoutSeconds: 2}}
    ports: [{port: 80}]
`

func desiredOf(t *testing.T, r *spec.Resolved, node string) *state.State {
	t.Helper()
	n := r.Node(node)
	cfg := &reconcile.Config{Node: node, NodeNetns: "/nonexistent", BPFFS: "/sys/fs/bpf/x/" + node,
		Drivers: drivers.NewRegistry(veth.Driver{})}
	s, err := reconcile.Desired(cfg, r, reconcile.Uplink{Name: n.Uplink, Found: true, Index: 2, MTU: 1500,
		Addrs: []netip.Prefix{n.Address}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFrontends: each node programs its own address for a nodePort, an
// entry per external IP, and chooses backends and SNAT by the traffic
// policies; the affinity timeout is the file's.
func TestFrontends(t *testing.T) {
	r, err := spec.LoadBytes("f.yaml", []byte(frontendsTopo))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{ // node -> key -> attributes
		"a": {
			"10.96.0.10:80/TCP":    "backends=10.244.1.10:8080,10.244.2.10:8080 affinity=false",
			"172.31.1.2:30080/TCP": "backends=10.244.1.10:8080,10.244.2.10:8080 affinity=false snat=true",
			"198.51.100.50:80/TCP": "backends=10.244.1.10:8080,10.244.2.10:8080 affinity=false snat=true",
			"10.96.0.11:80/UDP":    "backends=10.244.1.10:8080,10.244.2.10:8080 affinity=false",
			"172.31.1.2:30081/UDP": "backends=10.244.1.10:8080 affinity=false",
			"198.51.100.51:80/UDP": "backends=10.244.1.10:8080 affinity=false",
			"10.96.0.12:80/TCP":    "backends= affinity=false",
			"10.96.0.13:80/TCP":    "backends=10.244.1.10:80,10.244.2.10:80 affinity=true affinity_timeout=2",
			"172.31.1.3:30080/TCP": "",
			"172.31.1.3:30081/UDP": "",
		},
		"b": {
			"172.31.1.3:30080/TCP": "backends=10.244.1.10:8080,10.244.2.10:8080 affinity=false snat=true",
			"172.31.1.3:30081/UDP": "backends=10.244.2.10:8080 affinity=false",
			"10.96.0.12:80/TCP":    "backends=10.244.2.20:80 affinity=false",
			"172.31.1.2:30080/TCP": "",
		},
	}
	for node, keys := range want {
		s := desiredOf(t, r, node)
		for key, attrs := range keys {
			o := s.Get(state.KindService, key)
			switch {
			case attrs == "" && o != nil:
				t.Errorf("node %s: unexpected entry %s", node, key)
			case attrs != "" && o == nil:
				t.Errorf("node %s: no entry %s", node, key)
			case attrs != "" && attrText(o) != attrs:
				t.Errorf("node %s: %s: %s, want %s", node, key, attrText(o), attrs)
			}
		}
	}
	if n := desiredOf(t, r, "a").Count(state.KindService); n != 8 {
		t.Errorf("node a: %d service entries, want 8", n)
	}
}

// TestServiceDevice: a file with services gives the node its service
// device, a route for the service CIDR and one per external IP, with the
// node's address as source; without services, none.
func TestServiceDevice(t *testing.T) {
	r, err := spec.LoadBytes("f.yaml", []byte(frontendsTopo))
	if err != nil {
		t.Fatal(err)
	}
	s := desiredOf(t, r, "b")
	l, ok := s.Get(state.KindLink, "node/nrsvc0").(*state.Link)
	if !ok {
		t.Fatal("no service device nrsvc0")
	}
	if got := attrText(l); got != "type=veth alias=netreconcile/b/node mtu=1500 up=true master= peer=node/nrsvc1 proxy_arp=false noarp=true" {
		t.Errorf("nrsvc0: %s", got)
	}
	for _, dst := range []string{"10.96.0.0/16", "198.51.100.50/32", "198.51.100.51/32"} {
		rt, ok := s.Get(state.KindRoute, "node/"+dst).(*state.Route)
		if !ok {
			t.Errorf("no route %s", dst)
			continue
		}
		if got := attrText(rt); got != "dev=nrsvc0 src=172.31.1.3 scope=link" {
			t.Errorf("route %s: %s", dst, got)
		}
	}
	noSvc := strings.Split(frontendsTopo, "services:")[0]
	r, err = spec.LoadBytes("f.yaml", []byte(noSvc))
	if err != nil {
		t.Fatal(err)
	}
	if l := desiredOf(t, r, "b").Get(state.KindLink, "node/nrsvc0"); l != nil {
		t.Errorf("a file without services has a service device: %v", l)
	}
}

func attrText(o state.Object) string {
	var parts []string
	for _, a := range o.Attrs() {
		parts = append(parts, a.Name+"="+a.Value)
	}
	return strings.Join(parts, " ")
}
