package daemon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/state"
)

// Kinds of kernel events, as counted in metrics.
const (
	EventLink     = "link"
	EventAddr     = "address"
	EventRoute    = "route"
	EventNeigh    = "neighbour"
	EventNetns    = "netns"    // a watched namespace's name appeared or went away
	EventOverflow = "overflow" // the socket lost events (ENOBUFS): state unknown
	// EventTC is a clsact filter of netreconcile's priority, or a clsact
	// qdisc, deleted: a pod's program attached as a filter (--attach-mode
	// auto or tc) may be gone, which no link event says.
	EventTC = "tc"
)

// KernelEvent is one change seen in a watched namespace that may concern
// objects netreconcile owns. It carries no object: the loop re-plans.
type KernelEvent struct {
	NS    string // object namespace key: "" for the node, else the pod netns reference
	Kind  string
	Index int // the link's ifindex, for EventLink
	At    time.Time
}

// Multicast groups of one subscription (the legacy bitmask form, enough
// for groups below 32): links, IPv4 addresses, IPv4 routes, neighbours
// (IPv4 ARP and bridge/vxlan FDB both arrive on RTNLGRP_NEIGH).
const groups = unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_NEIGH | unix.RTMGRP_TC

// recvBuf is the size of one receive buffer. Multicast notifications are
// one message per datagram, at most a page or two (a link with stats).
const recvBuf = 32 << 10

// bufs is shared by all subscriptions: a buffer is needed only while a
// datagram is copied out and parsed, so a thousand idle namespaces do not
// each keep one.
var bufs = sync.Pool{New: func() any { b := make([]byte, recvBuf); return &b }}

// nsID identifies a namespace (the nsfs inode) so that a name that now
// points to a different namespace is noticed.
type nsID struct{ dev, ino uint64 }

// nsWatch is the subscription of one namespace: one netlink socket
// bound to the groups above, read through the runtime's poller (no
// thread parked per namespace).
type nsWatch struct {
	key  string
	ref  string
	id   nsID
	f    *os.File
	port uint32 // the socket's netlink port id: replies to our dump carry it
	// links holds what we last saw of each link, by ifindex. Only the
	// reader goroutine touches it.
	links map[int32]linkFP
}

// linkFP is what an RTM_NEWLINK may change that netreconcile manages or
// would notice: a notification that leaves it unchanged (carrier and
// operational state, which a new link reports up to a second after its
// creation, statistics) does not wake the loop. Without this, creating a
// thousand pods makes a trail of carrier events, each a full pass.
type linkFP struct {
	up     bool
	mtu    uint32
	master uint32
	name   string
	alias  string
	addr   string
}

// kernelWatcher keeps one subscription per watched namespace.
//
// A netlink socket holds a reference on its namespace: while subscribed,
// a namespace deleted by hand (`ip netns del`) lives on with its veths.
// Prune must therefore run before a pass (and when the name disappears),
// so the pass sees the namespace gone.
type kernelWatcher struct {
	emit func(KernelEvent)
	mu   sync.Mutex
	ws   map[string]*nsWatch
	// neighs holds, per namespace key, the neighbour IPs that
	// netreconcile owns there. Neighbour events are by far the most
	// frequent (every ARP state change under traffic); only permanent
	// entries and changes to these IPs matter. The deletion of a
	// permanent entry is reported as a FAILED entry, hence the IP list.
	neighs atomic.Pointer[map[string]map[netip.Addr]bool]
	// rcvbuf is the receive buffer asked for the node namespace, which
	// sees bursts when many pods change at once.
	rcvbuf int
}

func newKernelWatcher(emit func(KernelEvent)) *kernelWatcher {
	k := &kernelWatcher{emit: emit, ws: map[string]*nsWatch{}, rcvbuf: 4 << 20}
	empty := map[string]map[netip.Addr]bool{}
	k.neighs.Store(&empty)
	return k
}

// setNeighs replaces the owned neighbour IPs by namespace.
func (k *kernelWatcher) setNeighs(m map[string]map[netip.Addr]bool) { k.neighs.Store(&m) }

// count is the number of namespaces subscribed.
func (k *kernelWatcher) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.ws)
}

// identify returns the identity of the namespace at ref, or false when
// the name does not resolve to a namespace. The current namespace ("")
// cannot change under us and is not compared.
func identify(ref string) (nsID, bool) {
	if ref == "" {
		return nsID{}, true
	}
	var st unix.Stat_t
	if err := unix.Stat(nsutil.Path(ref), &st); err != nil {
		return nsID{}, false
	}
	return nsID{st.Dev, st.Ino}, true
}

// prune closes subscriptions whose namespace is no longer wanted, or
// whose name is gone or now names another namespace. want maps object
// namespace keys to references. It returns the keys it closed.
func (k *kernelWatcher) prune(want map[string]string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var closed []string
	for key, w := range k.ws {
		ref, ok := want[key]
		if ok && ref == w.ref {
			if id, ok2 := identify(ref); ok2 && id == w.id {
				continue
			}
		}
		w.f.Close()
		delete(k.ws, key)
		closed = append(closed, key)
	}
	return closed
}

// known reports whether key is subscribed and ref still names the same
// namespace: news about that name is old news.
func (k *kernelWatcher) known(key, ref string) bool {
	k.mu.Lock()
	w, ok := k.ws[key]
	k.mu.Unlock()
	if !ok || w.ref != ref {
		return false
	}
	id, ok := identify(ref)
	return ok && id == w.id
}

// drop closes the subscription of key unless ref still names the
// namespace it was made in. It reports whether it closed one.
func (k *kernelWatcher) drop(key, ref string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	w, ok := k.ws[key]
	if !ok {
		return false
	}
	if id, ok := identify(ref); ok && id == w.id && w.ref == ref {
		return false
	}
	w.f.Close()
	delete(k.ws, key)
	return true
}

// sync subscribes to every wanted namespace that exists and is not yet
// subscribed. Namespaces that do not exist (yet) are skipped: the pass
// that creates them calls sync again. It returns the keys it added.
func (k *kernelWatcher) sync(want map[string]string) ([]string, error) {
	var added []string
	var errs []error
	for key, ref := range want {
		k.mu.Lock()
		_, have := k.ws[key]
		k.mu.Unlock()
		if have {
			continue
		}
		if ref != "" && !nsutil.Exists(ref) {
			continue
		}
		w, err := k.subscribe(key, ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		k.mu.Lock()
		k.ws[key] = w
		k.mu.Unlock()
		added = append(added, key)
		go k.read(w)
	}
	return added, errors.Join(errs...)
}

// close ends every subscription.
func (k *kernelWatcher) close() {
	k.prune(nil)
}

// subscribe opens a netlink socket inside the namespace ref. A socket
// keeps the namespace it was created in, so only its creation needs the
// thread switch.
func (k *kernelWatcher) subscribe(key, ref string) (*nsWatch, error) {
	h, err := nsutil.Open(ref)
	if err != nil {
		return nil, fmt.Errorf("subscribe to netns %q: %w", state.NSLabel(key), err)
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil {
		return nil, fmt.Errorf("subscribe to netns %q: %w", state.NSLabel(key), err)
	}
	fd := -1
	open := func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
		return err
	}
	if ref == "" {
		err = open()
	} else {
		err = nsutil.DoHandle(h, open)
	}
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("subscribe to netns %q: netlink socket: %w", state.NSLabel(key), err)
	}
	if key == state.NodeNS && k.rcvbuf > 0 {
		// Best effort: FORCE needs CAP_NET_ADMIN, which we have; an
		// overflow is handled anyway (a full pass).
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, k.rcvbuf) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, k.rcvbuf)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("subscribe to netns %q: bind: %w", state.NSLabel(key), err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("subscribe to netns %q: getsockname: %w", state.NSLabel(key), err)
	}
	port := sa.(*unix.SockaddrNetlink).Pid
	// Learn the links there are with a dump on the same socket: its
	// replies (carrying our port id) fill the link cache without waking
	// the loop, so that the first carrier event of an existing link is
	// recognised as nothing new.
	if err := requestLinkDump(fd); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("subscribe to netns %q: link dump: %w", state.NSLabel(key), err)
	}
	// A non-blocking descriptor makes os.File use the poller.
	f := os.NewFile(uintptr(fd), "netlink:"+state.NSLabel(key))
	id := nsID{st.Dev, st.Ino}
	if ref == "" {
		id = nsID{}
	}
	return &nsWatch{key: key, ref: ref, id: id, f: f, port: port, links: map[int32]linkFP{}}, nil
}

// requestLinkDump sends RTM_GETLINK with NLM_F_DUMP.
func requestLinkDump(fd int) error {
	b := make([]byte, unix.SizeofNlMsghdr+unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(b[0:4], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:6], unix.RTM_GETLINK)
	binary.NativeEndian.PutUint16(b[6:8], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(b[8:12], 1) // seq
	b[unix.SizeofNlMsghdr] = unix.AF_UNSPEC
	return unix.Sendto(fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

// read delivers the events of one subscription until it is closed.
func (k *kernelWatcher) read(w *nsWatch) {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return
	}
	var events []KernelEvent // kind and index; namespace and time added when emitted
	for {
		events = events[:0]
		err := rc.Read(func(fd uintptr) bool {
			bp := bufs.Get().(*[]byte)
			defer bufs.Put(bp)
			n, _, rerr := unix.Recvfrom(int(fd), *bp, unix.MSG_DONTWAIT)
			switch {
			case rerr == unix.EAGAIN || rerr == unix.EINTR:
				return false
			case rerr == unix.ENOBUFS:
				events = append(events, KernelEvent{Kind: EventOverflow})
				return true
			case rerr != nil || n <= 0:
				return true
			}
			events = k.classify(w, (*bp)[:n], events)
			return true
		})
		if err != nil {
			return // closed
		}
		now := time.Now()
		for _, ev := range events {
			ev.NS, ev.At = w.key, now
			k.emit(ev)
		}
	}
}

// classify appends the events (kind, and ifindex for links) of the messages in b that may concern owned
// objects. Links count when created, deleted, or changed in what linkFP
// holds; routes only with our protocol in the main table; neighbours only
// when permanent or at an IP we own (see neighs). IPv4 addresses change
// only when someone changes them: all of theirs count.
func (k *kernelWatcher) classify(w *nsWatch, b []byte, events []KernelEvent) []KernelEvent {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return append(events, KernelEvent{Kind: EventOverflow}) // unparsable: assume the worst
	}
	for _, m := range msgs {
		switch m.Header.Type {
		case unix.RTM_NEWLINK, unix.RTM_DELLINK:
			if index, news := w.linkChanged(&m); news {
				events = append(events, KernelEvent{Kind: EventLink, Index: int(index)})
			}
		case unix.RTM_NEWADDR, unix.RTM_DELADDR:
			events = append(events, KernelEvent{Kind: EventAddr})
		case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
			if len(m.Data) < unix.SizeofRtMsg {
				continue
			}
			rt := (*unix.RtMsg)(unsafe.Pointer(&m.Data[0]))
			if rt.Table == unix.RT_TABLE_MAIN && int(rt.Protocol) == state.RouteProtocol {
				events = append(events, KernelEvent{Kind: EventRoute})
			}
		case unix.RTM_NEWNEIGH, unix.RTM_DELNEIGH:
			if k.neighMatters(w.key, m.Data) {
				events = append(events, KernelEvent{Kind: EventNeigh})
			}
		case unix.RTM_DELTFILTER, unix.RTM_DELQDISC:
			if tcMatters(&m) {
				events = append(events, KernelEvent{Kind: EventTC})
			}
		}
	}
	return events
}

// linkChanged updates the link cache with m and reports the link's ifindex
// and whether it is news: a link created or deleted, or one whose linkFP
// changed. Replies to our own dump only fill the cache. Bridge-family
// messages (port states) are not ours to watch.
func (w *nsWatch) linkChanged(m *syscall.NetlinkMessage) (int32, bool) {
	if len(m.Data) < unix.SizeofIfInfomsg {
		return 0, false
	}
	ifi := (*unix.IfInfomsg)(unsafe.Pointer(&m.Data[0]))
	if ifi.Family != unix.AF_UNSPEC {
		return 0, false
	}
	dump := m.Header.Pid == w.port && w.port != 0
	if m.Header.Type == unix.RTM_DELLINK {
		delete(w.links, ifi.Index)
		return ifi.Index, !dump
	}
	fp := linkFP{up: ifi.Flags&unix.IFF_UP != 0}
	attrs, err := syscall.ParseNetlinkRouteAttr(m)
	if err != nil {
		return ifi.Index, !dump
	}
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFLA_MTU:
			if len(a.Value) >= 4 {
				fp.mtu = binary.NativeEndian.Uint32(a.Value)
			}
		case unix.IFLA_MASTER:
			if len(a.Value) >= 4 {
				fp.master = binary.NativeEndian.Uint32(a.Value)
			}
		case unix.IFLA_IFNAME:
			fp.name = strings.TrimRight(string(a.Value), "\x00")
		case unix.IFLA_IFALIAS:
			fp.alias = strings.TrimRight(string(a.Value), "\x00")
		case unix.IFLA_ADDRESS:
			fp.addr = string(a.Value)
		}
	}
	old, known := w.links[ifi.Index]
	w.links[ifi.Index] = fp
	return ifi.Index, !dump && (!known || old != fp)
}

// neighMatters reads an ndmsg and its NDA_DST attribute.
func (k *kernelWatcher) neighMatters(key string, data []byte) bool {
	if len(data) < unix.SizeofNdMsg {
		return false
	}
	nd := (*unix.NdMsg)(unsafe.Pointer(&data[0]))
	if nd.Family != unix.AF_INET && nd.Family != unix.AF_BRIDGE {
		return false
	}
	if nd.State&unix.NUD_PERMANENT != 0 {
		return true
	}
	owned := (*k.neighs.Load())[key]
	if len(owned) == 0 {
		return false
	}
	attrs := data[unix.SizeofNdMsg:]
	for len(attrs) >= unix.SizeofRtAttr {
		l := int(binary.NativeEndian.Uint16(attrs[0:2]))
		typ := binary.NativeEndian.Uint16(attrs[2:4])
		if l < unix.SizeofRtAttr || l > len(attrs) {
			return false
		}
		if typ == unix.NDA_DST {
			if ip, ok := netip.AddrFromSlice(attrs[unix.SizeofRtAttr:l]); ok {
				return owned[ip.Unmap()]
			}
			return false
		}
		attrs = attrs[min(len(attrs), (l+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1)):]
	}
	return false
}

// tcPriority is the priority of netreconcile's clsact filters
// (datapath's tcPriority, "NR").
const tcPriority = 0x4e52

// tcMatters reports whether a deleted filter or qdisc may be one of ours:
// a filter of our priority (tcm_info holds it in its upper 16 bits), or a
// clsact qdisc (its deletion takes every filter with it). Our own
// detaches count too; the cost is the attachments read once more.
func tcMatters(m *syscall.NetlinkMessage) bool {
	// struct tcmsg: family, pad (4 bytes), ifindex, handle, parent, info.
	const sizeofTcMsg, tcHClsact = 20, 0xfffffff1
	if len(m.Data) < sizeofTcMsg {
		return false
	}
	parent, info := binary.NativeEndian.Uint32(m.Data[12:16]), binary.NativeEndian.Uint32(m.Data[16:20])
	if m.Header.Type == unix.RTM_DELTFILTER {
		return info>>16 == tcPriority
	}
	return parent == tcHClsact
}
