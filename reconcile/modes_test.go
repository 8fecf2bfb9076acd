package reconcile

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/drivers/bridge"
	"github.com/netreconcile/netreconcile/drivers/ipvlan"
	"github.com/netreconcile/netreconcile/drivers/macvlan"
	"github.com/netreconcile/netreconcile/drivers/veth"
	"github.com/netreconcile/netreconcile/routing"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// Plans of the macvlan and ipvlan modes and of node routing, without the
// kernel: desired state from the file, diffed against an observed state.

func allCfg() *Config {
	return &Config{Node: "n1", Uplink: "eth0",
		Drivers: drivers.NewRegistry(veth.Driver{}, bridge.Driver{}, macvlan.Driver{}, ipvlan.Driver{})}
}

func desiredAll(t *testing.T, r *spec.Resolved) *state.State {
	t.Helper()
	s, err := Desired(allCfg(), r, testUplink)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func changeKeys(p *Plan) map[string]Change {
	m := map[string]Change{}
	for _, c := range p.Changes {
		m[c.Kind+" "+c.Key] = c
	}
	return m
}

func TestIPvlanPlanFromScratch(t *testing.T) {
	r := testResolved(pod("d", "10.244.1.40", "ipvlan"), pod("e", "10.244.1.41", "ipvlan"), pod("a", "10.244.1.10", "veth"))
	p, err := Diff("n1", desiredAll(t, r), observedFrom(state.New()))
	if err != nil {
		t.Fatal(err)
	}
	got := changeKeys(p)
	for _, want := range []string{
		"link node/nrip0", "address node/nrip0/10.244.1.1/32", "neighbour node/nrip0/proxy/10.244.1.10",
		"netns x-d", "link x-d/eth0", "address x-d/eth0/10.244.1.40/24", "route x-d/0.0.0.0/0", "route node/10.244.1.40/32",
		"link x-e/eth0", "route node/10.244.1.41/32",
	} {
		c, ok := got[want]
		if !ok || c.Action != Create {
			t.Errorf("missing create of %s\n%s", want, text(p))
		}
	}
	if c := got["link x-d/eth0"]; !strings.Contains(attrText(c.Attrs), "type=ipvlan") || !strings.Contains(attrText(c.Attrs), "mode=l2") ||
		!strings.Contains(attrText(c.Attrs), "parent=eth0") {
		t.Errorf("pod link attributes: %s", attrText(c.Attrs))
	}
	// The shim (a node-wide link) is created before the pods' routes that
	// go through it; pod links come after node-wide links.
	at := map[string]int{}
	for i, c := range p.Steps() {
		at[c.Kind+" "+c.Key] = i
	}
	if at["link node/nrip0"] > at["link x-d/eth0"] || at["link node/nrip0"] > at["route node/10.244.1.40/32"] ||
		at["address x-d/eth0/10.244.1.40/24"] > at["route x-d/0.0.0.0/0"] {
		t.Errorf("order: %v", at)
	}
	// 3 netns, 4 links (shim, 2 ipvlan, 1 veth), 1 sysctl, 4 addresses,
	// 1 proxy + 1 veth neighbour, 2 pod default + 2 ipvlan /32 + veth's 2 routes.
	if p.Summary != (Summary{Add: 20}) {
		t.Errorf("summary %+v\n%s", p.Summary, text(p))
	}
}

func TestIPvlanConvergedAndIPChange(t *testing.T) {
	before := desiredAll(t, testResolved(pod("d", "10.244.1.40", "ipvlan"), pod("a", "10.244.1.10", "veth")))
	p, err := Diff("n1", before, observedFrom(before))
	if err != nil || !p.Empty() {
		t.Fatalf("converged: %v\n%s", err, text(p))
	}
	after := desiredAll(t, testResolved(pod("d", "10.244.1.42", "ipvlan"), pod("a", "10.244.1.10", "veth")))
	p, err = Diff("n1", after, observedFrom(before))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Changes {
		if c.Owner != "pod/x/d" || c.Kind == "link" || c.Kind == "netns" {
			t.Errorf("IP change of d: unexpected %s %s %s (owner %s)", c.Action, c.Kind, c.Key, c.Owner)
		}
	}
	// Address and node route, each replaced by key; the default route is
	// re-added since the kernel drops it with the address.
	if p.Summary != (Summary{Add: 2, Change: 1, Destroy: 2}) {
		t.Errorf("summary %+v\n%s", p.Summary, text(p))
	}
}

func TestIPvlanUnavailableBeforeAnyChange(t *testing.T) {
	r := testResolved(pod("a", "10.244.1.10", "veth"), pod("d", "10.244.1.40", "ipvlan"))
	k := &drivers.Kernel{LinkTypes: map[string]bool{"ipvlan": false}}
	err := Preflight(allCfg(), r, testUplink, k)
	if err == nil || err.Error() != "ipvlan is not available in this kernel: pod x/d" {
		t.Fatalf("preflight: %v", err)
	}
	if !errors.Is(err, ipvlan.ErrUnavailable) {
		t.Error("not ErrUnavailable")
	}
	// Not probed (plan --observed): the plan is still shown.
	if err := Preflight(allCfg(), r, testUplink, &drivers.Kernel{LinkTypes: map[string]bool{}}); err != nil {
		t.Errorf("unprobed kernel: %v", err)
	}
}

func TestIPvlanWithMacvlanRefused(t *testing.T) {
	r := testResolved(pod("d", "10.244.1.40", "ipvlan"), pod("m", "10.244.1.30", "macvlan"))
	if _, err := Desired(allCfg(), r, testUplink); !errors.Is(err, ipvlan.ErrMixed) {
		t.Fatalf("want ErrMixed, got %v", err)
	}
}

// A pod whose mode changes from bridge to macvlan keeps the same address
// key and default route, but its eth0 is deleted with the veth: the plan
// re-adds both after creating the macvlan.
func TestModeChangeReaddsWhatTheLinkTook(t *testing.T) {
	before := desiredAll(t, testResolved(pod("b", "10.244.1.20", "bridge")))
	after := desiredAll(t, testResolved(pod("b", "10.244.1.20", "macvlan")))
	p, err := Diff("n1", after, observedFrom(before))
	if err != nil {
		t.Fatal(err)
	}
	got := changeKeys(p)
	for _, key := range []string{"address x-b/eth0/10.244.1.20/24", "route x-b/0.0.0.0/0"} {
		c, ok := got[key]
		if !ok || c.Action != Update || !strings.Contains(c.Reason, "re-added") {
			t.Errorf("%s: %+v\n%s", key, c, text(p))
		}
	}
	if c := got["link x-b/eth0"]; c.Action != Create {
		t.Errorf("macvlan eth0: %+v", c)
	}
	if c := got["link node/"+drivers.HostIfName("n1", "x/b")]; c.Action != Delete {
		t.Errorf("old veth: %+v", c)
	}
	var delAt, readdAt int
	for i, c := range p.Steps() {
		if c.Kind == "link" && c.Action == Delete {
			delAt = i
		}
		if c.Key == "x-b/eth0/10.244.1.20/24" {
			readdAt = i
		}
	}
	if readdAt < delAt {
		t.Errorf("address re-added (step %d) before the veth is deleted (step %d)", readdAt, delAt)
	}
}

// threeNodes: n1 and n2 share 172.31.1.0/24, n3 is behind a router.
func threeNodes(pods ...spec.ResolvedPod) *spec.Resolved {
	r := testResolved(pods...)
	r.Routing, r.VNI, r.VXLANPort = spec.RoutingAuto, 1, 4789
	r.Nodes = append(r.Nodes,
		spec.ResolvedNode{Name: "n2", Address: netip.MustParsePrefix("172.31.1.3/24"), Uplink: "eth0",
			PodCIDR: netip.MustParsePrefix("10.244.2.0/24"), Gateway: netip.MustParseAddr("10.244.2.1")},
		spec.ResolvedNode{Name: "n3", Address: netip.MustParsePrefix("172.31.2.2/24"), Uplink: "eth0",
			PodCIDR: netip.MustParsePrefix("10.244.3.0/24"), Gateway: netip.MustParseAddr("10.244.3.1")})
	return r
}

func TestRoutingMoveChangesOnlyThatPeer(t *testing.T) {
	before := desiredAll(t, threeNodes(pod("a", "10.244.1.10", "veth"), pod("m", "10.244.1.30", "macvlan")))
	if l := before.Get(state.KindLink, "x-m/eth0").(*state.Link); l.MTU != 1450 {
		t.Errorf("pod MTU with a VXLAN peer: %d", l.MTU)
	}
	moved := threeNodes(pod("a", "10.244.1.10", "veth"), pod("m", "10.244.1.30", "macvlan"))
	moved.Nodes[1].Address = netip.MustParsePrefix("172.31.2.3/24")
	p, err := Diff("n1", desiredAll(t, moved), observedFrom(before))
	if err != nil {
		t.Fatal(err)
	}
	got := changeKeys(p)
	if c := got["route node/10.244.2.0/24"]; c.Action != Update {
		t.Errorf("route to n2 must switch in place: %+v\n%s", c, text(p))
	}
	for _, key := range []string{"neighbour node/nrvxlan0/10.244.2.0", "neighbour node/nrvxlan0/fdb/0e:58:0a:f4:02:00/172.31.2.3"} {
		if c := got[key]; c.Action != Create {
			t.Errorf("%s: %+v", key, c)
		}
	}
	if len(p.Changes) != 3 {
		t.Errorf("%d changes, want 3\n%s", len(p.Changes), text(p))
	}
	for _, c := range p.Changes {
		if c.Owner != routing.PeerOwner("n2") {
			t.Errorf("change outside peer n2: %s %s (%s)", c.Kind, c.Key, c.Owner)
		}
	}
}

// Changing the VXLAN port replaces the device; the kernel takes its
// address, neighbours, FDB entries and routes along, so the plan adds them
// back.
func TestVXLANReplaceReaddsPeers(t *testing.T) {
	r := threeNodes()
	before := desiredAll(t, r)
	r.VXLANPort = 8472
	p, err := Diff("n1", desiredAll(t, r), observedFrom(before))
	if err != nil {
		t.Fatal(err)
	}
	got := changeKeys(p)
	if got["link node/nrvxlan0"].Action != Replace {
		t.Fatalf("device: %+v\n%s", got["link node/nrvxlan0"], text(p))
	}
	for _, key := range []string{"address node/nrvxlan0/10.244.1.0/32", "neighbour node/nrvxlan0/10.244.3.0",
		"neighbour node/nrvxlan0/fdb/0e:58:0a:f4:03:00/172.31.2.2", "route node/10.244.3.0/24"} {
		if got[key].Action != Update {
			t.Errorf("%s not re-added\n%s", key, text(p))
		}
	}
	if _, ok := got["route node/10.244.2.0/24"]; ok {
		t.Error("the direct route to n2 does not depend on the device")
	}
}

func TestVXLANClashWithForeignDevice(t *testing.T) {
	d := desiredAll(t, threeNodes())
	obs := observedFrom(state.New())
	obs.Foreign.Links["node/flannel.1"] = "vxlan"
	obs.Foreign.VXLAN = map[string]string{"node/flannel.1": "1/4789", "node/other": "2/4789"}
	_, err := Diff("n1", d, obs)
	if !errors.Is(err, ErrClash) || !strings.Contains(err.Error(), "node/flannel.1 already uses VNI 1 and UDP port 4789") ||
		strings.Contains(err.Error(), "node/other") {
		t.Fatalf("clash: %v", err)
	}
}

func TestPreflightRouting(t *testing.T) {
	r := threeNodes()
	up := testUplink
	up.Unreachable = []netip.Addr{netip.MustParseAddr("172.31.2.2")}
	err := Preflight(allCfg(), r, up, &drivers.Kernel{LinkTypes: map[string]bool{}})
	if err == nil || !strings.Contains(err.Error(), `peer node "n3" (172.31.2.2) is unreachable`) {
		t.Errorf("unreachable peer: %v", err)
	}
	r.MTU = 1500
	err = Preflight(allCfg(), r, testUplink, &drivers.Kernel{LinkTypes: map[string]bool{}})
	if !errors.Is(err, routing.ErrMTU) {
		t.Errorf("mtu: %v", err)
	}
}

// attrText lists attributes as the plan text shows them.
func attrText(as []state.Attr) string {
	parts := make([]string, 0, len(as))
	for _, a := range as {
		parts = append(parts, a.Name+"="+a.Value)
	}
	return strings.Join(parts, " ")
}
