package masq

import (
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"

	"github.com/netreconcile/netreconcile/internal/nstest"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

func resolved(t *testing.T, extra string) *spec.Resolved {
	t.Helper()
	r, err := spec.LoadBytes("m.yaml", []byte(`apiVersion: netreconcile/v1
kind: Topology
cluster:
  podCIDR: 10.244.0.0/16
  serviceCIDR: 10.96.0.0/16
`+extra+`
nodes:
  - {name: a, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24, uplink: up0}
  - {name: b, address: 172.31.1.3/24, podCIDR: 10.244.2.0/24}
pods: [{name: p, node: a}]
`))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func desiredOf(t *testing.T, r *spec.Resolved, node string) *state.Masquerade {
	t.Helper()
	s := state.New()
	if err := Desired(r, node, s); err != nil {
		t.Fatal(err)
	}
	o := s.Get(state.KindMasquerade, "node/"+state.MasqueradeTable)
	if o == nil {
		return nil
	}
	return o.(*state.Masquerade)
}

func TestDesired(t *testing.T) {
	m := desiredOf(t, resolved(t, "  egress: {nonMasqueradeCIDRs: [10.0.0.0/8, 192.168.0.0/16, 172.31.1.3/32]}"), "a")
	// The nodes' 172.31.1.2 and .3 are one /31.
	want := "pod_cidr=10.244.1.0/24 uplink=up0 except=10.0.0.0/8,172.31.1.2/31,192.168.0.0/16 ports=32768-60999 rules=4"
	var got []string
	for _, a := range m.Attrs() {
		got = append(got, a.Name+"="+a.Value)
	}
	if strings.Join(got, " ") != want {
		t.Errorf("attrs %s\nwant  %s", strings.Join(got, " "), want)
	}
	if m := desiredOf(t, resolved(t, ""), "b"); m != nil {
		t.Errorf("node without pods wants %v", m)
	}
	if m := desiredOf(t, resolved(t, "  egress: {masquerade: false}"), "a"); m != nil {
		t.Errorf("masquerade false wants %v", m)
	}
}

// TestRoundTrip writes the table in a namespace, reads it back equal,
// sees a hand-made change, and deletes it, touching no other table.
func TestRoundTrip(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.TempNetns(t, "nrmasq")
	want := desiredOf(t, resolved(t, "  egress: {nonMasqueradeCIDRs: [0.0.0.0/0, 198.51.100.0/24]}"), "a")
	want.Except = append(want.Except, netip.MustParsePrefix("203.0.113.7/32"))
	want.NodePorts = []string{"TCP/172.31.1.2:30080>10.96.0.10:80", "UDP/172.31.1.2:30053>10.96.0.10:53"}
	want.Rules += 1 + len(want.NodePorts)
	foreign := &nftables.Table{Name: "someone-else", Family: nftables.TableFamilyIPv4}
	c, done, err := conn(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	c.AddTable(foreign)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, err := Observe(ns); err != nil || got != nil {
		t.Fatalf("before apply: %v, %v", got, err)
	}
	for range 2 { // a second apply replaces the table
		if err := Apply(ns, want); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Observe(ns)
	if err != nil || got == nil {
		t.Fatalf("observe: %v, %v", got, err)
	}
	if d := state.Diff(got, want); len(d) != 0 {
		t.Errorf("observed differs from applied: %v", d)
	}
	nft := func(args ...string) string {
		out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "nft"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("nft %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if _, err := exec.LookPath("nft"); err == nil {
		listing := nft("list", "table", "ip", state.MasqueradeTable)
		if !strings.Contains(listing, `oifname "up0" masquerade to :32768-60999`) || !strings.Contains(listing, "ip daddr 203.0.113.7 return") ||
			!strings.Contains(listing, "dnat to 10.96.0.10:80") {
			t.Errorf("nft shows:\n%s", listing)
		}
		nft("add", "rule", "ip", state.MasqueradeTable, chainName, "counter")
		got, _ = Observe(ns)
		if d := state.Diff(got, want); len(d) != 1 || d[0].Name != "rules" {
			t.Errorf("an added rule: diff %v", d)
		}
		nft("flush", "chain", "ip", state.MasqueradeTable, chainName)
		got, _ = Observe(ns)
		if d := state.Diff(got, want); len(d) != 5 {
			t.Errorf("a flushed chain: diff %v", d)
		}
		nft("flush", "chain", "ip", state.MasqueradeTable, outputChain)
		got, _ = Observe(ns)
		if d := state.Diff(got, want); !slices.ContainsFunc(d, func(c state.Change) bool { return c.Name == "node_ports" }) {
			t.Errorf("a flushed output chain: diff %v", d)
		}
	}
	for range 2 { // deleting what is gone is done
		if err := Remove(ns); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := Observe(ns); err != nil || got != nil {
		t.Fatalf("after remove: %v, %v", got, err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil || !slices.ContainsFunc(tables, func(x *nftables.Table) bool { return x.Name == foreign.Name }) {
		t.Errorf("the foreign table is gone: %v %v", tables, err)
	}
}

// TestRoundTripCluster: a cluster's table (one exception rule per node
// address, thousands) fits one batch and reads back equal; with the
// socket's default buffers the kernel refused it (message too long).
func TestRoundTripCluster(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.TempNetns(t, "nrmasq")
	want := desiredOf(t, resolved(t, ""), "a")
	var except []netip.Prefix
	for i := range 3000 {
		except = append(except, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i / 250), byte(1 + i%250)}), 32))
	}
	want.Except = state.CanonicalPrefixes(append(want.Except, except...))
	want.Rules = len(want.Except) + 1
	if err := Apply(ns, want); err != nil {
		t.Fatal(err)
	}
	got, err := Observe(ns)
	if err != nil || got == nil {
		t.Fatalf("observe: %v, %v", got, err)
	}
	if d := state.Diff(got, want); len(d) != 0 {
		t.Errorf("observed differs from applied: %v", d)
	}
}
