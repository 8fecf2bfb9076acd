package datapath

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/netreconcile/netreconcile/bpf"
	"github.com/netreconcile/netreconcile/internal/nsutil"
)

// TestLongLivedConnection: an established TCP connection through a
// clusterIP survives adding a backend and removing another (not its own),
// and closing and reopening the Datapath; new connections only ever go to
// current backends.
func TestLongLivedConnection(t *testing.T) {
	dir := tempPinDir(t)
	w := newWorld(t, "veth", dir, 4)
	defer w.dump()
	client := w.pods[3]
	key := ServiceKey{IP: clusterIP, Port: 80, Proto: ProtoTCP}
	must(t, w.dp.SetService(Service{Key: key, Backends: backendsOf(w.pods[:2], tcpPort)}), "set")

	c, own, _, err := greet(client, svcAddr(clusterIP, 80))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo(t, c, own)
	var ownPod, otherPod *pod
	for _, p := range w.pods[:2] {
		if p.name == own {
			ownPod = p
		} else {
			otherPod = p
		}
	}
	newPod := w.pods[2]

	// Add one backend, remove the other.
	must(t, w.dp.SetService(Service{Key: key, Backends: backendsOf([]*pod{newPod, ownPod}, tcpPort)}), "change backends")
	echo(t, c, own)
	got, err := w.dp.Services()
	must(t, err, "services")
	want := backendsOf([]*pod{ownPod, newPod}, tcpPort)
	slices.SortFunc(want, compareBackends)
	if !slices.Equal(got[key].Backends, want) {
		t.Errorf("backends after change: %v, want %v", got[key].Backends, want)
	}
	for range 20 {
		c2, backend, _, err := greet(client, svcAddr(clusterIP, 80))
		if err != nil {
			t.Fatal(err)
		}
		c2.Close()
		if backend == otherPod.name {
			t.Fatalf("a new connection went to removed backend %s", backend)
		}
	}

	// The process goes away; the pins keep the datapath alive.
	w.dp.Close()
	echo(t, c, own)
	d2 := openDP(t, dir)
	w.dp = d2
	if notes := d2.Notes(); len(notes) != 0 {
		t.Errorf("reopen with the same build should need nothing: %v", notes)
	}
	echo(t, c, own)
	got, err = d2.Services()
	must(t, err, "services")
	if !slices.Equal(got[key].Backends, want) {
		t.Errorf("backends after reopen: %v, want %v", got[key].Backends, want)
	}
	// Re-applying the same service changes nothing and breaks nothing.
	must(t, d2.SetService(Service{Key: key, Backends: want}), "re-apply")
	echo(t, c, own)
}

// TestAttachIdempotent: attaching again, with the same or a reopened
// Datapath, keeps the same links and programs.
func TestAttachIdempotent(t *testing.T) {
	dir := tempPinDir(t)
	w := newWorld(t, "veth", dir, 2)
	defer w.dump()
	before, err := w.dp.Attachments(nil)
	must(t, err, "attachments")
	if len(before) != 4 {
		t.Fatalf("attachments: %+v, want 4", before)
	}
	for _, a := range before {
		if !a.Current || a.Defunct || a.Mode != ModeTCX || a.IfIndex == 0 || a.Netns != w.node || a.NetnsInode == 0 {
			t.Errorf("attachment %+v: want current, live, tcx in %s", a, w.node)
		}
	}
	w.attachAll(w.dp)
	after, err := w.dp.Attachments(nil)
	must(t, err, "attachments")
	if !slices.Equal(before, after) {
		t.Errorf("attach again changed attachments:\n%+v\n%+v", before, after)
	}

	w.dp.Close()
	d2 := openDP(t, dir)
	w.dp = d2
	w.attachAll(d2)
	after, err = d2.Attachments(nil)
	must(t, err, "attachments")
	if !slices.Equal(before, after) {
		t.Errorf("attach after reopen changed attachments:\n%+v\n%+v", before, after)
	}
	// Still exactly one of our programs per hook.
	for _, p := range w.pods {
		for _, dir := range HostDirections {
			if n := countTCX(t, w.node, p.hostIndex, dir); n != 1 {
				t.Errorf("%s %s: %d tcx programs, want 1", p.hostIf, dir, n)
			}
		}
	}
}

func countTCX(t *testing.T, ns string, ifindex int, dir Direction) int {
	t.Helper()
	var n int
	err := nsutil.Do(ns, func() error {
		res, err := link.QueryPrograms(link.QueryOptions{Target: ifindex, Attach: dir.attachType()})
		if err != nil {
			return err
		}
		n = len(res.Programs)
		return nil
	})
	must(t, err, "query tcx programs")
	return n
}

// TestDefunctDetachDestroy: an attachment whose interface vanished is
// reported defunct and Detach removes it; Destroy detaches the rest and
// leaves no pins.
func TestDefunctDetachDestroy(t *testing.T) {
	dir := tempPinDir(t)
	w := newWorld(t, "veth", dir, 2)
	defer w.dump()
	gone := w.pods[1]
	var linkIDs []link.ID
	atts, err := w.dp.Attachments(nil)
	must(t, err, "attachments")
	for _, a := range atts {
		linkIDs = append(linkIDs, a.LinkID)
	}
	// The pod's interface vanishes (its namespace would too, but our own
	// test sockets keep that namespace alive).
	nh := handleAt(t, w.node)
	hl, err := nh.LinkByName(gone.hostIf)
	must(t, err, "host veth")
	must(t, nh.LinkDel(hl), "delete veth")
	waitFor(t, func() bool {
		atts, err := w.dp.Attachments(nil)
		must(t, err, "attachments")
		n := 0
		for _, a := range atts {
			if a.Defunct {
				n++
			}
		}
		return n == 2
	}, "the vanished pod's two attachments to turn defunct")
	atts, err = w.dp.Attachments(nil)
	must(t, err, "attachments")
	for _, a := range atts {
		if a.Defunct != (a.IfName == gone.hostIf) {
			t.Errorf("attachment %+v: defunct should be %v", a, a.IfName == gone.hostIf)
		}
	}

	// The interface comes back under the same name: Attach replaces the
	// defunct link of that hook.
	podNS := mustNS(t, gone.ns)
	must(t, nh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: gone.hostIf}, PeerName: "eth1", PeerNamespace: netlink.NsFd(int(podNS))}), "recreate veth")
	podNS.Close()
	hl, err = nh.LinkByName(gone.hostIf)
	must(t, err, "host veth")
	must(t, w.dp.Attach(w.node, gone.hostIf, HostIngress), "attach again")
	atts, err = w.dp.Attachments(nil)
	must(t, err, "attachments")
	for _, a := range atts {
		if a.IfName != gone.hostIf {
			continue
		}
		if a.Direction == HostIngress && (a.Defunct || a.IfIndex != hl.Attrs().Index || !a.Current) {
			t.Errorf("re-attached: %+v, want live on ifindex %d", a, hl.Attrs().Index)
		}
		if a.Direction == HostEgress {
			if !a.Defunct {
				t.Errorf("not re-attached, should still be defunct: %+v", a)
			}
			must(t, w.dp.Detach(a.Name), "detach")
			must(t, w.dp.Detach(a.Name), "detach again") // idempotent
		}
	}
	atts, err = w.dp.Attachments(nil)
	must(t, err, "attachments")
	if len(atts) != 3 {
		t.Errorf("after detaching the defunct one: %+v", atts)
	}
	for _, a := range atts {
		linkIDs = append(linkIDs, a.LinkID)
	}

	w.dp.Close()
	must(t, Destroy(dir), "destroy")
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin dir after Destroy: %v", err)
	}
	for _, id := range linkIDs {
		if l, err := link.NewFromID(id); err == nil {
			l.Close()
			t.Errorf("link %d still exists after Destroy", id)
		}
	}
	if n := countTCX(t, w.node, w.pods[0].hostIndex, HostIngress); n != 0 {
		t.Errorf("%d programs still attached after Destroy", n)
	}
	must(t, Destroy(dir), "destroy again")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for range 100 {
		if cond() {
			return
		}
		sleep()
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestIncompatiblePinnedMaps: maps pinned by another layout are replaced
// with a note, never reused half-way and never a crash; links still
// running the old program are switched in place, and traffic flows again
// once services are reprogrammed.
func TestIncompatiblePinnedMaps(t *testing.T) {
	t.Run("spec mismatch", func(t *testing.T) {
		dir := tempPinDir(t)
		pinIncompatibleServices(t, dir)
		d := openDP(t, dir)
		if notes := strings.Join(d.Notes(), "\n"); !strings.Contains(notes, "replaced incompatible pinned maps") || !strings.Contains(notes, "ValueSize") {
			t.Errorf("notes: %q", notes)
		}
		k := ServiceKey{IP: clusterIP, Port: 80, Proto: ProtoTCP}
		must(t, d.SetService(Service{Key: k}), "set after replacement")
	})

	t.Run("version mismatch with live links", func(t *testing.T) {
		dir := tempPinDir(t)
		w := newWorld(t, "veth", dir, 2)
		defer w.dump()
		key := ServiceKey{IP: clusterIP, Port: 80, Proto: ProtoTCP}
		svc := Service{Key: key, Backends: backendsOf(w.pods[:1], tcpPort)}
		must(t, w.dp.SetService(svc), "set")
		cfg := bpf.NrConfig{Version: 99}
		must(t, w.dp.objs.NrConfig.Put(uint32(0), &cfg), "fake an old layout")
		w.dp.Close()

		d := openDP(t, dir)
		w.dp = d
		notes := strings.Join(d.Notes(), "\n")
		if !strings.Contains(notes, "layout version 99") || !strings.Contains(notes, "upgraded attachment") {
			t.Errorf("notes: %q", notes)
		}
		atts, err := d.Attachments(nil)
		must(t, err, "attachments")
		for _, a := range atts {
			if !a.Current {
				t.Errorf("attachment not upgraded: %+v", a)
			}
			// The source bindings went with the old maps: attachments
			// read as unbound, which the engine repairs (Bind).
			if a.Source.IsValid() {
				t.Errorf("attachment bound after the maps were replaced: %+v", a)
			}
		}
		if s, _ := d.Services(); len(s) != 0 {
			t.Errorf("replaced maps should start empty: %v", s)
		}
		must(t, d.SetService(svc), "reprogram")
		w.attachAll(d)
		c, backend, _, err := greet(w.pods[1], svcAddr(clusterIP, 80))
		if err != nil || backend != w.pods[0].name {
			t.Fatalf("after upgrade: %s %v", backend, err)
		}
		c.Close()
	})
}

// TestTCFallback runs the datapath through clsact filters, as on kernels
// without tcx.
func TestTCFallback(t *testing.T) {
	dir := tempPinDir(t)
	forceTC = true
	defer func() { forceTC = false }()
	w := newWorld(t, "veth", dir, 2)
	defer w.dump()
	key := ServiceKey{IP: clusterIP, Port: 80, Proto: ProtoTCP}
	must(t, w.dp.SetService(Service{Key: key, Backends: backendsOf(w.pods[:1], tcpPort)}), "set")
	c, backend, _, err := greet(w.pods[1], svcAddr(clusterIP, 80))
	if err != nil || backend != w.pods[0].name {
		t.Fatalf("through clsact: %s %v", backend, err)
	}
	c.Close()
	before, err := w.dp.Attachments(nil)
	must(t, err, "attachments")
	w.attachAll(w.dp)
	after, err := w.dp.Attachments(nil)
	must(t, err, "attachments")
	if len(before) != 4 {
		t.Fatalf("attachments %+v", before)
	}
	for i, a := range before {
		if a.Mode != ModeTC || !a.Current || a.Defunct || a.ProgramID == 0 {
			t.Errorf("attachment %+v", a)
		}
		if a.ProgramID != after[i].ProgramID {
			t.Errorf("re-attach replaced the filter of %s", a.Name)
		}
	}
	// Reopened, the same filters are kept.
	w.dp.Close()
	w.dp = openDP(t, dir)
	w.attachAll(w.dp)
	after, err = w.dp.Attachments(nil)
	must(t, err, "attachments")
	if !slices.Equal(before, after) {
		t.Errorf("attach after reopen changed attachments:\n%+v\n%+v", before, after)
	}
	must(t, w.dp.Detach(before[0].Name), "detach")
	atts, err := w.dp.Attachments(nil)
	must(t, err, "attachments")
	if len(atts) != 3 {
		t.Errorf("after detach: %+v", atts)
	}

	// tcx becomes available: attaching again moves every hook to tcx and
	// leaves no filter behind to run the program twice.
	forceTC = false
	w.attachAll(w.dp)
	atts, err = w.dp.Attachments(nil)
	must(t, err, "attachments")
	if len(atts) != 4 {
		t.Errorf("after moving to tcx: %+v", atts)
	}
	for _, a := range atts {
		if a.Mode != ModeTCX || !a.Current {
			t.Errorf("after moving to tcx: %+v", a)
		}
	}
	c, backend, _, err = greet(w.pods[1], svcAddr(clusterIP, 80))
	if err != nil || backend != w.pods[0].name {
		t.Fatalf("through tcx: %s %v", backend, err)
	}
	c.Close()
	w.dp.Close()
	must(t, Destroy(dir), "destroy")
	nh := handleAt(t, w.node)
	for _, p := range w.pods {
		l, err := nh.LinkByIndex(p.hostIndex)
		must(t, err, "link")
		for _, dir := range HostDirections {
			if n := countTCX(t, w.node, p.hostIndex, dir); n != 0 {
				t.Errorf("%s %s: %d tcx programs left after Destroy", p.hostIf, dir, n)
			}
			fs, err := nh.FilterList(l, dir.tcParent())
			must(t, err, "filters")
			if len(fs) != 0 {
				t.Errorf("%s %s: filters left after Destroy: %v", p.hostIf, dir, fs)
			}
		}
	}
}

// TestAPI covers the map-level API without traffic: round trips,
// idempotence, validation and error wording.
func TestAPI(t *testing.T) {
	dir := tempPinDir(t)
	d := openDP(t, dir)
	k := ServiceKey{IP: clusterIP, Port: 80, Proto: ProtoTCP}
	b := func(s string, port uint16) Backend { return Backend{IP: netip.MustParseAddr(s), Port: port} }
	svc := Service{Key: k, Backends: []Backend{b("10.244.1.12", 8080), b("10.244.1.11", 8080)}, Affinity: true}
	must(t, d.SetService(svc), "set")
	must(t, d.SetService(svc), "set again")
	got, err := d.Services()
	must(t, err, "services")
	want := Service{Key: k, Backends: []Backend{b("10.244.1.11", 8080), b("10.244.1.12", 8080)}, Affinity: true}
	if len(got) != 1 || !equalService(got[k], want) {
		t.Errorf("services: %+v, want %+v", got, want)
	}

	// Shrink: the remaining backend keeps its slot.
	before, err := d.readSlots(mustID(t, d, k), 2)
	must(t, err, "slots")
	must(t, d.SetService(Service{Key: k, Backends: []Backend{b("10.244.1.11", 8080)}}), "shrink")
	after, err := d.readSlots(mustID(t, d, k), 1)
	must(t, err, "slots")
	if before[0] == b("10.244.1.11", 8080) && after[0] != before[0] {
		t.Errorf("remaining backend moved: %v -> %v", before, after)
	}

	must(t, d.DeleteService(k), "delete")
	must(t, d.DeleteService(k), "delete again")
	if got, _ := d.Services(); len(got) != 0 {
		t.Errorf("after delete: %v", got)
	}
	var n int
	var id uint32
	var sk bpf.NrSvcKey
	for it := d.objs.NrSvcIds.Iterate(); it.Next(&id, &sk); {
		n++
	}
	if n != 0 {
		t.Errorf("%d service ids left after delete", n)
	}

	ip := netip.MustParseAddr("10.244.1.11")
	must(t, d.SetEndpoint(ip, Endpoint{IfIndex: 7}), "endpoint")
	eps, err := d.Endpoints()
	must(t, err, "endpoints")
	if eps[ip] != (Endpoint{IfIndex: 7}) || len(eps) != 1 {
		t.Errorf("endpoints: %v", eps)
	}
	must(t, d.DeleteEndpoint(ip), "delete endpoint")
	must(t, d.DeleteEndpoint(ip), "delete endpoint again")

	bad := []struct {
		s    Service
		text string
	}{
		{Service{Key: ServiceKey{IP: netip.MustParseAddr("fd00::1"), Port: 80, Proto: ProtoTCP}}, "not IPv4"},
		{Service{Key: ServiceKey{IP: clusterIP, Port: 0, Proto: ProtoTCP}}, "port 0"},
		{Service{Key: ServiceKey{IP: clusterIP, Port: 80, Proto: 1}}, "protocol 1"},
		{Service{Key: k, Backends: []Backend{b("10.244.1.11", 80), b("10.244.1.11", 80)}}, "listed twice"},
		{Service{Key: k, Backends: []Backend{b("10.244.1.11", 0)}}, "port 0"},
	}
	for _, c := range bad {
		err := d.SetService(c.s)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.text) || !strings.HasPrefix(err.Error(), "service ") {
			t.Errorf("SetService(%+v) = %v, want ErrInvalid mentioning %q", c.s, err, c.text)
		}
	}
	if err := d.SetService(Service{Key: k, Backends: []Backend{b("10.244.1.11", 0)}}); err == nil ||
		!strings.HasPrefix(err.Error(), "service 10.96.0.10:80/TCP: ") {
		t.Errorf("error wording: %v", err)
	}
	if _, err := Open(t.TempDir()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Open on a non-bpffs dir: %v, want ErrUnavailable", err)
	}

	cfg, err := d.Config()
	must(t, err, "config")
	if !cfg.FastPath || cfg.HairpinIP != DefaultHairpinIP {
		t.Errorf("default config: %+v", cfg)
	}
}

func equalService(a, b Service) bool {
	return a.Key == b.Key && a.Affinity == b.Affinity && a.Hash == b.Hash && slices.Equal(a.Backends, b.Backends)
}

func mustID(t *testing.T, d *Datapath, k ServiceKey) uint32 {
	t.Helper()
	key := k.mapKey()
	var v bpf.NrSvcValue
	must(t, d.objs.NrServices.Lookup(&key, &v), "lookup")
	return v.Id
}

func TestAssignSlots(t *testing.T) {
	b := func(i int) Backend { return Backend{IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), Port: 80} }
	cases := []struct{ old, want, slots []Backend }{
		{nil, []Backend{b(1), b(2)}, []Backend{b(1), b(2)}},
		{[]Backend{b(1), b(2), b(3)}, []Backend{b(3), b(1)}, []Backend{b(1), b(3)}},
		{[]Backend{b(1), b(2), b(3)}, []Backend{b(2), b(3), b(4)}, []Backend{b(4), b(2), b(3)}},
		{[]Backend{b(1), {}, b(3)}, []Backend{b(1), b(3), b(5)}, []Backend{b(1), b(5), b(3)}},
		{[]Backend{b(1), b(2)}, nil, []Backend{}},
	}
	for _, c := range cases {
		if got := assignSlots(c.old, c.want); !slices.Equal(got, c.slots) {
			t.Errorf("assignSlots(%v, %v) = %v, want %v", c.old, c.want, got, c.slots)
		}
	}
}

func TestAttachmentName(t *testing.T) {
	for _, c := range []struct {
		ns, ifname string
		dir        Direction
		name       string
	}{
		{"", "eth0", PodEgress, ".:eth0:pod-egress"},
		{"node-a", "nrv1", HostIngress, "node-a:nrv1:host-ingress"},
		{"/var/run/netns/x:y%", "nrv1", HostEgress, "%2Fvar%2Frun%2Fnetns%2Fx%3Ay%25:nrv1:host-egress"},
	} {
		name, err := AttachmentName(c.ns, c.ifname, c.dir)
		if err != nil || name != c.name {
			t.Errorf("AttachmentName(%q, %q, %v) = %q, %v; want %q", c.ns, c.ifname, c.dir, name, err, c.name)
		}
		ns, ifname, dir, err := ParseAttachmentName(name)
		if err != nil || ns != c.ns || ifname != c.ifname || dir != c.dir {
			t.Errorf("ParseAttachmentName(%q) = %q %q %v %v", name, ns, ifname, dir, err)
		}
	}
	if _, err := AttachmentName("x", "a:b", HostIngress); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad ifname accepted: %v", err)
	}
}

// TestOpenReusesPinnedPrograms: a second Open of the same pins takes the
// programs the first one pinned (the same kernel programs, not verified
// again); once the maps they use are replaced, Open loads new ones.
func TestOpenReusesPinnedPrograms(t *testing.T) {
	dir := tempPinDir(t)
	progID := func(d *Datapath) ebpf.ProgramID {
		t.Helper()
		info, err := d.objs.NrFromPod.Info()
		must(t, err, "program info")
		id, ok := info.ID()
		if !ok {
			t.Fatal("no program id")
		}
		return id
	}
	first := openDP(t, dir)
	id1 := progID(first)
	first.Close()
	second := openDP(t, dir)
	if id2 := progID(second); id2 != id1 {
		t.Fatalf("second Open loaded program %d, want the pinned %d", id2, id1)
	}
	k := ServiceKey{IP: clusterIP, Port: 80, Proto: ProtoTCP}
	must(t, second.SetService(Service{Key: k}), "set through the reused datapath")
	second.Close()

	pinIncompatibleServices(t, dir)
	third := openDP(t, dir)
	if id3 := progID(third); id3 == id1 {
		t.Fatalf("Open after the maps were replaced kept program %d, which uses the old maps", id3)
	}
	must(t, third.SetService(Service{Key: k}), "set after replacement")
}

// pinIncompatibleServices pins, in place of the services map, one of
// another shape, as a build with another layout might have left.
func pinIncompatibleServices(t *testing.T, dir string) {
	t.Helper()
	must(t, os.Remove(filepath.Join(dir, bpf.NrMapNrServices)), "unpin")
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 16, MaxEntries: 16})
	must(t, err, "map")
	must(t, m.Pin(filepath.Join(dir, bpf.NrMapNrServices)), "pin")
	m.Close()
}
