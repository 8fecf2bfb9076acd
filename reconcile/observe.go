package reconcile

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/state"
)

// Observed is what one observation pass saw on the node: the objects
// netreconcile owns, the foreign objects a desired one could clash with,
// and facts about the uplink. Its JSON form is `show -o json` and the
// input of `plan --observed`.
type Observed struct {
	Node    string       `json:"node"`
	Uplink  Uplink       `json:"uplink"`
	Owned   *state.State `json:"owned"`
	Foreign Foreign      `json:"foreign"`
}

// Uplink describes the node's uplink as found in the node namespace.
type Uplink struct {
	Name  string         `json:"name"`
	Found bool           `json:"found"`
	Index int            `json:"index,omitempty"`
	MTU   int            `json:"mtu,omitempty"`
	Addrs []netip.Prefix `json:"addresses,omitempty"`
}

// Foreign lists objects that are not netreconcile's, by the keys desired
// objects would have.
type Foreign struct {
	Links  map[string]string `json:"links,omitempty"`     // link key -> type
	Addrs  map[string]string `json:"addresses,omitempty"` // ns/ip -> link key
	Routes map[string]int    `json:"routes,omitempty"`    // route key -> protocol
	Netns  map[string]bool   `json:"netns,omitempty"`     // existing namespaces the file names, not created by us
}

func newObserved(node string) *Observed {
	return &Observed{Node: node, Owned: state.New(), Foreign: Foreign{
		Links: map[string]string{}, Addrs: map[string]string{}, Routes: map[string]int{}, Netns: map[string]bool{},
	}}
}

func addrKey(ns string, ip netip.Addr) string { return nsLabel(ns) + "/" + ip.String() }

// podEnd is the pod side of a veth as seen inside the pod namespace.
type podEnd struct {
	ns    string
	name  string
	index int
	mtu   int
	up    bool
	mac   string
}

// observer holds one pass's handles and intermediate facts.
type observer struct {
	cfg  *Config
	h    *handles
	obs  *Observed
	ends map[string]podEnd // "nsid/ifindex" as seen from the node -> pod end
}

// Observe reads the node's state: the node namespace and every pod
// namespace that the desired state names or that netreconcile recorded
// as its own. One dump per object kind per namespace.
func Observe(cfg *Config, desired *state.State) (*Observed, error) {
	h := newHandles(cfg.NodeNetns)
	defer h.Close()
	o := &observer{cfg: cfg, h: h, obs: newObserved(cfg.Node), ends: map[string]podEnd{}}
	if err := o.namespaces(desired); err != nil {
		return nil, err
	}
	if err := o.node(desired); err != nil {
		return nil, err
	}
	return o.obs, nil
}

// namespaces observes pod namespaces first, so that node veths can be
// matched to their peers.
func (o *observer) namespaces(desired *state.State) error {
	owned, err := o.cfg.ownedNetns()
	if err != nil {
		return err
	}
	refs := map[string]bool{}
	for _, obj := range desired.Of(state.KindNetns) {
		refs[obj.Key()] = true
	}
	for ref := range owned {
		refs[ref] = true
	}
	nodeH, err := o.h.get(state.NodeNS)
	if err != nil {
		return err
	}
	for ref := range refs {
		fd, err := nsutil.Open(ref)
		if err != nil {
			continue // absent: desired creates it, or a recorded one was removed by hand
		}
		nsid, _ := nodeH.GetNetNsIdByFd(int(fd))
		fd.Close()
		if owner, ok := owned[ref]; ok {
			o.obs.Owned.Put(&state.Netns{Ref: ref, Owned: true, OwnerK: owner})
		} else {
			o.obs.Foreign.Netns[ref] = true
		}
		if err := o.pod(ref, nsid); err != nil {
			return err
		}
	}
	return nil
}

// pod observes one pod namespace.
func (o *observer) pod(ns string, nsid int) error {
	h, err := o.h.get(ns)
	if err != nil {
		return err
	}
	defer o.h.forget(ns)
	links, err := retryDump(h.LinkList)
	if err != nil {
		return fmt.Errorf("list links in netns %q: %w", ns, err)
	}
	byIndex, ours := o.links(ns, links)
	for _, l := range links {
		a := l.Attrs()
		if !ours[a.Index] || l.Type() != "veth" {
			continue
		}
		o.ends[fmt.Sprintf("%d/%d", nsid, a.Index)] = podEnd{ns: ns, name: a.Name, index: a.Index, mtu: a.MTU,
			up: a.Flags&net.FlagUp != 0, mac: a.HardwareAddr.String()}
	}
	return o.rest(ns, h, byIndex, ours)
}

// links sorts a namespace's links into owned objects (except veth pod
// ends, which belong to their host end) and foreign names.
func (o *observer) links(ns string, links []netlink.Link) (map[int]string, map[int]bool) {
	byIndex := map[int]string{}
	ours := map[int]bool{}
	for _, l := range links {
		byIndex[l.Attrs().Index] = l.Attrs().Name
	}
	for _, l := range links {
		a := l.Attrs()
		if _, ok := state.OwnerOf(o.cfg.Node, a.Alias); !ok {
			o.obs.Foreign.Links[state.LinkKey(ns, a.Name)] = l.Type()
			continue
		}
		ours[a.Index] = true
		if ns != state.NodeNS && l.Type() == "veth" {
			continue
		}
		o.obs.Owned.Put(linkObject(ns, l, byIndex))
	}
	return byIndex, ours
}

// linkObject copies the attributes netreconcile sets from a netlink link.
func linkObject(ns string, l netlink.Link, byIndex map[int]string) *state.Link {
	a := l.Attrs()
	s := &state.Link{NS: ns, Name: a.Name, Type: l.Type(), Alias: a.Alias, MTU: a.MTU,
		Up: a.Flags&net.FlagUp != 0, Index: a.Index}
	if a.MasterIndex != 0 {
		s.Master = byIndex[a.MasterIndex]
	}
	if a.HardwareAddr != nil {
		s.HWAddr = a.HardwareAddr.String()
	}
	switch v := l.(type) {
	case *netlink.Macvlan:
		s.Mode = macvlanModes[v.Mode]
	case *netlink.IPVlan:
		s.Mode = ipvlanModes[v.Mode]
	case *netlink.Vxlan:
		s.VNI, s.Port, s.Learning = v.VxlanId, v.Port, v.Learning
		if ip, ok := netip.AddrFromSlice(v.SrcAddr); ok {
			s.Local = ip.Unmap()
		}
		if v.VtepDevIndex != 0 {
			s.Parent = byIndex[v.VtepDevIndex]
		}
	}
	return s
}

var macvlanModes = map[netlink.MacvlanMode]string{
	netlink.MACVLAN_MODE_BRIDGE: "bridge", netlink.MACVLAN_MODE_PRIVATE: "private",
	netlink.MACVLAN_MODE_VEPA: "vepa", netlink.MACVLAN_MODE_PASSTHRU: "passthru",
}

var ipvlanModes = map[netlink.IPVlanMode]string{
	netlink.IPVLAN_MODE_L2: "l2", netlink.IPVLAN_MODE_L3: "l3", netlink.IPVLAN_MODE_L3S: "l3s",
}

// rest observes addresses, routes and neighbours of namespace ns.
func (o *observer) rest(ns string, h *netlink.Handle, byIndex map[int]string, ours map[int]bool) error {
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("list addresses in netns %q: %w", nsLabel(ns), err)
	}
	owners := o.owners(ns)
	for _, a := range addrs {
		p, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		p = p.Unmap()
		bits, _ := a.Mask.Size()
		link := byIndex[a.LinkIndex]
		if ns == state.NodeNS && link == o.cfg.Uplink {
			o.obs.Uplink.Addrs = append(o.obs.Uplink.Addrs, netip.PrefixFrom(p, bits))
		}
		if !ours[a.LinkIndex] {
			o.obs.Foreign.Addrs[addrKey(ns, p)] = state.LinkKey(ns, link)
			continue
		}
		o.obs.Owned.Put(&state.Addr{NS: ns, Link: link, Prefix: netip.PrefixFrom(p, bits), OwnerK: owners[link]})
	}
	routes, err := retryDump(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return fmt.Errorf("list routes in netns %q: %w", nsLabel(ns), err)
	}
	for _, r := range routes {
		obj := routeObject(ns, r, byIndex)
		if int(r.Protocol) != state.RouteProtocol {
			if r.Protocol != unix.RTPROT_KERNEL { // connected routes follow addresses
				o.obs.Foreign.Routes[obj.Key()] = int(r.Protocol)
			}
			continue
		}
		obj.OwnerK = owners[obj.Dev]
		o.obs.Owned.Put(obj)
	}
	neighs, err := retryDump(func() ([]netlink.Neigh, error) { return h.NeighList(0, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("list neighbours in netns %q: %w", nsLabel(ns), err)
	}
	for _, n := range neighs {
		if !ours[n.LinkIndex] || n.State&netlink.NUD_PERMANENT == 0 || n.HardwareAddr == nil {
			continue
		}
		ip, _ := netip.AddrFromSlice(n.IP)
		link := byIndex[n.LinkIndex]
		o.obs.Owned.Put(&state.Neigh{NS: ns, Link: link, IP: ip.Unmap(), MAC: n.HardwareAddr.String(), OwnerK: owners[link]})
	}
	for idx := range ours {
		l, _ := o.obs.Owned.Get(state.KindLink, state.LinkKey(ns, byIndex[idx])).(*state.Link)
		if l == nil || l.Type != "vxlan" {
			continue
		}
		fdb, err := retryDump(func() ([]netlink.Neigh, error) { return h.NeighList(idx, unix.AF_BRIDGE) })
		if err != nil {
			return fmt.Errorf("list fdb of %s: %w", l, err)
		}
		for _, n := range fdb {
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok || n.HardwareAddr == nil || n.State&netlink.NUD_PERMANENT == 0 {
				continue
			}
			o.obs.Owned.Put(&state.Neigh{NS: ns, Link: l.Name, IP: ip.Unmap(), MAC: n.HardwareAddr.String(),
				Bridge: true, OwnerK: l.Owner()})
		}
	}
	return nil
}

// owners maps link names of ns to the owner recorded in their alias.
func (o *observer) owners(ns string) map[string]string {
	m := map[string]string{}
	for _, obj := range o.obs.Owned.Of(state.KindLink) {
		if l := obj.(*state.Link); l.NS == ns {
			m[l.Name] = l.Owner()
		}
	}
	for _, e := range o.ends {
		if e.ns == ns {
			// pod ends are not objects; their owner is their alias's,
			// filled in by the caller when the host end is matched.
			m[e.name] = ""
		}
	}
	return m
}

func routeObject(ns string, r netlink.Route, byIndex map[int]string) *state.Route {
	obj := &state.Route{NS: ns, Dev: byIndex[r.LinkIndex], MTU: r.MTU, Scope: "global"}
	if r.Dst == nil {
		obj.Dst = netip.MustParsePrefix("0.0.0.0/0")
	} else if ip, ok := netip.AddrFromSlice(r.Dst.IP); ok {
		bits, _ := r.Dst.Mask.Size()
		obj.Dst = netip.PrefixFrom(ip.Unmap(), bits)
	}
	if ip, ok := netip.AddrFromSlice(r.Gw); ok {
		obj.Gw = ip.Unmap()
	}
	if ip, ok := netip.AddrFromSlice(r.Src); ok {
		obj.Src = ip.Unmap()
	}
	obj.OnLink = r.Flags&unix.RTNH_F_ONLINK != 0
	if r.Scope == netlink.SCOPE_LINK {
		obj.Scope = "link"
	}
	return obj
}

// node observes the node namespace, its sysctls, and matches host veth
// ends to the pod ends seen before.
func (o *observer) node(desired *state.State) error {
	h, err := o.h.get(state.NodeNS)
	if err != nil {
		return err
	}
	links, err := retryDump(h.LinkList)
	if err != nil {
		return fmt.Errorf("list links in node netns: %w", err)
	}
	byIndex, ours := o.links(state.NodeNS, links)
	o.obs.Uplink.Name = o.cfg.Uplink
	for _, l := range links {
		a := l.Attrs()
		if a.Name == o.cfg.Uplink {
			o.obs.Uplink.Found, o.obs.Uplink.Index, o.obs.Uplink.MTU = true, a.Index, a.MTU
		}
		if !ours[a.Index] || l.Type() != "veth" {
			continue
		}
		obj := o.obs.Owned.Get(state.KindLink, state.LinkKey(state.NodeNS, a.Name)).(*state.Link)
		obj.PeerNS, obj.PeerName = "?", "?"
		end, ok := o.ends[fmt.Sprintf("%d/%d", a.NetNsID, a.ParentIndex)]
		if !ok {
			continue
		}
		obj.PeerNS, obj.PeerName, obj.PeerMAC = end.ns, end.name, end.mac
		obj.Up = obj.Up && end.up
		if end.mtu != obj.MTU {
			obj.MTU = 0 // the ends disagree: an update sets both
		}
		o.fixPodOwners(end.ns, end.name, obj.Owner())
	}
	if err := o.proxyARP(); err != nil {
		return err
	}
	if err := o.rest(state.NodeNS, h, byIndex, ours); err != nil {
		return err
	}
	return o.sysctls(desired)
}

// fixPodOwners gives the pod-side objects on a veth end the owner of the
// host end, for grouping in the plan.
func (o *observer) fixPodOwners(ns, link, owner string) {
	for _, k := range []state.Kind{state.KindAddr, state.KindNeigh, state.KindRoute} {
		for _, obj := range o.obs.Owned.Of(k) {
			switch v := obj.(type) {
			case *state.Addr:
				if v.NS == ns && v.Link == link {
					v.OwnerK = owner
				}
			case *state.Neigh:
				if v.NS == ns && v.Link == link {
					v.OwnerK = owner
				}
			case *state.Route:
				if v.NS == ns && v.Dev == link {
					v.OwnerK = owner
				}
			}
		}
	}
}

// proxyARP reads proxy_arp of owned node links in one namespace switch.
func (o *observer) proxyARP() error {
	var links []*state.Link
	for _, obj := range o.obs.Owned.Of(state.KindLink) {
		if l := obj.(*state.Link); l.NS == state.NodeNS && (l.Type == "veth" || l.Type == "bridge") {
			links = append(links, l)
		}
	}
	if len(links) == 0 {
		return nil
	}
	return nsutil.Do(o.cfg.NodeNetns, func() error {
		for _, l := range links {
			arp, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + l.Name + "/proxy_arp")
			if err != nil {
				return fmt.Errorf("read proxy_arp of %s: %w", l, err)
			}
			delay, err := os.ReadFile("/proc/sys/net/ipv4/neigh/" + l.Name + "/proxy_delay")
			if err != nil {
				return fmt.Errorf("read proxy_delay of %s: %w", l, err)
			}
			l.ProxyARP = strings.TrimSpace(string(arp)) == "1" && strings.TrimSpace(string(delay)) == "0"
		}
		return nil
	})
}

// sysctls reads the node sysctls that are desired or that netreconcile
// changed before (recorded with their original value).
func (o *observer) sysctls(desired *state.State) error {
	names := map[string]string{}
	for _, obj := range desired.Of(state.KindSysctl) {
		s := obj.(*state.Sysctl)
		names[s.Name] = s.Owner()
	}
	recorded, err := o.cfg.recordedSysctls()
	if err != nil {
		return err
	}
	for name := range recorded {
		if _, ok := names[name]; !ok {
			names[name] = "node"
		}
	}
	for name, owner := range names {
		v, err := nsutil.ReadSysctl(o.cfg.NodeNetns, name)
		if err != nil {
			return err
		}
		o.obs.Owned.Put(&state.Sysctl{NS: state.NodeNS, Name: name, Value: v, OwnerK: owner})
	}
	return nil
}

// ownedNetns lists the namespaces recorded as created by netreconcile,
// with the owner each record names.
func (c *Config) ownedNetns() (map[string]string, error) {
	dir := filepath.Join(c.nodeStateDir(), "netns")
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("read state %s: %w", dir, err)
	}
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read state %s: %w", e.Name(), err)
		}
		out[e.Name()] = strings.TrimSpace(string(b))
	}
	return out, nil
}

// recordedSysctls returns sysctls changed by netreconcile and their
// original values.
func (c *Config) recordedSysctls() (map[string]string, error) {
	dir := filepath.Join(c.nodeStateDir(), "sysctl")
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("read state %s: %w", dir, err)
	}
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read state %s: %w", e.Name(), err)
		}
		out[strings.ReplaceAll(e.Name(), ".", "/")] = strings.TrimSpace(string(b))
	}
	return out, nil
}
