package kinds

import (
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/state"
)

// TestKindsReadBackWhatTheyAsk: what a kind puts in its create request is
// what it reads back from the link, through the one mode table of each
// driver; an unknown mode is refused before any request.
func TestKindsReadBackWhatTheyAsk(t *testing.T) {
	byIndex := map[int]string{2: "eth0"}
	for _, want := range []*state.Link{
		{Type: state.LinkMacvlan, Mode: "bridge"}, {Type: state.LinkMacvlan, Mode: "private"},
		{Type: state.LinkMacvlan, Mode: "vepa"}, {Type: state.LinkMacvlan, Mode: "passthru"},
		{Type: state.LinkIPvlan, Mode: "l2"}, {Type: state.LinkIPvlan, Mode: "l3"}, {Type: state.LinkIPvlan, Mode: "l3s"},
		{Type: state.LinkVXLAN, VNI: 7, Port: 4789, Local: netip.MustParseAddr("172.31.1.2"), Parent: "eth0"},
	} {
		k := Of(want.Type)
		if k == nil {
			t.Fatalf("no kind for %s", want.Type)
		}
		req, err := k.New(want, netlink.LinkAttrs{Name: "x"}, drivers.LinkRefs{Parent: 2})
		if err != nil {
			t.Fatalf("%s %s: %v", want.Type, want.Mode, err)
		}
		if req.Type() != want.Type {
			t.Errorf("%s: request of type %s", want.Type, req.Type())
		}
		got := &state.Link{Type: want.Type}
		k.Parse(req, got, byIndex)
		if got.Mode != want.Mode || got.VNI != want.VNI || got.Port != want.Port || got.Local != want.Local {
			t.Errorf("%s: read back %+v, want %+v", want.Type, got, want)
		}
		if want.Type == state.LinkVXLAN && got.Parent != "eth0" {
			t.Errorf("vxlan parent %q", got.Parent)
		}
	}
	for _, typ := range []string{state.LinkMacvlan, state.LinkIPvlan} {
		if _, err := Of(typ).New(&state.Link{Type: typ, Mode: "nosuch"}, netlink.LinkAttrs{}, drivers.LinkRefs{}); err == nil {
			t.Errorf("%s mode nosuch accepted", typ)
		}
	}
	if Of("dummy") != nil {
		t.Error("a kind for dummy, which netreconcile never makes")
	}
}
