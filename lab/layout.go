package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/netreconcile/netreconcile/spec"
)

// Name prefixes of everything the lab creates. Namespaces carry Prefix so
// that `ip netns list` shows at a glance what belongs to a lab.
const (
	Prefix         = "nrlab-"    // node namespaces: Prefix + node name
	UnderlayPrefix = "nrlab-ul-" // the underlay namespace: UnderlayPrefix + hash
	bridgePrefix   = "br-"       // underlay bridges: bridgePrefix + hash of the subnet
	portPrefix     = "u"         // underlay end of a node's uplink: portPrefix + hash of the node
	defaultUplink  = "eth0"
	uplinkMTU      = 1500
	maxIfNameLen   = 15 // IFNAMSIZ - 1
)

var (
	// ErrInvalid marks a topology the lab cannot build (no nodes, clashing
	// addresses, overlapping subnets, no room for a router address). It is
	// reported before anything in the kernel changes.
	ErrInvalid = errors.New("invalid lab topology")
	// ErrUnknownNode: a node asked for (--nodes) is not in the file.
	ErrUnknownNode = errors.New("no such node in the file")
)

// Error is a failure concerning one lab object. Its text names the object
// and the step, then the cause: `lab: node "a": create uplink "eth0": ...`.
type Error struct {
	Object string // e.g. `node "a"`, `underlay "nrlab-ul-0a1b2c3d"`, `subnet 172.31.1.0/24`
	Op     string // the step that failed, e.g. `create uplink "eth0"`
	Err    error
}

func (e *Error) Error() string {
	if e.Op == "" {
		return "lab: " + e.Object + ": " + e.Err.Error()
	}
	return "lab: " + e.Object + ": " + e.Op + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func nodeErr(node, op string, err error) error {
	return &Error{Object: fmt.Sprintf("node %q", node), Op: op, Err: err}
}

// Names names a lab's namespaces. The zero value gives the default names
// (nrlab-<node>, nrlab-ul-<hash>, pods' own); with a Prefix P every
// namespace the lab makes carries it (P-<node>, P-ul-<hash>, and P-<netns>
// for every pod), so that labs of files with equal node or pod names
// coexist on one machine.
type Names struct{ Prefix string }

// NodeNetns is the name of the namespace that plays node's host namespace.
func NodeNetns(node string) string { return Names{}.NodeNetns(node) }

// UnderlayNetns is Names{}.UnderlayNetns.
func UnderlayNetns(r *spec.Resolved) string { return Names{}.UnderlayNetns(r) }

// NodeNetns is the name of the namespace that plays node's host namespace.
func (n Names) NodeNetns(node string) string {
	if n.Prefix == "" {
		return Prefix + node
	}
	return n.Prefix + "-" + node
}

// UnderlayNetns is the name of the underlay namespace of r. It depends on
// the set of node names only, so labs of different topologies (such as
// parallel tests with unique node names) never share an underlay, while
// changing addresses in the file keeps the same one.
func (n Names) UnderlayNetns(r *spec.Resolved) string {
	names := make([]string, len(r.Nodes))
	for i, nd := range r.Nodes {
		names[i] = nd.Name
	}
	slices.Sort(names)
	p := UnderlayPrefix
	if n.Prefix != "" {
		p = n.Prefix + "-ul-"
	}
	return p + shortHash(strings.Join(names, "\n"))
}

// Pods returns r with every pod's namespace name prefixed (absolute
// paths are the user's and stay); r itself when there is no prefix.
func (n Names) Pods(r *spec.Resolved) *spec.Resolved {
	if n.Prefix == "" || r == nil {
		return r
	}
	out := *r
	out.Pods = slices.Clone(r.Pods)
	for i := range out.Pods {
		if !strings.HasPrefix(out.Pods[i].Netns, "/") {
			out.Pods[i].Netns = n.Prefix + "-" + out.Pods[i].Netns
		}
	}
	return &out
}

// CheckPrefix checks a --prefix: a short plain name, so that every name it
// starts is a valid namespace name.
func CheckPrefix(p string) error {
	if len(p) > 16 {
		return fmt.Errorf("lab prefix %q: at most 16 characters", p)
	}
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') || p[0] == '-' {
			return fmt.Errorf("lab prefix %q: lowercase letters, digits and '-' only, not starting with '-'", p)
		}
	}
	return nil
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:8]
}

// bridgeName names the underlay bridge of subnet p. Hashing keeps it under
// IFNAMSIZ for any prefix, IPv6 included.
func bridgeName(p netip.Prefix) string { return bridgePrefix + shortHash("subnet "+p.String()) }

// portName names the underlay end of node's uplink veth.
func portName(node string) string { return portPrefix + shortHash("node " + node)[:8] }

// macFor derives a stable, locally administered unicast MAC address from
// an object's identity. Stable MACs let Build recreate a device without
// leaving stale entries in the other nodes' neighbour caches (they would
// black-hole traffic for many seconds), and make captures readable.
func macFor(kind, name string) net.HardwareAddr {
	sum := sha256.Sum256([]byte("mac " + kind + " " + name))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&0xfe | 0x02
	return mac
}

// Info describes a lab: what Build created or found, for printing and for
// tests that need the names.
type Info struct {
	Underlay string       // underlay namespace
	Subnets  []SubnetInfo // sorted by prefix
	Nodes    []NodeInfo   // in the order of spec.Resolved.Nodes (sorted by name)

	// Changes lists what Build changed in the kernel, one line each, in
	// order. It is empty when the lab was already complete.
	Changes []string
}

// SubnetInfo is one underlay L2 segment.
type SubnetInfo struct {
	Prefix netip.Prefix // the nodes' subnet (node address, masked)
	Bridge string       // bridge in the underlay namespace
	Router netip.Addr   // address of the bridge: the nodes' default gateway
	MAC    net.HardwareAddr
}

// NodeInfo is one simulated node.
type NodeInfo struct {
	Name    string
	Netns   string           // the node's host namespace (NodeNetns)
	Uplink  string           // uplink name inside Netns
	Address netip.Prefix     // on the uplink
	MAC     net.HardwareAddr // of the uplink
	Router  netip.Addr       // default gateway of the node
	Bridge  string           // underlay bridge the uplink is plugged into
	Port    string           // underlay end of the uplink veth
}

// Node returns the node called name, or nil.
func (in *Info) Node(name string) *NodeInfo {
	for i := range in.Nodes {
		if in.Nodes[i].Name == name {
			return &in.Nodes[i]
		}
	}
	return nil
}

// only returns the lab of the nodes named (in's own order) and their
// subnets; in itself for none.
func (in *Info) only(nodes []string) (*Info, error) {
	if len(nodes) == 0 {
		return in, nil
	}
	out := &Info{Underlay: in.Underlay}
	bridges := map[string]bool{}
	for _, n := range in.Nodes {
		if slices.Contains(nodes, n.Name) {
			out.Nodes = append(out.Nodes, n)
			bridges[n.Bridge] = true
		}
	}
	if unknown := missing(nodes, func(name string) bool { return in.Node(name) != nil }); len(unknown) > 0 {
		return nil, &Error{Object: "topology", Err: fmt.Errorf("%w: %w", ErrInvalid, unknownNodes(unknown))}
	}
	for _, s := range in.Subnets {
		if bridges[s.Bridge] {
			out.Subnets = append(out.Subnets, s)
		}
	}
	return out, nil
}

// CheckNodes checks that every name of nodes is a node of r (for
// --nodes): an error wrapping ErrUnknownNode names those that are not.
func CheckNodes(r *spec.Resolved, nodes []string) error {
	if unknown := missing(nodes, func(name string) bool { return r.Node(name) != nil }); len(unknown) > 0 {
		return unknownNodes(unknown)
	}
	return nil
}

// missing lists the names for which known is false.
func missing(names []string, known func(string) bool) []string {
	var out []string
	for _, name := range names {
		if !known(name) {
			out = append(out, fmt.Sprintf("%q", name))
		}
	}
	return out
}

func unknownNodes(names []string) error {
	return fmt.Errorf("%s: %w", strings.Join(names, ", "), ErrUnknownNode)
}

// String renders the lab as a short human-readable table.
func (in *Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "underlay netns %s\n", in.Underlay)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, s := range in.Subnets {
		fmt.Fprintf(tw, "  subnet %s\tbridge %s\trouter %s\n", s.Prefix, s.Bridge, s.Router)
	}
	tw.Flush()
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tNETNS\tUPLINK\tADDRESS\tROUTER")
	for _, n := range in.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Name, n.Netns, n.Uplink, n.Address, n.Router)
	}
	tw.Flush()
	return b.String()
}

// Layout computes the lab of r without touching the kernel: names,
// subnets and router addresses. Build uses it first, so every error it
// reports (all at once, each wrapping ErrInvalid) comes before any change.
func Layout(r *spec.Resolved) (*Info, error) { return Names{}.Layout(r) }

// Layout is the package's Layout with n's names.
func (n Names) Layout(r *spec.Resolved) (*Info, error) {
	if r == nil || len(r.Nodes) == 0 {
		return nil, &Error{Object: "topology", Err: fmt.Errorf("%w: no nodes", ErrInvalid)}
	}
	c := &layoutChecker{
		byAddr:   map[netip.Addr]string{},
		subnetOf: map[netip.Prefix]string{},
		ports:    map[string]string{},
		names:    map[string]bool{},
	}
	for _, nd := range r.Nodes {
		c.node(nd)
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	in := &Info{Underlay: n.UnderlayNetns(r)}
	routers, err := c.routers(in)
	if err != nil {
		return nil, err
	}
	for _, nd := range r.Nodes {
		si := routers[nd.Address.Masked()]
		in.Nodes = append(in.Nodes, NodeInfo{
			Name:    nd.Name,
			Netns:   n.NodeNetns(nd.Name),
			Uplink:  uplinkOf(nd),
			Address: nd.Address,
			MAC:     macFor("node", nd.Name),
			Router:  si.Router,
			Bridge:  si.Bridge,
			Port:    portName(nd.Name),
		})
	}
	return in, nil
}

// uplinkOf is the name of n's uplink, defaulted.
func uplinkOf(n spec.ResolvedNode) string {
	if n.Uplink == "" {
		return defaultUplink
	}
	return n.Uplink
}

// layoutChecker collects what Layout's checks have seen so far: node
// names, addresses, underlay ports and subnets, and every error.
type layoutChecker struct {
	errs     []error
	byAddr   map[netip.Addr]string
	subnetOf map[netip.Prefix]string // subnet -> first node in it, for messages
	ports    map[string]string
	names    map[string]bool
	subnets  []netip.Prefix
}

func (c *layoutChecker) bad(node string, format string, args ...any) {
	c.errs = append(c.errs, nodeErr(node, "", fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)))
}

// node checks one node's name, uplink and address against the nodes seen
// before it, and records its subnet.
func (c *layoutChecker) node(n spec.ResolvedNode) {
	if c.names[n.Name] {
		c.bad(n.Name, "duplicate node name")
		return
	}
	c.names[n.Name] = true
	if n.Name == "" || strings.ContainsAny(n.Name, "/\x00") || n.Name == "." || n.Name == ".." {
		c.bad(n.Name, "name cannot be used in a namespace name")
		return
	}
	uplink := uplinkOf(n)
	if len(uplink) > maxIfNameLen || strings.ContainsAny(uplink, "/: \t\n\x00") || uplink == "." || uplink == ".." || uplink == "lo" {
		c.bad(n.Name, "uplink %q is not a valid interface name", uplink)
	}
	if !n.Address.IsValid() {
		c.bad(n.Name, "no underlay address")
		return
	}
	addr := n.Address.Addr()
	subnet := n.Address.Masked()
	if other, ok := c.byAddr[addr]; ok {
		c.bad(n.Name, "address %s is also node %q's", addr, other)
		return
	}
	c.byAddr[addr] = n.Name
	if addr == subnet.Addr() && n.Address.Bits() < addr.BitLen()-1 {
		c.bad(n.Name, "address %s is the network address of %s", addr, subnet)
	}
	if addr.Is4() && n.Address.Bits() < 31 && addr == lastAddr(subnet) {
		c.bad(n.Name, "address %s is the broadcast address of %s", addr, subnet)
	}
	if p, ok := c.ports[portName(n.Name)]; ok {
		// A 32-bit hash collision: report it rather than plug two
		// nodes into one port.
		c.bad(n.Name, "underlay port name %s clashes with node %q's", portName(n.Name), p)
	}
	c.ports[portName(n.Name)] = n.Name
	c.subnet(n.Name, subnet)
}

// subnet records a node's subnet, the first time it is seen, unless it
// overlaps another.
func (c *layoutChecker) subnet(node string, subnet netip.Prefix) {
	if _, ok := c.subnetOf[subnet]; ok {
		return
	}
	for _, s := range c.subnets {
		if s.Overlaps(subnet) {
			c.bad(node, "subnet %s overlaps subnet %s of node %q", subnet, s, c.subnetOf[s])
		}
	}
	c.subnetOf[subnet] = node
	c.subnets = append(c.subnets, subnet)
}

// routers sorts the subnets, gives each a router address and bridge, adds
// them to in and returns them by prefix.
func (c *layoutChecker) routers(in *Info) (map[netip.Prefix]SubnetInfo, error) {
	slices.SortFunc(c.subnets, func(a, b netip.Prefix) int {
		if d := a.Addr().Compare(b.Addr()); d != 0 {
			return d
		}
		return a.Bits() - b.Bits()
	})
	var errs []error
	routers := map[netip.Prefix]SubnetInfo{}
	for _, s := range c.subnets {
		router, ok := routerAddr(s, c.byAddr)
		if !ok {
			errs = append(errs, &Error{Object: "subnet " + s.String(),
				Err: fmt.Errorf("%w: no free address left for the router", ErrInvalid)})
			continue
		}
		si := SubnetInfo{Prefix: s, Bridge: bridgeName(s), Router: router, MAC: macFor("subnet", s.String())}
		routers[s] = si
		in.Subnets = append(in.Subnets, si)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return routers, nil
}

// routerAddr picks the highest usable host address of p that no node
// uses. Routers conventionally sit at the top of a subnet (.254 of a /24)
// while nodes are numbered from the bottom, so this rarely moves.
func routerAddr(p netip.Prefix, used map[netip.Addr]string) (netip.Addr, bool) {
	hostBits := p.Addr().BitLen() - p.Bits()
	if hostBits == 0 {
		return netip.Addr{}, false
	}
	lo, hi := p.Addr(), lastAddr(p)
	if hostBits >= 2 {
		// The network address is not a host (IPv6: the subnet-router
		// anycast address), and IPv4's last address is the broadcast.
		lo = lo.Next()
		if p.Addr().Is4() {
			hi = hi.Prev()
		}
	}
	for a := hi; a.IsValid() && a.Compare(lo) >= 0; a = a.Prev() {
		if _, taken := used[a]; !taken {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
