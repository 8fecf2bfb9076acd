package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/netreconcile/netreconcile/internal/nstest"
	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/spec"
)

// The probe needs no datapath to be tested: two pods joined by a veth (no
// policy enforced) reach each other, so the probe observes everything
// allowed; a file whose policies deny must then show disagreements, and
// one whose policies allow must agree.

func pods(t *testing.T) (a, b string) {
	t.Helper()
	a, b = nstest.TempNetns(t, "prb-a"), nstest.TempNetns(t, "prb-b")
	nsB, err := nsutil.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer nsB.Close()
	nsA, err := nsutil.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer nsA.Close()
	hA, err := netlink.NewHandleAt(nsA)
	if err != nil {
		t.Fatal(err)
	}
	defer hA.Close()
	hB, err := netlink.NewHandleAt(nsB)
	if err != nil {
		t.Fatal(err)
	}
	defer hB.Close()
	if err := hA.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(nsB))}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct {
		h    *netlink.Handle
		addr string
	}{{hA, "10.244.1.10/24"}, {hB, "10.244.1.11/24"}} {
		l, err := e.h.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		addr, _ := netlink.ParseAddr(e.addr)
		if err := e.h.AddrAdd(l, addr); err != nil {
			t.Fatal(err)
		}
		if err := e.h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{a, b} {
		if err := nstest.WaitLinkUp(ns, "eth0", 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

func file(t *testing.T, a, b, policies string) *spec.Resolved {
	t.Helper()
	src := fmt.Sprintf(`apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16}
nodes: [{name: n, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}]
pods:
  - {name: a, namespace: t, node: n, ip: 10.244.1.10, netns: %s, labels: {pod: a}, ports: [{port: 80}, {port: 53, protocol: UDP}, {port: 9, protocol: SCTP}]}
  - {name: b, namespace: t, node: n, ip: 10.244.1.11, netns: %s, labels: {pod: b}}
  - {name: c, namespace: t, node: n, ip: 10.244.1.12, netns: prb-nowhere, labels: {pod: c}}
%s`, a, b, policies)
	r, err := spec.LoadBytes("probe.yaml", []byte(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	return r
}

func TestProbe(t *testing.T) {
	a, b := pods(t)
	opts := Options{Timeout: 300 * time.Millisecond}

	res, err := Run(context.Background(), file(t, a, b, ""), opts)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Pods, " ") != "t/a t/b" {
		t.Errorf("pods %v, want t/a t/b (t/c has no namespace here)", res.Pods)
	}
	var targets []string
	for _, m := range res.Matrices {
		targets = append(targets, m.Target.String())
	}
	if strings.Join(targets, " ") != "53/UDP 80/TCP" {
		t.Errorf("targets %v, want the declared TCP and UDP ports", targets)
	}
	if !res.Agree() {
		var out strings.Builder
		res.WriteText(&out)
		t.Errorf("no policies, no enforcement: want agreement\n%s", out.String())
	}
	notes := strings.Join(res.Notes, "\n")
	if !strings.Contains(notes, "t/c skipped") || !strings.Contains(notes, "SCTP") {
		t.Errorf("notes: %q", notes)
	}

	// Policies deny b -> a; nothing enforces them here, so the probe must
	// see them allowed and say so.
	deny := `policies:
  - {name: deny, namespace: t, spec: {podSelector: {matchLabels: {pod: a}}}}
`
	res, err = Run(context.Background(), file(t, a, b, deny), Options{Timeout: 200 * time.Millisecond, Retries: -1,
		Targets: []Target{{80, "TCP"}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Agree() || len(res.Matrices[0].Disagreements) != 1 {
		t.Errorf("disagreements %v, want exactly t/b -> t/a", res.Matrices[0].Disagreements)
	}
	var out strings.Builder
	if err := res.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "X*") && !strings.Contains(out.String(), ".*") {
		t.Errorf("text does not mark the disagreement:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "t/b -> t/a: expected denied, observed allowed") {
		t.Errorf("text does not list the disagreement:\n%s", out.String())
	}
	var js strings.Builder
	if err := res.WriteJSON(&js); err != nil || !strings.Contains(js.String(), `"agree": false`) {
		t.Errorf("json: %v\n%s", err, js.String())
	}

	// A server already on the port is used, and the probe's own
	// listeners are gone afterwards.
	l, err := nstest.ListenTCP(a, "10.244.1.10:80")
	if err != nil {
		t.Fatal(err)
	}
	nstest.ServeEcho(l)
	res, err = Run(context.Background(), file(t, a, b, ""), Options{Timeout: 300 * time.Millisecond, Targets: []Target{{80, "TCP"}}})
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !res.Agree() || !strings.Contains(strings.Join(res.Notes, "\n"), "already bound") {
		t.Errorf("existing server: agree=%v, notes %v", res.Agree(), res.Notes)
	}
	if c, err := nstest.DialTCP(a, "10.244.1.11:80", 200*time.Millisecond); err == nil {
		c.Close()
		t.Error("the probe's listener in t/b still accepts after the probe")
	} else if !errors.Is(err, net.ErrClosed) && !nstest.IsRefused(err) {
		t.Logf("after the probe: %v", err)
	}

	if _, err := Run(context.Background(), file(t, "prb-none1", "prb-none2", ""), opts); !errors.Is(err, ErrNoPods) {
		t.Errorf("no pod here: %v, want ErrNoPods", err)
	}
}
