package masq

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// Source ports of masqueraded connections: Linux's default ephemeral
// range (see the package notes).
const (
	PortMin = 32768
	PortMax = 60999
)

// The table's chains: masquerade, and the node's own NodePorts.
const (
	chainName   = "postrouting"
	outputChain = "output"
)

// Desired adds node's masquerade to s when the file wants one: masquerade
// on (the default) and pods on the node.
func Desired(r *spec.Resolved, node string, s *state.State) error {
	n := r.Node(node)
	if n == nil {
		return nil
	}
	nodePorts := localNodePorts(r, n.Address.Addr())
	masquerade := r.Masquerade && len(r.PodsOn(node)) > 0
	if !masquerade {
		if len(nodePorts) == 0 {
			return nil
		}
		return s.Add(&state.Masquerade{NS: state.NodeNS, NodePorts: nodePorts, Rules: len(nodePorts), OwnerK: state.NodeOwner})
	}
	except := []netip.Prefix{r.PodCIDR, r.ServiceCIDR} // an absent serviceCIDR is dropped
	for _, o := range r.Nodes {
		except = append(except, netip.PrefixFrom(o.Address.Addr(), 32))
	}
	except = append(except, r.NonMasqueradeCIDRs...)
	m := &state.Masquerade{NS: state.NodeNS, PodCIDR: n.PodCIDR, Uplink: n.Uplink,
		Except: state.CanonicalPrefixes(except), Ports: ports(PortMin, PortMax), NodePorts: nodePorts, OwnerK: state.NodeOwner}
	m.Rules = len(m.Except) + 1 + len(nodePorts)
	return s.Add(m)
}

// localNodePorts lists the output chain's DNAT rules: a process of the
// node connecting to the node's own address and a nodePort is routed
// locally, past every eBPF hook, so the connection is sent to the
// service's clusterIP instead, whose route leads to the datapath.
func localNodePorts(r *spec.Resolved, addr netip.Addr) []string {
	var out []string
	for _, svc := range r.Services {
		if svc.Type != spec.ServiceNodePort {
			continue
		}
		for _, p := range svc.Ports {
			if p.NodePort != 0 && p.Protocol != spec.ProtocolSCTP {
				out = append(out, nodePortRule(p.Protocol, netip.AddrPortFrom(addr, uint16(p.NodePort)),
					netip.AddrPortFrom(svc.ClusterIP, uint16(p.Port))))
			}
		}
	}
	slices.Sort(out)
	return out
}

// nodePortRule is the text of a DNAT rule: "TCP/172.31.1.2:30080>10.96.0.10:80".
func nodePortRule(proto string, from, to netip.AddrPort) string {
	return proto + "/" + from.String() + ">" + to.String()
}

func ports(lo, hi uint16) string {
	return strconv.Itoa(int(lo)) + "-" + strconv.Itoa(int(hi))
}

func table() *nftables.Table {
	return &nftables.Table{Name: state.MasqueradeTable, Family: nftables.TableFamilyIPv4}
}

// conn opens an nftables connection in namespace ref ("" the current
// one), with opts; done closes the namespace handle it holds.
func conn(ref string, opts ...nftables.ConnOption) (c *nftables.Conn, done func(), err error) {
	h, err := nsutil.Open(ref)
	if err != nil {
		return nil, nil, err
	}
	c, err = nftables.New(append([]nftables.ConnOption{nftables.WithNetNSFd(int(h))}, opts...)...)
	if err != nil {
		h.Close()
		return nil, nil, fmt.Errorf("nftables connection in %s: %w", state.NSLabel(ref), err)
	}
	return c, func() { h.Close() }, nil
}

// Apply replaces the table in namespace ref with m, in one batch.
func Apply(ref string, m *state.Masquerade) error {
	c, done, err := conn(ref, nftables.WithSockOptions(batchBuffers(len(m.Except)+len(m.NodePorts))))
	if err != nil {
		return err
	}
	defer done()
	t := table()
	// Adding first makes the delete valid when there is no table yet.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	if m.PodCIDR.IsValid() {
		if err := addMasquerade(c, t, m); err != nil {
			return err
		}
	}
	if len(m.NodePorts) > 0 {
		if err := addNodePorts(c, t, m); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("write %s: nftables batch: %w", m, err)
	}
	return nil
}

// batchBuffers sizes the socket's buffers for a batch of rules: the
// defaults (net.core.wmem_default, rmem_default) refuse one exception
// rule per node of a thousand-node cluster (EMSGSIZE sending the batch,
// ENOBUFS for its acknowledgements), and past wmem_max/rmem_max only the
// FORCE options raise them (CAP_NET_ADMIN, which applying needs anyway).
func batchBuffers(rules int) nftables.SockOption {
	const perRule = 1024 // a rule's message and its acknowledgement, with room
	size := max(1<<20, perRule*(rules+8))
	return func(c *netlink.Conn) error {
		raw, err := c.SyscallConn()
		if err != nil {
			return fmt.Errorf("nftables socket: %w", err)
		}
		var serr error
		err = raw.Control(func(fd uintptr) {
			for _, opt := range []int{unix.SO_SNDBUFFORCE, unix.SO_RCVBUFFORCE} {
				if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, size); e != nil {
					serr = fmt.Errorf("set nftables socket buffers to %d bytes: %w", size, e)
				}
			}
		})
		return errors.Join(err, serr)
	}
}

func addMasquerade(c *nftables.Conn, t *nftables.Table, m *state.Masquerade) error {
	ch := c.AddChain(&nftables.Chain{Name: chainName, Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	for _, p := range m.Except {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exceptExprs(p)})
	}
	lo, hi, err := parsePorts(m.Ports)
	if err != nil {
		return err
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: masqExprs(m.PodCIDR, m.Uplink, lo, hi)})
	return nil
}

// addNodePorts adds the output chain (type nat, hook output, priority
// dstnat) with one DNAT rule per m.NodePorts entry, matching the node's
// address and port as destination.
func addNodePorts(c *nftables.Conn, t *nftables.Table, m *state.Masquerade) error {
	ch := c.AddChain(&nftables.Chain{Name: outputChain, Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest})
	for _, r := range m.NodePorts {
		es, err := nodePortExprs(r)
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: es})
	}
	return nil
}

// Remove deletes the table from namespace ref; a table already gone is
// removed.
func Remove(ref string) error {
	c, done, err := conn(ref)
	if err != nil {
		return err
	}
	defer done()
	c.DelTable(table())
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete nftables table %s in %s: %w", state.MasqueradeTable, state.NSLabel(ref), err)
	}
	return nil
}

// Observe reads the table in namespace ref, or returns nil when there is
// none. Rules it does not recognise are counted, not decoded, so that
// anything changed by hand differs from the desired object.
func Observe(ref string) (*state.Masquerade, error) {
	c, done, err := conn(ref)
	if err != nil {
		return nil, err
	}
	defer done()
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("list nftables tables in %s: %w", state.NSLabel(ref), err)
	}
	var t *nftables.Table
	for _, x := range tables {
		if x.Name == state.MasqueradeTable {
			t = x
		}
	}
	if t == nil {
		return nil, nil
	}
	m := &state.Masquerade{NS: state.NodeNS, OwnerK: state.NodeOwner}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("list chains of %s: %w", m, err)
	}
	for _, ch := range chains {
		if ch.Table.Name != t.Name {
			continue
		}
		rules, err := c.GetRules(t, ch)
		if err != nil {
			return nil, fmt.Errorf("list rules of %s: %w", m, err)
		}
		m.Rules += len(rules)
		switch {
		case ch.Name == chainName && ourChain(ch, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource):
			for _, r := range rules {
				decode(r.Exprs, m)
			}
		case ch.Name == outputChain && ourChain(ch, nftables.ChainHookOutput, nftables.ChainPriorityNATDest):
			for _, r := range rules {
				if s, ok := decodeNodePort(r.Exprs); ok {
					m.NodePorts = append(m.NodePorts, s)
				}
			}
		default:
			m.Rules++ // a chain apply does not make: never equal
		}
	}
	slices.Sort(m.NodePorts)
	return m, nil
}

func ourChain(ch *nftables.Chain, hook *nftables.ChainHook, prio *nftables.ChainPriority) bool {
	return ch.Type == nftables.ChainTypeNAT && ch.Hooknum != nil && *ch.Hooknum == *hook &&
		ch.Priority != nil && *ch.Priority == *prio
}

func parsePorts(s string) (lo, hi uint16, err error) {
	var a, b int
	if _, err := fmt.Sscanf(s, "%d-%d", &a, &b); err != nil || a < 1 || b > 65535 || a > b {
		return 0, 0, fmt.Errorf("masquerade ports %q: want MIN-MAX", s)
	}
	return uint16(a), uint16(b), nil
}
