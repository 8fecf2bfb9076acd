package daemon

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/internal/nstest"
	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/state"
)

// nlmsg frames body as one netlink message of type typ.
func nlmsg(typ uint16, body []byte) []byte {
	b := make([]byte, unix.SizeofNlMsghdr+len(body))
	binary.NativeEndian.PutUint32(b[0:4], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:6], typ)
	copy(b[unix.SizeofNlMsghdr:], body)
	return b
}

func rtmsg(table, proto uint8) []byte {
	m := unix.RtMsg{Family: unix.AF_INET, Table: table, Protocol: proto}
	return unsafe.Slice((*byte)(unsafe.Pointer(&m)), unix.SizeofRtMsg)
}

func ndmsg(family uint8, st uint16, dst netip.Addr) []byte {
	m := unix.NdMsg{Family: family, State: st}
	b := append([]byte{}, unsafe.Slice((*byte)(unsafe.Pointer(&m)), unix.SizeofNdMsg)...)
	ip := dst.AsSlice()
	attr := make([]byte, unix.SizeofRtAttr+len(ip))
	binary.NativeEndian.PutUint16(attr[0:2], uint16(len(attr)))
	binary.NativeEndian.PutUint16(attr[2:4], unix.NDA_DST)
	copy(attr[unix.SizeofRtAttr:], ip)
	return append(b, attr...)
}

// ifinfo builds an RTM_NEWLINK/DELLINK body: ifinfomsg and IFLA_MTU.
func ifinfo(family uint8, index int32, flags uint32, mtu uint32) []byte {
	m := unix.IfInfomsg{Family: family, Index: index, Flags: flags}
	b := append([]byte{}, unsafe.Slice((*byte)(unsafe.Pointer(&m)), unix.SizeofIfInfomsg)...)
	attr := make([]byte, unix.SizeofRtAttr+4)
	binary.NativeEndian.PutUint16(attr[0:2], uint16(len(attr)))
	binary.NativeEndian.PutUint16(attr[2:4], unix.IFLA_MTU)
	binary.NativeEndian.PutUint32(attr[4:], mtu)
	return append(b, attr...)
}

// Link notifications wake the loop only for news: carrier and operstate
// changes of a known link (IFF_RUNNING, IFF_LOWER_UP) do not.
func TestClassifyLinks(t *testing.T) {
	k := newKernelWatcher(func(KernelEvent) {})
	w := &nsWatch{port: 4242, links: map[int32]linkFP{}}
	up := uint32(unix.IFF_UP | unix.IFF_BROADCAST)
	dump := nlmsg(unix.RTM_NEWLINK, ifinfo(unix.AF_UNSPEC, 7, up, 1500))
	binary.NativeEndian.PutUint32(dump[12:16], 4242) // nlmsg_pid: a reply to our dump
	for _, c := range []struct {
		name string
		msg  []byte
		news bool
	}{
		{"dump reply", dump, false},
		{"carrier up", nlmsg(unix.RTM_NEWLINK, ifinfo(unix.AF_UNSPEC, 7, up|unix.IFF_RUNNING|unix.IFF_LOWER_UP, 1500)), false},
		{"carrier down", nlmsg(unix.RTM_NEWLINK, ifinfo(unix.AF_UNSPEC, 7, up, 1500)), false},
		{"mtu", nlmsg(unix.RTM_NEWLINK, ifinfo(unix.AF_UNSPEC, 7, up, 1400)), true},
		{"admin down", nlmsg(unix.RTM_NEWLINK, ifinfo(unix.AF_UNSPEC, 7, unix.IFF_BROADCAST, 1400)), true},
		{"bridge port state", nlmsg(unix.RTM_NEWLINK, ifinfo(unix.AF_BRIDGE, 7, up, 1400)), false},
		{"new link", nlmsg(unix.RTM_NEWLINK, ifinfo(unix.AF_UNSPEC, 8, up, 1500)), true},
		{"deleted", nlmsg(unix.RTM_DELLINK, ifinfo(unix.AF_UNSPEC, 7, 0, 1400)), true},
		{"seen again after deletion", nlmsg(unix.RTM_NEWLINK, ifinfo(unix.AF_UNSPEC, 7, up, 1400)), true},
	} {
		got := k.classify(w, c.msg, nil)
		if news := len(got) == 1 && got[0].Kind == EventLink; news != c.news || len(got) > 1 {
			t.Errorf("%s: %v, want news=%v", c.name, got, c.news)
		}
		if len(got) == 1 && got[0].Index != int(int32(binary.NativeEndian.Uint32(c.msg[16+4:]))) {
			t.Errorf("%s: ifindex %d, want the message's", c.name, got[0].Index)
		}
	}
}

func TestClassify(t *testing.T) {
	owned := netip.MustParseAddr("169.254.1.1")
	k := newKernelWatcher(func(KernelEvent) {})
	k.setNeighs(map[string]map[netip.Addr]bool{"pod-a": {owned: true}})
	other := netip.MustParseAddr("10.0.0.9")
	for _, c := range []struct {
		name string
		ns   string
		msg  []byte
		want string
	}{
		{"link added", "", nlmsg(unix.RTM_NEWLINK, make([]byte, unix.SizeofIfInfomsg)), EventLink},
		{"link deleted", "pod-a", nlmsg(unix.RTM_DELLINK, make([]byte, unix.SizeofIfInfomsg)), EventLink},
		{"address", "", nlmsg(unix.RTM_DELADDR, make([]byte, unix.SizeofIfAddrmsg)), EventAddr},
		{"our route deleted", "", nlmsg(unix.RTM_DELROUTE, rtmsg(unix.RT_TABLE_MAIN, uint8(state.RouteProtocol))), EventRoute},
		{"foreign route", "", nlmsg(unix.RTM_NEWROUTE, rtmsg(unix.RT_TABLE_MAIN, unix.RTPROT_STATIC)), ""},
		{"local table", "", nlmsg(unix.RTM_NEWROUTE, rtmsg(unix.RT_TABLE_LOCAL, uint8(state.RouteProtocol))), ""},
		{"short route", "", nlmsg(unix.RTM_NEWROUTE, []byte{2, 0, 0, 0}), ""},
		{"permanent neighbour", "", nlmsg(unix.RTM_NEWNEIGH, ndmsg(unix.AF_INET, unix.NUD_PERMANENT, other)), EventNeigh},
		{"owned neighbour failed", "pod-a", nlmsg(unix.RTM_NEWNEIGH, ndmsg(unix.AF_INET, unix.NUD_FAILED, owned)), EventNeigh},
		{"owned neighbour deleted", "pod-a", nlmsg(unix.RTM_DELNEIGH, ndmsg(unix.AF_INET, unix.NUD_FAILED, owned)), EventNeigh},
		{"owned IP, other namespace", "", nlmsg(unix.RTM_DELNEIGH, ndmsg(unix.AF_INET, unix.NUD_FAILED, owned)), ""},
		{"ARP churn", "pod-a", nlmsg(unix.RTM_NEWNEIGH, ndmsg(unix.AF_INET, unix.NUD_STALE, other)), ""},
		{"IPv6 neighbour", "pod-a", nlmsg(unix.RTM_NEWNEIGH, ndmsg(unix.AF_INET6, unix.NUD_PERMANENT, netip.MustParseAddr("fe80::1"))), ""},
		{"fdb entry", "", nlmsg(unix.RTM_NEWNEIGH, ndmsg(unix.AF_BRIDGE, unix.NUD_PERMANENT, other)), EventNeigh},
	} {
		got := k.classify(&nsWatch{key: c.ns, links: map[int32]linkFP{}}, c.msg, nil)
		if (c.want == "" && len(got) != 0) || (c.want != "" && (len(got) != 1 || got[0].Kind != c.want)) {
			t.Errorf("%s: %v, want %q", c.name, got, c.want)
		}
	}
	bad := nlmsg(unix.RTM_NEWLINK, make([]byte, unix.SizeofIfInfomsg))
	binary.NativeEndian.PutUint32(bad[0:4], 4096) // longer than the datagram
	if got := k.classify(&nsWatch{links: map[int32]linkFP{}}, bad, nil); len(got) != 1 || got[0].Kind != EventOverflow {
		t.Errorf("truncated message: %v", got)
	}
}

// TestKernelWatcher subscribes to a throwaway namespace and checks which
// changes wake the loop, then that a namespace deleted by hand is let go.
func TestKernelWatcher(t *testing.T) {
	ns := nstest.TempNetns(t, "nrdw")
	events := make(chan KernelEvent, 256)
	k := newKernelWatcher(func(ev KernelEvent) { events <- ev })
	defer k.close()
	want := map[string]string{ns: ns}
	added, err := k.sync(want)
	if err != nil || len(added) != 1 {
		t.Fatalf("sync: %v %v", added, err)
	}
	h, err := nsutil.Handle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	expect := func(what, kind string) {
		t.Helper()
		deadline := time.After(2 * time.Second)
		for {
			select {
			case ev := <-events:
				if ev.NS != ns {
					t.Fatalf("%s: event of namespace %q", what, ev.NS)
				}
				if ev.Kind == kind {
					return
				}
			case <-deadline:
				t.Fatalf("%s: no %s event", what, kind)
			}
		}
	}
	quiet := func(what string) {
		t.Helper()
		select {
		case ev := <-events:
			t.Fatalf("%s: unexpected %s event", what, ev.Kind)
		case <-time.After(200 * time.Millisecond):
		}
	}
	drain := func() {
		for {
			select {
			case <-events:
			case <-time.After(300 * time.Millisecond):
				return
			}
		}
	}

	// The peer lives in another namespace, so that its changes show here
	// only as carrier changes of v0.
	peerNS := nstest.TempNetns(t, "nrdp")
	pfd, err := nsutil.Open(peerNS)
	if err != nil {
		t.Fatal(err)
	}
	defer pfd.Close()
	ph, err := netlink.NewHandleAt(pfd)
	if err != nil {
		t.Fatal(err)
	}
	defer ph.Close()
	la := netlink.NewLinkAttrs()
	la.Name = "v0"
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "v1", PeerNamespace: netlink.NsFd(int(pfd))}); err != nil {
		t.Fatal(err)
	}
	expect("veth added", EventLink)
	v0, err := h.LinkByName("v0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(v0); err != nil {
		t.Fatal(err)
	}
	expect("set up", EventLink)
	drain()
	v1, err := ph.LinkByName("v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := ph.LinkSetUp(v1); err != nil {
		t.Fatal(err)
	}
	quiet("carrier up (the peer set up)")
	if err := h.LinkSetMTU(v0, 1400); err != nil {
		t.Fatal(err)
	}
	expect("mtu changed", EventLink)
	if err := h.AddrAdd(v0, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 9, 0, 1), Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}
	expect("address added", EventAddr)
	drain()

	dst := &net.IPNet{IP: net.IPv4(10, 9, 5, 0), Mask: net.CIDRMask(24, 32)}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: v0.Attrs().Index, Dst: dst, Protocol: unix.RTPROT_STATIC}); err != nil {
		t.Fatal(err)
	}
	quiet("foreign route added")
	ours := &netlink.Route{LinkIndex: v0.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4(10, 9, 6, 0), Mask: net.CIDRMask(24, 32)},
		Protocol: netlink.RouteProtocol(state.RouteProtocol)}
	if err := h.RouteAdd(ours); err != nil {
		t.Fatal(err)
	}
	expect("our route added", EventRoute)
	if err := h.RouteDel(ours); err != nil {
		t.Fatal(err)
	}
	expect("our route deleted", EventRoute)

	gw := netip.MustParseAddr("10.9.0.254")
	k.setNeighs(map[string]map[netip.Addr]bool{ns: {gw: true}})
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	perm := &netlink.Neigh{LinkIndex: v0.Attrs().Index, IP: gw.AsSlice(), HardwareAddr: mac, State: netlink.NUD_PERMANENT, Family: netlink.FAMILY_V4}
	if err := h.NeighSet(perm); err != nil {
		t.Fatal(err)
	}
	expect("permanent neighbour added", EventNeigh)
	if err := h.NeighDel(perm); err != nil {
		t.Fatal(err)
	}
	expect("owned neighbour deleted", EventNeigh)
	drain()
	stale := &netlink.Neigh{LinkIndex: v0.Attrs().Index, IP: net.IPv4(10, 9, 0, 7), HardwareAddr: mac, State: netlink.NUD_STALE, Family: netlink.FAMILY_V4}
	if err := h.NeighSet(stale); err != nil {
		t.Fatal(err)
	}
	quiet("dynamic neighbour of a foreign IP")

	// The name goes: prune lets the namespace go.
	if err := nsutil.Delete(ns); err != nil {
		t.Fatal(err)
	}
	if closed := k.prune(want); len(closed) != 1 || k.count() != 0 {
		t.Fatalf("prune after delete: closed %v, %d left", closed, k.count())
	}
	// A namespace that does not exist is skipped by sync, not an error.
	if added, err := k.sync(want); err != nil || len(added) != 0 {
		t.Fatalf("sync of a missing namespace: %v %v", added, err)
	}
}
