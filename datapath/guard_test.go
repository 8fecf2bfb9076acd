package datapath

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/bpf"
	"github.com/netreconcile/netreconcile/internal/nsutil"
)

// TestConntrackShares floods from one pod until its share of connection
// tracking is full: its next new connections are refused and counted, while
// another pod's established and new connections carry on. The collector
// then frees the flooder's expired share.
func TestConntrackShares(t *testing.T) {
	dir := tempPinDir(t)
	w := newWorld(t, "veth", dir, 3)
	defer w.dump()
	d := w.dp
	const share = 64
	must(t, d.SetConfig(Config{FastPath: true, HairpinIP: DefaultHairpinIP, ConntrackPerSource: share}), "config")
	server, flooder, other := w.pods[0], w.pods[1], w.pods[2]

	// other holds a connection before the flood.
	c, _, _, err := greet(other, svcAddr(server.ip, tcpPort))
	must(t, err, "connection before the flood")
	defer c.Close()

	// One UDP datagram per source port: each a new connection of flooder.
	sent := 0
	err = nsutil.Do(flooder.ns, func() error {
		for i := range 4 * share {
			uc, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(server.ip, udpPort)))
			if err != nil {
				return err
			}
			if _, err := uc.Write([]byte(fmt.Sprint(i))); err == nil {
				sent++
			}
			uc.Close()
		}
		return nil
	})
	must(t, err, "flood")
	use, err := d.ConntrackUsage()
	must(t, err, "usage")
	for _, u := range use {
		if u.Source == flooder.ip && u.Policy > share {
			t.Errorf("flooder holds %d policy entries, over its share of %d", u.Policy, share)
		}
	}
	if n := dropped(t, d, flooder.ip, DropCtFull); n == 0 {
		t.Errorf("no conntrack-full drop counted for the flooder after %d new flows over a share of %d", sent, share)
	}
	// Control: the other pod's connection and new ones still work.
	echo(t, c, server.name)
	if !reachTCP(t, other, svcAddr(server.ip, tcpPort)) || !reachUDP(t, other, svcAddr(server.ip, udpPort)) {
		t.Error("another pod's new connections were refused by the flooder's full share")
	}
	if reachUDP(t, flooder, svcAddr(server.ip, udpPort)) {
		t.Error("the flooder opened a new connection over its full share")
	}

	// The collector deletes what expired (here: made expired by hand) and
	// charges it back; then the flooder may connect again.
	expireAll(t, d, flooder.ip)
	st, err := d.RunGC()
	must(t, err, "gc")
	if st.Deleted == 0 {
		t.Errorf("collector deleted nothing: %+v", st)
	}
	if !reachUDP(t, flooder, svcAddr(server.ip, udpPort)) {
		t.Error("after collection the flooder still cannot connect")
	}
}

func dropped(t *testing.T, d *Datapath, pod netip.Addr, why DropReason) uint64 {
	t.Helper()
	drops, err := d.Drops()
	must(t, err, "drops")
	for _, dr := range drops {
		if dr.Pod == pod && dr.Reason == why {
			return dr.Packets
		}
	}
	return 0
}

// expireAll makes src's policy conntrack entries look long expired.
func expireAll(t *testing.T, d *Datapath, src netip.Addr) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	var k bpf.NrPolCtKey
	var v bpf.NrPolCt
	it := d.objs.NrPolCt.Iterate()
	var keys []bpf.NrPolCtKey
	for it.Next(&k, &v) {
		if addrFrom(v.Owner) == src {
			keys = append(keys, k)
		}
	}
	must(t, it.Err(), "iterate")
	for i := range keys {
		must(t, d.objs.NrPolCt.Lookup(&keys[i], &v), "lookup")
		v.SeenNs = 1 // boot time: long past every lifetime
		must(t, d.objs.NrPolCt.Put(&keys[i], &v), "expire")
	}
}

// TestReusedTupleAfterClose reopens a 4-tuple right after its connection
// was reset, to a server whose egress is isolated (its replies pass only as
// replies of a tracked connection): the new connection is tracked afresh,
// so it still answers after idling longer than a closed entry lives.
func TestReusedTupleAfterClose(t *testing.T) {
	dir := tempPinDir(t)
	w := newWorld(t, "veth", dir, 2)
	defer w.dump()
	d := w.dp
	server, client := w.pods[0], w.pods[1]
	must(t, d.SetPolicyIsolation(PolicySide{IP: server.ip, Dir: PolicyEgress}, true), "isolate server egress")
	must(t, d.SetPolicyRevision(2), "revision")

	const port = 41234
	open := func() *net.TCPConn {
		t.Helper()
		var c net.Conn
		err := nsutil.Do(client.ns, func() error {
			var err error
			dl := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{Port: port}}
			c, err = dl.Dial("tcp4", svcAddr(server.ip, tcpPort))
			return err
		})
		must(t, err, "dial from port %d", port)
		buf := make([]byte, 100)
		c.SetDeadline(time.Now().Add(time.Second))
		_, err = c.Read(buf)
		must(t, err, "greeting")
		return c.(*net.TCPConn)
	}
	first := open()
	first.SetLinger(0) // close with a reset: no TIME_WAIT, the tuple is free at once
	first.Close()
	second := open()
	defer second.Close()
	time.Sleep(3 * time.Second) // longer than a closed connection's entry lives
	second.SetDeadline(time.Now().Add(time.Second))
	if _, err := second.Write([]byte("still there\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if _, err := second.Read(buf); err != nil {
		t.Errorf("the reopened connection stopped answering after idling: %v (server drops: %d)",
			err, dropped(t, d, server.ip, DropEgress))
	}
}

// TestDetachUnbinds: detaching the hook of packets leaving a pod removes
// its source binding; detaching the other hook keeps it.
func TestDetachUnbinds(t *testing.T) {
	dir := tempPinDir(t)
	w := newWorld(t, "veth", dir, 1)
	defer w.dump()
	d := w.dp
	ns, ifname := w.hook(w.pods[0])
	count := func() int {
		t.Helper()
		b, err := d.Bindings()
		must(t, err, "bindings")
		return len(b)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d bindings after attach, want 1", n)
	}
	for _, dir := range []Direction{HostEgress, HostIngress} {
		name, err := AttachmentName(ns, ifname, dir)
		must(t, err, "name")
		must(t, d.Detach(name), "detach %s", dir)
		want := 1
		if dir.FromPod() {
			want = 0
		}
		if n := count(); n != want {
			t.Errorf("after detaching %s: %d bindings, want %d", dir, n, want)
		}
	}
}
