package observe

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/reconcile/plan"
	"github.com/netreconcile/netreconcile/state"
)

// TestWriteThrough: applied changes to datapath entries replace, add and
// remove exactly those entries, in any mix, and endpoints written are
// looked up by name (-1) on the next pass.
func TestWriteThrough(t *testing.T) {
	svc := func(ip string, backends ...string) *state.Service {
		return &state.Service{IP: netip.MustParseAddr(ip), Port: 80, Proto: "TCP", Backends: backends}
	}
	ep := func(ip, dev string) *state.Endpoint { return &state.Endpoint{IP: netip.MustParseAddr(ip), Dev: dev} }
	change := func(a plan.Action, have, want state.Object) plan.Change {
		o := want
		if o == nil {
			o = have
		}
		return plan.Change{Action: a, Kind: o.Kind().String(), Key: o.Key(), Observed: have, Desired: want}
	}
	a, b, c := svc("10.96.0.1", "10.0.0.1:80"), svc("10.96.0.2"), svc("10.96.0.3")
	e1, e2 := ep("10.0.0.1", "nra"), ep("10.0.0.2", "nrb")
	objs := []state.Object{a, b, e1, c, e2}
	index := map[string]int{e1.Key(): 7, e2.Key(): 8}

	a2 := svc("10.96.0.1", "10.0.0.2:80")
	d := svc("10.96.0.4")
	e3 := ep("10.0.0.3", "nrc")
	got, gotIndex := writeThrough(objs, index, []plan.Change{
		change(plan.Delete, b, nil), change(plan.Update, a, a2), change(plan.Delete, e2, nil),
		change(plan.Create, nil, d), change(plan.Delete, c, nil), change(plan.Create, nil, e3),
	})
	var keys []string
	for _, o := range got {
		keys = append(keys, o.Kind().String()+" "+o.Key())
	}
	want := []string{"service 10.96.0.1:80/TCP", "endpoint 10.0.0.1", "service 10.96.0.4:80/TCP", "endpoint 10.0.0.3"}
	if !slices.Equal(keys, want) {
		t.Fatalf("entries %s, want %s", strings.Join(keys, ", "), strings.Join(want, ", "))
	}
	if got[0] != a2 {
		t.Errorf("updated service is %v, want the desired one", got[0])
	}
	if gotIndex[e1.Key()] != 7 || gotIndex[e3.Key()] != -1 || len(gotIndex) != 2 {
		t.Errorf("endpoint indexes %v, want 10.0.0.1 kept at 7, 10.0.0.3 at -1, 10.0.0.2 gone", gotIndex)
	}
	if len(objs) != 5 || index[e2.Key()] != 8 {
		t.Error("writeThrough changed the cached slices it was given")
	}
}

// TestCacheUplink: the uplink facts are kept for the peers they were read
// for, until anything changes in the node namespace; a read that an
// invalidation overtook is not kept.
func TestCacheUplink(t *testing.T) {
	c := NewCache()
	peers := []netip.Addr{netip.MustParseAddr("192.168.0.2"), netip.MustParseAddr("192.168.0.3")}
	up := state.Uplink{Name: "eth0", Found: true, Index: 2, MTU: 1500, Unreachable: peers[1:]}
	c.putUplink("eth0", peers, up, c.nodeStamp())
	if got, ok := c.uplink("eth0", peers); !ok || got.MTU != 1500 || len(got.Unreachable) != 1 {
		t.Fatalf("kept facts: %+v, %v", got, ok)
	}
	if _, ok := c.uplink("eth0", peers[:1]); ok {
		t.Error("facts read for other peers were served")
	}
	if _, ok := c.uplink("eth1", peers); ok {
		t.Error("facts of another uplink were served")
	}
	c.InvalidateObjects("pod-a")
	if _, ok := c.uplink("eth0", peers); !ok {
		t.Error("a pod namespace's change dropped the node's uplink facts")
	}
	c.InvalidateObjects(state.NodeNS)
	if _, ok := c.uplink("eth0", peers); ok {
		t.Error("facts served after a change in the node namespace")
	}
	st := c.nodeStamp()
	c.InvalidateLink(state.NodeNS, 2)
	c.putUplink("eth0", peers, up, st)
	if _, ok := c.uplink("eth0", peers); ok {
		t.Error("a read overtaken by a link event was kept")
	}
	c.putUplink("eth0", peers, up, c.nodeStamp())
	c.InvalidateAll()
	if _, ok := c.uplink("eth0", peers); ok {
		t.Error("facts served after InvalidateAll")
	}
}
