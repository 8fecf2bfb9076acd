package cli

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/state"
)

func showFixture(def *reconcile.Defences) *reconcile.Observed {
	owned := state.New()
	owned.Put(&state.Attach{Name: "node/nr0a/host-ingress", NS: state.NodeNS, IfName: "nr0a", Direction: "host-ingress",
		Live: true, Source: "10.244.1.10", OwnerK: "pod x/v"})
	return &reconcile.Observed{Node: "n1", Uplink: reconcile.Uplink{Name: "eth0", Found: true, MTU: 1500},
		Owned: owned, Defences: def}
}

const showHead = `node n1 (uplink eth0 found=true mtu=1500)
  program   node/nr0a/host-ingress live=true source=10.244.1.10  # pod x/v
`

// TestShowWithoutDatapath: a node without a datapath shows what it always
// showed, and no defences section.
func TestShowWithoutDatapath(t *testing.T) {
	var b bytes.Buffer
	writeShow(&b, showFixture(nil))
	if b.String() != showHead {
		t.Errorf("show:\n%s\nwant:\n%s", b.String(), showHead)
	}
}

// TestShowDefences: the defences section names pods, bound MACs, only the
// reasons that dropped something, conntrack shares, unbound drops and the
// collector.
func TestShowDefences(t *testing.T) {
	def := &reconcile.Defences{
		Pods: []reconcile.PodDefence{
			{Pod: "x/v", Address: "10.244.1.10", MAC: "02:00:00:00:00:0a",
				Drops:     map[string]uint64{"policy-ingress": 3, "arp": 1},
				Conntrack: reconcile.ConntrackShare{Policy: 2}},
			{Address: "10.244.1.12", MAC: "02:00:00:00:00:0c"},
			{Pod: "x/a2", Address: "10.244.2.11", Conntrack: reconcile.ConntrackShare{Service: 1, Policy: 4}},
		},
		Unbound:   map[string]uint64{"no-binding": 7},
		Collector: reconcile.Collector{Runs: 12, LastScanned: 40, LastDeleted: 5},
	}
	var b bytes.Buffer
	writeShow(&b, showFixture(def))
	want := showHead + `datapath defences
  pod x/v 10.244.1.10 mac=02:00:00:00:00:0a drops: arp=1 policy-ingress=3 conntrack: service=0 policy=2
  source 10.244.1.12 mac=02:00:00:00:00:0c conntrack: service=0 policy=0
  pod x/a2 10.244.2.11 conntrack: service=1 policy=4
  interfaces without a binding drops: no-binding=7
  conntrack collector: runs=12 last_scanned=40 last_deleted=5
`
	if b.String() != want {
		t.Errorf("show:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestShowFrontends: each service's frontends, clusterIP first, with
// backends, affinity timeout and SNAT; an entry the file does not name
// goes under its address; then the node's own programs.
func TestShowFrontends(t *testing.T) {
	obs := showFixture(nil)
	ip := netip.MustParseAddr
	for _, s := range []*state.Service{
		{IP: ip("198.51.100.50"), Port: 80, Proto: "TCP", Backends: []string{"10.244.1.10:8080"}, SNAT: true,
			Frontend: state.FrontendExternalIP, OwnerK: "service/x/web"},
		{IP: ip("172.31.1.2"), Port: 30080, Proto: "TCP", Backends: []string{"10.244.1.10:8080"}, SNAT: true,
			Frontend: state.FrontendNodePort, OwnerK: "service/x/web"},
		{IP: ip("10.96.0.10"), Port: 80, Proto: "TCP", Backends: []string{"10.244.1.10:8080"}, Affinity: true,
			AffinityTimeout: 2, Frontend: state.FrontendClusterIP, OwnerK: "service/x/web"},
		{IP: ip("10.96.0.99"), Port: 53, Proto: "UDP", Frontend: state.FrontendClusterIP},
	} {
		obs.Owned.Put(s)
	}
	obs.Owned.Put(&state.Attach{Name: "node/eth0/uplink-ingress", NS: state.NodeNS, IfName: "eth0", Direction: "uplink-ingress",
		Live: true, OwnerK: state.NodeOwner})
	var b bytes.Buffer
	writeFrontends(&b, obs)
	want := `service frontends
  service/10.96.0.99:53/UDP
    clusterIP 10.96.0.99:53/UDP -> no backend
  service/x/web
    clusterIP 10.96.0.10:80/TCP -> 10.244.1.10:8080 (affinity 2s)
    nodePort 172.31.1.2:30080/TCP -> 10.244.1.10:8080 (snat)
    externalIP 198.51.100.50:80/TCP -> 10.244.1.10:8080 (snat)
  node program uplink-ingress on eth0 live=true
`
	if b.String() != want {
		t.Errorf("show:\n%s\nwant:\n%s", b.String(), want)
	}
}
