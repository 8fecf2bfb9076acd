package reconcile

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/drivers/bridge"
	"github.com/netreconcile/netreconcile/drivers/veth"
	"github.com/netreconcile/netreconcile/reconcile/plan"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

func testResolved(pods ...spec.ResolvedPod) *spec.Resolved {
	return &spec.Resolved{
		PodCIDR: netip.MustParsePrefix("10.244.0.0/16"),
		Mode:    spec.ModeVeth,
		Nodes: []spec.ResolvedNode{{Name: "n1", Address: netip.MustParsePrefix("172.31.1.2/24"), Uplink: "eth0",
			PodCIDR: netip.MustParsePrefix("10.244.1.0/24"), Gateway: netip.MustParseAddr("10.244.1.1")}},
		Pods: pods,
	}
}

func pod(name, ip, mode string) spec.ResolvedPod {
	return spec.ResolvedPod{Key: "x/" + name, Name: name, Namespace: "x", Node: "n1", IP: netip.MustParseAddr(ip),
		Mode: mode, Netns: "x-" + name}
}

var testUplink = Uplink{Name: "eth0", Found: true, Index: 2, MTU: 1500,
	Addrs: []netip.Prefix{netip.MustParsePrefix("172.31.1.2/24")}}

func testCfg() *Config {
	return &Config{Node: "n1", Uplink: "eth0", Drivers: drivers.NewRegistry(veth.Driver{}, bridge.Driver{})}
}

// observedFrom pretends the kernel holds exactly s (a converged node).
func observedFrom(s *state.State) *Observed {
	o := state.NewObserved("n1")
	o.Uplink = testUplink
	b, _ := json.Marshal(s) // a deep copy through the JSON form
	if err := json.Unmarshal(b, o.Owned); err != nil {
		panic(err)
	}
	return o
}

func mustDesired(t *testing.T, r *spec.Resolved) *state.State {
	t.Helper()
	s, err := Desired(testCfg(), r, testUplink)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPlanFromScratchIsOrdered(t *testing.T) {
	r := testResolved(pod("a", "10.244.1.10", "veth"), pod("b", "10.244.1.20", "bridge"))
	p, err := Diff("n1", mustDesired(t, r), observedFrom(state.New()))
	if err != nil {
		t.Fatal(err)
	}
	// netns x2, links: bridge + 2 veth, sysctl, addrs: bridge gw + 2 pods,
	// neigh for the veth pod, routes: veth pod x2 + bridge pod default.
	if got, want := p.Summary, (Summary{Add: 13}); got != want {
		t.Fatalf("summary %+v, want %+v\n%s", got, want, text(p))
	}
	last := state.KindNetns
	bridgeAt, vethAt := -1, -1
	for i, c := range p.Steps() {
		k := plan.KindOf(c)
		if k < last {
			t.Fatalf("change %d (%s %s) out of kind order", i, c.Kind, c.Key)
		}
		last = k
		if l, ok := c.Desired.(*state.Link); ok {
			if l.Type == "bridge" {
				bridgeAt = i
			} else if vethAt < 0 {
				vethAt = i
			}
		}
	}
	if bridgeAt < 0 || vethAt < bridgeAt {
		t.Fatalf("bridge (at %d) must be created before veths (at %d)", bridgeAt, vethAt)
	}
	if !strings.Contains(text(p), "Plan: 13 to add, 0 to change, 0 to destroy.") {
		t.Fatalf("summary line missing:\n%s", text(p))
	}
}

func TestPlanConvergedIsEmpty(t *testing.T) {
	r := testResolved(pod("a", "10.244.1.10", "veth"), pod("b", "10.244.1.20", "bridge"))
	d := mustDesired(t, r)
	p, err := Diff("n1", d, observedFrom(d))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Empty() {
		t.Fatalf("plan not empty:\n%s", text(p))
	}
	if got := text(p); !strings.HasPrefix(got, "No changes.") {
		t.Fatalf("empty plan text: %q", got)
	}
}

func TestPlanIPChangeTouchesOnlyThatPod(t *testing.T) {
	before := mustDesired(t, testResolved(pod("a", "10.244.1.10", "veth"), pod("b", "10.244.1.11", "veth")))
	after := mustDesired(t, testResolved(pod("a", "10.244.1.12", "veth"), pod("b", "10.244.1.11", "veth")))
	p, err := Diff("n1", after, observedFrom(before))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Changes {
		if c.Owner != "pod/x/a" {
			t.Errorf("change to %s %s (owner %q): only pod x/a should change", c.Kind, c.Key, c.Owner)
		}
		if c.Kind == "netns" || (c.Kind == "link" && (c.Action != Update || len(c.Changes) != 1 || c.Changes[0].Name != "peer_mac")) {
			t.Errorf("%s %s %s %v: the pod's link and netns must be kept (only its MAC follows the IP)", c.Action, c.Kind, c.Key, c.Changes)
		}
	}
	// old and new address, old and new /32 route; the pod routes and
	// neighbour re-added because the kernel drops them with the address;
	// the pod MAC, derived from the IP, set in place
	if got, want := p.Summary, (Summary{Add: 2, Change: 3, Destroy: 2}); got != want {
		t.Fatalf("summary %+v, want %+v\n%s", got, want, text(p))
	}
}

func TestPlanModeChangeUpdatesLinkInPlace(t *testing.T) {
	before := mustDesired(t, testResolved(pod("a", "10.244.1.10", "veth"), pod("b", "10.244.1.20", "bridge")))
	after := mustDesired(t, testResolved(pod("a", "10.244.1.10", "bridge"), pod("b", "10.244.1.20", "bridge")))
	p, err := Diff("n1", after, observedFrom(before))
	if err != nil {
		t.Fatal(err)
	}
	var link *Change
	for i, c := range p.Changes {
		if c.Owner != "pod/x/a" {
			t.Errorf("change to %s %s (owner %q): only pod x/a should change", c.Kind, c.Key, c.Owner)
		}
		if c.Kind == "link" {
			link = &p.Changes[i]
		}
	}
	if link == nil || link.Action != Update {
		t.Fatalf("want the pod's link updated in place (same ifindex):\n%s", text(p))
	}
	names := map[string]bool{}
	for _, ch := range link.Changes {
		names[ch.Name] = true
	}
	if !names["master"] || !names["proxy_arp"] {
		t.Fatalf("link changes %v: want master and proxy_arp", link.Changes)
	}
}

func TestPlanNetnsChangeReplacesLink(t *testing.T) {
	a := pod("a", "10.244.1.10", "veth")
	before := mustDesired(t, testResolved(a))
	a.Netns = "x-a2"
	after := mustDesired(t, testResolved(a))
	p, err := Diff("n1", after, observedFrom(before))
	if err != nil {
		t.Fatal(err)
	}
	out := text(p)
	for _, want := range []string{"-/+ link node/nr", "forces replacement", "+   netns x-a2", "-   netns x-a"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	// apply must delete the old link explicitly before creating the new
	// one (same name), not leave it to the namespace teardown
	var delAt, createAt = -1, -1
	for i, c := range p.Steps() {
		if c.Kind == "link" && c.Action == Delete {
			delAt = i
			if c.ImpliedBy != "" {
				t.Errorf("replaced link marked implied by %s", c.ImpliedBy)
			}
		}
		if c.Kind == "link" && c.Action == Replace {
			createAt = i
		}
	}
	if delAt < 0 || createAt < delAt {
		t.Fatalf("steps: delete at %d, create at %d", delAt, createAt)
	}
}

func TestPlanDestroyUsesNamespaceTeardown(t *testing.T) {
	d := mustDesired(t, testResolved(pod("a", "10.244.1.10", "veth")))
	obs := observedFrom(d)
	for _, o := range obs.Owned.Of(state.KindNetns) {
		o.(*state.Netns).Owned = true
	}
	p, err := Diff("n1", state.New(), obs)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Changes {
		switch c.Kind {
		case "netns", "sysctl":
			if c.ImpliedBy != "" {
				t.Errorf("%s %s must be deleted explicitly", c.Kind, c.Key)
			}
		default:
			if c.NS() == state.NodeNS && c.Kind != "link" {
				if c.ImpliedBy != "" {
					t.Errorf("%s %s in the node must be deleted explicitly", c.Kind, c.Key)
				}
			} else if c.ImpliedBy != "x-a" {
				t.Errorf("%s %s: want implied by netns x-a, got %q", c.Kind, c.Key, c.ImpliedBy)
			}
		}
	}
}

func TestClashWithForeignObjects(t *testing.T) {
	d := mustDesired(t, testResolved(pod("a", "10.244.1.10", "veth"), pod("b", "10.244.1.20", "bridge")))
	obs := observedFrom(state.New())
	obs.Foreign.Links[state.LinkKey("", "nrbr0")] = "bridge"
	obs.Foreign.Routes["node/10.244.1.10/32"] = 4
	_, err := Diff("n1", d, obs)
	if err == nil {
		t.Fatal("want a clash error")
	}
	for _, want := range []string{"link nrbr0 in node (bridge) exists", "route 10.244.1.10/32 in node exists with protocol 4"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestPlanJSONShape(t *testing.T) {
	r := testResolved(pod("a", "10.244.1.10", "veth"))
	p, err := Diff("n1", mustDesired(t, r), observedFrom(state.New()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		FormatVersion string `json:"format_version"`
		Node          string
		Changes       []struct {
			Action, Kind, Key, Owner string
		}
		Summary Summary
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.FormatVersion != PlanFormatVersion || back.Node != "n1" || len(back.Changes) != len(p.Changes) ||
		back.Summary != p.Summary || back.Changes[0].Action != "create" {
		t.Fatalf("json round trip: %s", b)
	}
}

func text(p *Plan) string {
	var b bytes.Buffer
	p.WriteText(&b)
	return b.String()
}

// TestForeignNetnsNeedsAdoption: a pod's namespace that exists and that
// netreconcile did not create is refused, naming the pod, the namespace
// and the fix, unless the pod opts in; then the plan shows the adoption
// (text and JSON) while it puts objects into it, and creates no netns.
func TestForeignNetnsNeedsAdoption(t *testing.T) {
	a, b := pod("a", "10.244.1.10", "veth"), pod("b", "10.244.1.11", "veth")
	b.Netns = "/var/run/docker/netns/b"
	obs := observedFrom(state.New())
	obs.Foreign.Netns["x-a"] = true
	obs.Foreign.Netns["/var/run/docker/netns/b"] = true

	_, err := Diff("n1", mustDesired(t, testResolved(a, b)), obs)
	for _, want := range []string{
		`pod/x/a: netns "x-a" exists and netreconcile did not create it; set adoptNetns: true on the pod to use it`,
		`pod/x/b: netns "/var/run/docker/netns/b" exists and netreconcile did not create it`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to contain %q", err, want)
		}
	}
	if !errors.Is(err, ErrForeignNetns) {
		t.Errorf("error does not wrap ErrForeignNetns: %v", err)
	}

	a.AdoptNetns, b.AdoptNetns = true, true
	desired := mustDesired(t, testResolved(a, b))
	p, err := Diff("n1", desired, obs)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Changes {
		if c.Kind == state.KindNetns.String() {
			t.Errorf("an adopted namespace is planned: %+v", c)
		}
	}
	want := []Adoption{{Pod: "x/a", Netns: "x-a"}, {Pod: "x/b", Netns: "/var/run/docker/netns/b"}}
	if !slices.Equal(p.Adopted, want) {
		t.Errorf("adopted %+v, want %+v", p.Adopted, want)
	}
	out := text(p)
	if !strings.Contains(out, `  # pod x/a adopts existing netns "x-a" (not created by netreconcile: used as it is, never deleted)`) {
		t.Errorf("text plan does not show the adoption:\n%s", out)
	}
	js, _ := json.Marshal(p)
	if !strings.Contains(string(js), `"adopted_netns":[{"pod":"x/a","netns":"x-a"},`) {
		t.Errorf("JSON plan: %s", js)
	}

	// Converged: nothing to do, nothing to show.
	conv := observedFrom(desired)
	conv.Owned.Remove(state.KindNetns, "x-a")
	conv.Owned.Remove(state.KindNetns, "/var/run/docker/netns/b")
	conv.Foreign.Netns = obs.Foreign.Netns
	p, err = Diff("n1", desired, conv)
	if err != nil || !p.Empty() || p.Adopted != nil {
		t.Fatalf("converged adopted pods: %v, %+v", err, p)
	}
	if js, _ := json.Marshal(p); strings.Contains(string(js), "adopted") {
		t.Errorf("an empty plan's JSON mentions adoptions: %s", js)
	}
}
