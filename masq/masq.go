package masq

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/google/nftables"
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

// chainName is the table's one chain.
const chainName = "postrouting"

// Desired adds node's masquerade to s when the file wants one: masquerade
// on (the default) and pods on the node.
func Desired(r *spec.Resolved, node string, s *state.State) error {
	n := r.Node(node)
	if n == nil || !r.Masquerade || len(r.PodsOn(node)) == 0 {
		return nil
	}
	except := []netip.Prefix{r.PodCIDR, r.ServiceCIDR} // an absent serviceCIDR is dropped
	for _, o := range r.Nodes {
		except = append(except, netip.PrefixFrom(o.Address.Addr(), 32))
	}
	except = append(except, r.NonMasqueradeCIDRs...)
	m := &state.Masquerade{NS: state.NodeNS, PodCIDR: n.PodCIDR, Uplink: n.Uplink,
		Except: state.CanonicalPrefixes(except), Ports: ports(PortMin, PortMax), OwnerK: state.NodeOwner}
	m.Rules = len(m.Except) + 1
	return s.Add(m)
}

func ports(lo, hi uint16) string {
	return strconv.Itoa(int(lo)) + "-" + strconv.Itoa(int(hi))
}

func table() *nftables.Table {
	return &nftables.Table{Name: state.MasqueradeTable, Family: nftables.TableFamilyIPv4}
}

// conn opens an nftables connection in namespace ref ("" the current
// one); done closes the namespace handle it holds.
func conn(ref string) (c *nftables.Conn, done func(), err error) {
	h, err := nsutil.Open(ref)
	if err != nil {
		return nil, nil, err
	}
	c, err = nftables.New(nftables.WithNetNSFd(int(h)))
	if err != nil {
		h.Close()
		return nil, nil, fmt.Errorf("nftables connection in %s: %w", state.NSLabel(ref), err)
	}
	return c, func() { h.Close() }, nil
}

// Apply replaces the table in namespace ref with m, in one batch.
func Apply(ref string, m *state.Masquerade) error {
	c, done, err := conn(ref)
	if err != nil {
		return err
	}
	defer done()
	t := table()
	// Adding first makes the delete valid when there is no table yet.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
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
	if err := c.Flush(); err != nil {
		return fmt.Errorf("write %s: nftables batch: %w", m, err)
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
		if ch.Table.Name != t.Name || ch.Name != chainName {
			continue
		}
		if !ourChain(ch) {
			return m, nil // not the base chain apply makes: nothing decoded
		}
		rules, err := c.GetRules(t, ch)
		if err != nil {
			return nil, fmt.Errorf("list rules of %s: %w", m, err)
		}
		m.Rules = len(rules)
		for _, r := range rules {
			decode(r.Exprs, m)
		}
	}
	return m, nil
}

func ourChain(ch *nftables.Chain) bool {
	return ch.Type == nftables.ChainTypeNAT && ch.Hooknum != nil && *ch.Hooknum == *nftables.ChainHookPostrouting &&
		ch.Priority != nil && *ch.Priority == *nftables.ChainPriorityNATSource
}

func parsePorts(s string) (lo, hi uint16, err error) {
	var a, b int
	if _, err := fmt.Sscanf(s, "%d-%d", &a, &b); err != nil || a < 1 || b > 65535 || a > b {
		return 0, 0, fmt.Errorf("masquerade ports %q: want MIN-MAX", s)
	}
	return uint16(a), uint16(b), nil
}
