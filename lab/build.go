package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/spec"
)

// Build creates the lab of r, or completes it: it is idempotent, and a
// second run on a complete lab changes nothing (Info.Changes is empty).
// Whatever is wrong inside the lab's own namespaces (a missing route, a
// stray address, an uplink plugged into another namespace) is replaced.
// It returns once every uplink is operational, so traffic sent right after
// is not lost while the kernel brings the new veths up.
//
// A topology the lab cannot build fails before any change, with errors
// wrapping ErrInvalid; kernel failures are *Error values naming the object
// and the step.
//
// The node set decides the underlay's name: after adding or removing a
// node, tear the previous lab down with the previous file, since its
// underlay namespace is not found from the new one.
func Build(ctx context.Context, r *spec.Resolved) (*Info, error) { return Names{}.Build(ctx, r) }

// Build is the package's Build with n's names.
func (n Names) Build(ctx context.Context, r *spec.Resolved) (*Info, error) {
	return n.BuildNodes(ctx, r, nil)
}

// BuildNodes is Build of the nodes named only (every node for none): a
// few real nodes of a cluster-sized file, the others existing only in
// the file. The layout is the whole file's (the same addresses, routers
// and underlay), and the underlay keeps the ports of the file's other
// nodes, so that building another subset adds to the lab. The Info
// returned holds the nodes built and their subnets. A name that is not a
// node of the file fails before any change, wrapping ErrInvalid.
func (n Names) BuildNodes(ctx context.Context, r *spec.Resolved, nodes []string) (*Info, error) {
	all, err := n.Layout(r)
	if err != nil {
		return nil, err
	}
	in, err := all.only(nodes)
	if err != nil {
		return nil, err
	}
	b := &builder{info: in, all: all, ulNs: netns.None()}
	if err := b.underlay(ctx); err != nil {
		return nil, err
	}
	defer b.close()
	for i := range in.Nodes {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		if err := b.node(ctx, &in.Nodes[i]); err != nil {
			return nil, err
		}
	}
	if err := b.pruneUnderlay(); err != nil {
		return nil, err
	}
	return in, nil
}

// Teardown deletes the namespaces of r's lab: every node's and the
// underlay. Deleting a namespace destroys its devices (the kernel finishes
// that asynchronously), and with them the veth peers in the other
// namespace. Namespaces already gone are fine, so Teardown is idempotent.
func Teardown(r *spec.Resolved) error { return Names{}.Teardown(r) }

// Teardown is the package's Teardown with n's names.
func (n Names) Teardown(r *spec.Resolved) error { return n.TeardownNodes(r, nil) }

// TeardownNodes is Teardown of the nodes named only (every node for
// none); the underlay goes with the last node of the file still there.
func (n Names) TeardownNodes(r *spec.Resolved, nodes []string) error {
	if r == nil {
		return nil
	}
	if err := CheckNodes(r, nodes); err != nil {
		return err
	}
	var errs []error
	for _, nd := range r.Nodes {
		if len(nodes) > 0 && !slices.Contains(nodes, nd.Name) {
			continue
		}
		if err := nsutil.Delete(n.NodeNetns(nd.Name)); err != nil {
			errs = append(errs, nodeErr(nd.Name, "delete netns", err))
		}
	}
	for _, nd := range r.Nodes {
		if len(nodes) > 0 && nsutil.Exists(n.NodeNetns(nd.Name)) {
			return errors.Join(errs...) // the rest of the lab still uses the underlay
		}
	}
	ul := n.UnderlayNetns(r)
	if err := nsutil.Delete(ul); err != nil {
		errs = append(errs, &Error{Object: fmt.Sprintf("underlay %q", ul), Op: "delete netns", Err: err})
	}
	return errors.Join(errs...)
}

type builder struct {
	info *Info // what to build
	all  *Info // the whole file's lab (what the underlay may keep)
	ulNs netns.NsHandle
	ul   *netlink.Handle
}

func (b *builder) changed(format string, args ...any) {
	b.info.Changes = append(b.info.Changes, fmt.Sprintf(format, args...))
}

func (b *builder) close() {
	if b.ul != nil {
		b.ul.Close()
	}
	b.ulNs.Close()
}

func (b *builder) ulErr(op string, err error) error {
	return &Error{Object: fmt.Sprintf("underlay %q", b.info.Underlay), Op: op, Err: err}
}

// underlay makes the underlay namespace, its forwarding sysctls and one
// bridge per subnet carrying the router address.
func (b *builder) underlay(ctx context.Context) error {
	name := b.info.Underlay
	created, err := ensureNetns(name)
	if err != nil {
		return b.ulErr("create netns", err)
	}
	if created {
		b.changed("created netns %s", name)
	}
	if b.ulNs, err = nsutil.Open(name); err != nil {
		return b.ulErr("open netns", err)
	}
	if b.ul, err = netlink.NewHandleAt(b.ulNs); err != nil {
		b.ulNs.Close()
		return b.ulErr("open netlink handle", err)
	}
	ok := false
	defer func() {
		if !ok {
			b.close()
		}
	}()
	if err := b.loUp(b.ul, name); err != nil {
		return b.ulErr("set lo up", err)
	}
	v4, v6 := false, false
	for _, s := range b.info.Subnets {
		v4 = v4 || s.Prefix.Addr().Is4()
		v6 = v6 || s.Prefix.Addr().Is6()
	}
	if v4 {
		if err := b.sysctl(name, "net/ipv4/ip_forward", "1"); err != nil {
			return b.ulErr("enable forwarding", err)
		}
	}
	if v6 {
		if err := b.sysctl(name, "net/ipv6/conf/all/forwarding", "1"); err != nil {
			return b.ulErr("enable forwarding", err)
		}
		// The router forwards with its link-local address as the source
		// of its neighbour solicitations; while DAD holds that address
		// tentative (a second), the first packet to every node behind it
		// is lost. The lab numbers this network alone: no DAD needed.
		for _, key := range []string{"net/ipv6/conf/default/accept_dad", "net/ipv6/conf/all/accept_dad"} {
			if err := b.sysctl(name, key, "0"); err != nil {
				return b.ulErr("disable DAD", err)
			}
		}
	}
	for _, s := range b.info.Subnets {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
		if err := b.bridge(s); err != nil {
			return &Error{Object: "subnet " + s.Prefix.String(), Op: fmt.Sprintf("bridge %s", s.Bridge), Err: err}
		}
	}
	ok = true
	return nil
}

func (b *builder) sysctl(ns, key, value string) error {
	cur, err := nsutil.ReadSysctl(ns, key)
	if err != nil {
		return err
	}
	if cur == value {
		return nil
	}
	if err := nsutil.WriteSysctl(ns, key, value); err != nil {
		return err
	}
	b.changed("set %s=%s in %s", strings.ReplaceAll(key, "/", "."), value, ns)
	return nil
}

func (b *builder) bridge(s SubnetInfo) error {
	link, err := b.ul.LinkByName(s.Bridge)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("look up: %w", err)
	}
	if link != nil {
		if _, isBridge := link.(*netlink.Bridge); !isBridge {
			if err := b.ul.LinkDel(link); err != nil {
				return fmt.Errorf("delete %s device of the same name: %w", link.Type(), err)
			}
			b.changed("deleted %s device %s in %s", link.Type(), s.Bridge, b.info.Underlay)
			link = nil
		}
	}
	if link == nil {
		// An explicit MAC also stops the bridge from taking its lowest
		// port's, which would change the router's MAC as ports come and go.
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: s.Bridge, HardwareAddr: s.MAC}}
		if err := b.ul.LinkAdd(br); err != nil {
			return fmt.Errorf("create: %w", err)
		}
		b.changed("created bridge %s in %s", s.Bridge, b.info.Underlay)
		if link, err = b.ul.LinkByName(s.Bridge); err != nil {
			return fmt.Errorf("look up: %w", err)
		}
	}
	if err := b.alias(b.ul, link, "nrlab subnet "+s.Prefix.String()); err != nil {
		return err
	}
	if err := b.mac(b.ul, link, s.MAC, b.info.Underlay); err != nil {
		return err
	}
	router := netip.PrefixFrom(s.Router, s.Prefix.Bits())
	if err := b.onlyAddr(b.ul, link, router, b.info.Underlay); err != nil {
		return err
	}
	return b.up(b.ul, link, b.info.Underlay)
}

// node builds one node: its namespace, the uplink veth into the underlay
// bridge, the node address and the default route.
func (b *builder) node(ctx context.Context, n *NodeInfo) error {
	created, err := ensureNetns(n.Netns)
	if err != nil {
		return nodeErr(n.Name, "create netns", err)
	}
	if created {
		b.changed("created netns %s", n.Netns)
	}
	nodeNs, err := nsutil.Open(n.Netns)
	if err != nil {
		return nodeErr(n.Name, "open netns", err)
	}
	defer nodeNs.Close()
	h, err := netlink.NewHandleAt(nodeNs)
	if err != nil {
		return nodeErr(n.Name, "open netlink handle", err)
	}
	defer h.Close()
	if err := b.loUp(h, n.Netns); err != nil {
		return nodeErr(n.Name, "set lo up", err)
	}
	uplinkOp := fmt.Sprintf("create uplink %q", n.Uplink)
	uplink, err := b.uplink(h, nodeNs, n)
	if err != nil {
		return nodeErr(n.Name, uplinkOp, err)
	}
	if err := b.onlyAddr(h, uplink, n.Address, n.Netns); err != nil {
		return nodeErr(n.Name, fmt.Sprintf("address uplink %q", n.Uplink), err)
	}
	if err := b.up(h, uplink, n.Netns); err != nil {
		return nodeErr(n.Name, fmt.Sprintf("set uplink %q up", n.Uplink), err)
	}
	if err := b.defaultRoute(h, uplink, n); err != nil {
		return nodeErr(n.Name, "default route via "+n.Router.String(), err)
	}
	if err := waitOperUp(ctx, h, n.Uplink); err != nil {
		return nodeErr(n.Name, fmt.Sprintf("wait for uplink %q", n.Uplink), err)
	}
	if err := waitOperUp(ctx, b.ul, n.Port); err != nil {
		return nodeErr(n.Name, fmt.Sprintf("wait for underlay port %s", n.Port), err)
	}
	return nil
}

// operUpTimeout bounds the wait for a new veth to become operational.
const operUpTimeout = 5 * time.Second

// waitOperUp waits until the link is operationally up. The kernel gives a
// device its queueing discipline only once it has seen the carrier, which
// happens asynchronously (linkwatch); packets sent before are dropped, so
// the first connection over a fresh lab would stall for a retransmission
// timeout (1 s or more) unless Build waits here.
func waitOperUp(ctx context.Context, h *netlink.Handle, name string) error {
	ctx, cancel := context.WithTimeout(ctx, operUpTimeout)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		l, err := h.LinkByName(name)
		if err != nil {
			return err
		}
		if l.Attrs().OperState == netlink.OperUp {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still %s: %w", l.Attrs().OperState, ctx.Err())
		case <-tick.C:
		}
	}
}

// uplink returns the node's uplink, (re)creating the veth pair unless both
// ends are in place: the node end in the node namespace, its peer in the
// underlay under the expected name and plugged into the subnet's bridge.
func (b *builder) uplink(h *netlink.Handle, nodeNs netns.NsHandle, n *NodeInfo) (netlink.Link, error) {
	up, port, br, err := b.uplinkEnds(h, n)
	if err != nil {
		return nil, err
	}
	if up != nil && port != nil {
		paired, err := b.paired(up, port, nodeNs)
		if err != nil {
			return nil, err
		}
		if paired {
			if err := b.tidyPair(h, up, port, br, n); err != nil {
				return nil, err
			}
			return up, nil
		}
	}
	// Something is missing or wrong: both namespaces are the lab's, so
	// start this pair over rather than repair it piecemeal.
	if err := b.deleteStalePair(h, up, port, n); err != nil {
		return nil, err
	}
	return b.createPair(h, nodeNs, br, n)
}

// uplinkEnds looks up the node's uplink and its underlay port, either of
// which may be missing (nil), and the subnet's bridge, which must exist.
func (b *builder) uplinkEnds(h *netlink.Handle, n *NodeInfo) (up, port, br netlink.Link, err error) {
	up, err = h.LinkByName(n.Uplink)
	if err != nil && !isNotFound(err) {
		return nil, nil, nil, fmt.Errorf("look up: %w", err)
	}
	port, err = b.ul.LinkByName(n.Port)
	if err != nil && !isNotFound(err) {
		return nil, nil, nil, fmt.Errorf("look up underlay port %s: %w", n.Port, err)
	}
	br, err = b.ul.LinkByName(n.Bridge)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("look up bridge %s: %w", n.Bridge, err)
	}
	return up, port, br, nil
}

// tidyPair brings an existing, correctly paired uplink and port back to
// their MTU, MACs, bridge, alias and state.
func (b *builder) tidyPair(h *netlink.Handle, up, port, br netlink.Link, n *NodeInfo) error {
	if err := b.mtu(h, up, n.Netns); err != nil {
		return err
	}
	if err := b.mtu(b.ul, port, b.info.Underlay); err != nil {
		return err
	}
	if err := b.mac(h, up, n.MAC, n.Netns); err != nil {
		return err
	}
	if err := b.mac(b.ul, port, macFor("port", n.Name), b.info.Underlay); err != nil {
		return err
	}
	if port.Attrs().MasterIndex != br.Attrs().Index {
		if err := b.ul.LinkSetMaster(port, br); err != nil {
			return fmt.Errorf("plug %s into %s: %w", n.Port, n.Bridge, err)
		}
		b.changed("plugged %s into %s in %s", n.Port, n.Bridge, b.info.Underlay)
	}
	if err := b.alias(b.ul, port, "nrlab node "+n.Name); err != nil {
		return err
	}
	return b.up(b.ul, port, b.info.Underlay)
}

// deleteStalePair deletes whichever ends of a broken pair exist.
func (b *builder) deleteStalePair(h *netlink.Handle, up, port netlink.Link, n *NodeInfo) error {
	if up != nil {
		if err := h.LinkDel(up); err != nil {
			return fmt.Errorf("delete stale %s: %w", n.Uplink, err)
		}
		b.changed("deleted stale %s in %s", n.Uplink, n.Netns)
	}
	if port != nil {
		// Deleting the uplink may already have taken its peer along.
		if err := b.ul.LinkDel(port); err != nil && !errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("delete stale %s: %w", n.Port, err)
		}
		b.changed("deleted stale %s in %s", n.Port, b.info.Underlay)
	}
	return nil
}

// createPair creates the veth pair, the port in the underlay plugged into
// br and its peer, the uplink, in the node namespace, and returns the
// uplink.
func (b *builder) createPair(h *netlink.Handle, nodeNs netns.NsHandle, br netlink.Link, n *NodeInfo) (netlink.Link, error) {
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{
			Name:         n.Port,
			MTU:          uplinkMTU,
			HardwareAddr: macFor("port", n.Name),
			MasterIndex:  br.Attrs().Index,
			Alias:        "nrlab node " + n.Name,
		},
		PeerName:         n.Uplink,
		PeerMTU:          uplinkMTU,
		PeerHardwareAddr: n.MAC,
		PeerNamespace:    netlink.NsFd(int(nodeNs)),
	}
	if err := b.ul.LinkAdd(veth); err != nil {
		return nil, err
	}
	b.changed("created veth %s in %s, peer %s in %s", n.Port, b.info.Underlay, n.Uplink, n.Netns)
	port, err := b.ul.LinkByName(n.Port)
	if err != nil {
		return nil, fmt.Errorf("look up underlay port %s: %w", n.Port, err)
	}
	if err := b.up(b.ul, port, b.info.Underlay); err != nil {
		return nil, err
	}
	up, err := h.LinkByName(n.Uplink)
	if err != nil {
		return nil, fmt.Errorf("look up: %w", err)
	}
	return up, nil
}

// paired reports whether up (in the node namespace) and port (in the
// underlay) are the two ends of one veth. Ifindexes alone could match by
// chance, so the peer's namespace id must also be the node namespace.
func (b *builder) paired(up, port netlink.Link, nodeNs netns.NsHandle) (bool, error) {
	if _, ok := up.(*netlink.Veth); !ok {
		return false, nil
	}
	if _, ok := port.(*netlink.Veth); !ok {
		return false, nil
	}
	if port.Attrs().ParentIndex != up.Attrs().Index || up.Attrs().ParentIndex != port.Attrs().Index {
		return false, nil
	}
	id, err := b.ul.GetNetNsIdByFd(int(nodeNs))
	if err != nil {
		return false, fmt.Errorf("get nsid of node netns: %w", err)
	}
	return id >= 0 && port.Attrs().NetNsID == id, nil
}

func (b *builder) defaultRoute(h *netlink.Handle, uplink netlink.Link, n *NodeInfo) error {
	family := netlink.FAMILY_V4
	if n.Router.Is6() {
		family = netlink.FAMILY_V6
	}
	routes, err := listRetry(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	gw := net.IP(n.Router.AsSlice())
	var defaults []netlink.Route
	for _, rt := range routes {
		if rt.Dst == nil || isZeroPrefix(rt.Dst) {
			defaults = append(defaults, rt)
		}
	}
	if len(defaults) == 1 && defaults[0].LinkIndex == uplink.Attrs().Index && defaults[0].Gw.Equal(gw) {
		return nil
	}
	for _, rt := range defaults {
		if err := h.RouteDel(&rt); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("delete stale default route: %w", err)
		}
		b.changed("deleted default route via %s in %s", rt.Gw, n.Netns)
	}
	rt := &netlink.Route{
		LinkIndex: uplink.Attrs().Index,
		Gw:        gw,
		Family:    family,
		Table:     unix.RT_TABLE_MAIN,
		Protocol:  unix.RTPROT_STATIC,
	}
	if err := h.RouteAdd(rt); err != nil {
		return err
	}
	b.changed("added default route via %s dev %s in %s", n.Router, n.Uplink, n.Netns)
	return nil
}

// pruneUnderlay deletes bridges and ports of the lab's naming scheme that
// the layout no longer has, e.g. after a node moved to another subnet.
func (b *builder) pruneUnderlay() error {
	want := map[string]bool{}
	for _, s := range b.all.Subnets {
		want[s.Bridge] = true
	}
	for _, n := range b.all.Nodes {
		want[n.Port] = true
	}
	links, err := listRetry(b.ul.LinkList)
	if err != nil {
		return b.ulErr("list links", err)
	}
	// Ports first: a bridge's deletion would only unplug them.
	slices.SortStableFunc(links, func(x, y netlink.Link) int {
		_, xb := x.(*netlink.Bridge)
		_, yb := y.(*netlink.Bridge)
		switch {
		case xb == yb:
			return 0
		case yb:
			return -1
		default:
			return 1
		}
	})
	for _, l := range links {
		name := l.Attrs().Name
		_, isBridge := l.(*netlink.Bridge)
		_, isVeth := l.(*netlink.Veth)
		ours := (isBridge && strings.HasPrefix(name, bridgePrefix)) || (isVeth && strings.HasPrefix(name, portPrefix))
		if !ours || want[name] {
			continue
		}
		if err := b.ul.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			return b.ulErr("delete unused "+name, err)
		}
		b.changed("deleted unused %s %s in %s", l.Type(), name, b.info.Underlay)
	}
	return nil
}

func (b *builder) loUp(h *netlink.Handle, ns string) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	return b.up(h, lo, ns)
}

func (b *builder) up(h *netlink.Handle, l netlink.Link, ns string) error {
	if l.Attrs().Flags&net.FlagUp != 0 {
		return nil
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", l.Attrs().Name, err)
	}
	b.changed("set %s up in %s", l.Attrs().Name, ns)
	return nil
}

func (b *builder) mtu(h *netlink.Handle, l netlink.Link, ns string) error {
	if l.Attrs().MTU == uplinkMTU {
		return nil
	}
	if err := h.LinkSetMTU(l, uplinkMTU); err != nil {
		return fmt.Errorf("set mtu of %s: %w", l.Attrs().Name, err)
	}
	b.changed("set mtu %d on %s in %s", uplinkMTU, l.Attrs().Name, ns)
	return nil
}

func (b *builder) mac(h *netlink.Handle, l netlink.Link, mac net.HardwareAddr, ns string) error {
	if bytes.Equal(l.Attrs().HardwareAddr, mac) {
		return nil
	}
	if err := h.LinkSetHardwareAddr(l, mac); err != nil {
		return fmt.Errorf("set mac of %s: %w", l.Attrs().Name, err)
	}
	b.changed("set mac %s on %s in %s", mac, l.Attrs().Name, ns)
	return nil
}

func (b *builder) alias(h *netlink.Handle, l netlink.Link, alias string) error {
	if l.Attrs().Alias == alias {
		return nil
	}
	if err := h.LinkSetAlias(l, alias); err != nil {
		return fmt.Errorf("set alias of %s: %w", l.Attrs().Name, err)
	}
	return nil
}

// onlyAddr makes want the only address of its family on l, apart from
// IPv6 link-local addresses, which the kernel manages.
func (b *builder) onlyAddr(h *netlink.Handle, l netlink.Link, want netip.Prefix, ns string) error {
	family := netlink.FAMILY_V4
	if want.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := listRetry(func() ([]netlink.Addr, error) { return h.AddrList(l, family) })
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", l.Attrs().Name, err)
	}
	found := false
	for _, a := range addrs {
		p, ok := toPrefix(a.IPNet)
		if ok && p == want {
			found = true
			continue
		}
		if ok && p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() {
			continue
		}
		if err := h.AddrDel(l, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("delete stale address %s from %s: %w", a.IPNet, l.Attrs().Name, err)
		}
		b.changed("deleted address %s from %s in %s", a.IPNet, l.Attrs().Name, ns)
	}
	if found {
		return nil
	}
	a := &netlink.Addr{IPNet: &net.IPNet{
		IP:   want.Addr().AsSlice(),
		Mask: net.CIDRMask(want.Bits(), want.Addr().BitLen()),
	}}
	if want.Addr().Is6() {
		// No duplicate address detection: the lab is the only one
		// numbering this segment, and DAD would hold the address back.
		a.Flags = unix.IFA_F_NODAD
	}
	if err := h.AddrAdd(l, a); err != nil {
		return fmt.Errorf("add %s to %s: %w", want, l.Attrs().Name, err)
	}
	b.changed("added address %s to %s in %s", want, l.Attrs().Name, ns)
	return nil
}

// ensureNetns creates the named namespace unless it exists, and reports
// whether it did. A leftover file of that name that is not a namespace
// (an interrupted `ip netns add`) is replaced: the name is the lab's.
func ensureNetns(name string) (bool, error) {
	if h, err := nsutil.Open(name); err == nil {
		isNs := isNetnsHandle(h)
		h.Close()
		if isNs {
			return false, nil
		}
		if err := nsutil.Delete(name); err != nil {
			return false, err
		}
	} else if _, serr := os.Lstat(nsutil.Path(name)); serr == nil {
		if err := nsutil.Delete(name); err != nil {
			return false, err
		}
	}
	if err := nsutil.Create(name); err != nil {
		return false, err
	}
	return true, nil
}

func isNetnsHandle(h netns.NsHandle) bool {
	var st unix.Statfs_t
	return unix.Fstatfs(int(h), &st) == nil && st.Type == unix.NSFS_MAGIC
}

// listRetry retries a netlink dump that the kernel interrupted (the
// object set changed meanwhile), as its results may be inconsistent.
func listRetry[T any](dump func() ([]T, error)) ([]T, error) {
	var err error
	for range 5 {
		var out []T
		out, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return nil, err
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

func isZeroPrefix(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0 && n.IP.IsUnspecified()
}

func toPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits == 32 {
		a = a.Unmap()
	}
	return netip.PrefixFrom(a, ones), true
}
