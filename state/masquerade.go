package state

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// MasqueradeTable is the name of netreconcile's nftables table (family
// ip) in a node namespace: the name is the ownership mark, and no other
// table is ever read or changed.
const MasqueradeTable = "netreconcile"

// Masquerade is a node's egress masquerade: netreconcile's nftables
// table, whose postrouting NAT chain rewrites the source of pods'
// connections to destinations outside the cluster to the node's address
// (when PodCIDR is set), and whose output chain sends the node's own
// connections to its NodePorts to the services' clusterIPs.
// The table is written whole (one batch), so every change replaces it.
type Masquerade struct {
	NS string `json:"ns,omitempty"`
	// PodCIDR is this node's: the sources masqueraded.
	PodCIDR netip.Prefix `json:"pod_cidr"`
	// Uplink is the interface masqueraded traffic leaves by.
	Uplink string `json:"uplink"`
	// Except are the destinations never masqueraded (pod and service
	// CIDRs, node addresses, nonMasqueradeCIDRs), sorted, none inside
	// another (see CanonicalPrefixes).
	Except []netip.Prefix `json:"except,omitempty"`
	// Ports is the range of source ports given, "MIN-MAX".
	Ports string `json:"ports"`
	// NodePorts are the DNAT rules of the output chain, by which the
	// node's own processes reach its NodePorts ("TCP/30080>10.96.0.10:80":
	// to this node's address and nodePort, the service's clusterIP and
	// port), sorted.
	NodePorts []string `json:"node_ports,omitempty"`
	// Rules counts the chains' rules: a rule someone added shows here.
	Rules  int    `json:"rules"`
	OwnerK string `json:"owner,omitempty"`
}

func (m *Masquerade) Kind() Kind            { return KindMasquerade }
func (m *Masquerade) Key() string           { return NSLabel(m.NS) + "/" + MasqueradeTable }
func (m *Masquerade) Owner() string         { return m.OwnerK }
func (m *Masquerade) Immutable(string) bool { return false }
func (m *Masquerade) String() string {
	return "nftables table " + MasqueradeTable + " in " + NSLabel(m.NS)
}

// Attrs implements Object.
func (m *Masquerade) Attrs() []Attr {
	except := make([]string, len(m.Except))
	for i, p := range m.Except {
		except[i] = p.String()
	}
	attrs := []Attr{{"pod_cidr", prefixText(m.PodCIDR)}, {"uplink", m.Uplink}, {"except", strings.Join(except, ",")},
		{"ports", m.Ports}}
	if len(m.NodePorts) > 0 {
		attrs = append(attrs, Attr{"node_ports", strings.Join(m.NodePorts, ",")})
	}
	return append(attrs, Attr{"rules", strconv.Itoa(m.Rules)})
}

func prefixText(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

// CanonicalPrefixes returns ps sorted by address, without duplicates,
// without a prefix that another covers, and with the two halves of a
// prefix written as that prefix: the one form of a set of destinations,
// so that desired and observed compare equal, and the shortest (a
// cluster's node addresses, one /32 each, are mostly runs: 1000 nodes
// are tens of rules, not a thousand, to write and to read on every pass).
func CanonicalPrefixes(ps []netip.Prefix) []netip.Prefix {
	sorted := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if p.IsValid() {
			sorted = append(sorted, p.Masked())
		}
	}
	// By address, a covering prefix before those it covers.
	slices.SortFunc(sorted, func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
	var out []netip.Prefix
	for _, p := range sorted {
		if n := len(out); n > 0 && out[n-1].Bits() <= p.Bits() && out[n-1].Contains(p.Addr()) {
			continue // sorted: a covering prefix comes just before
		}
		out = append(out, p)
		// Sorted and disjoint: halves of one prefix are neighbours, and a
		// merge may complete the half of a larger one.
		for n := len(out); n >= 2 && halves(out[n-2], out[n-1]); n = len(out) {
			out = append(out[:n-2], parent(out[n-1]))
		}
	}
	return out
}

// halves reports whether a and b are the two halves of one prefix.
func halves(a, b netip.Prefix) bool {
	return a.Bits() == b.Bits() && a.Bits() > 0 && a != b && parent(a) == parent(b)
}

// parent is the prefix one bit shorter that holds p.
func parent(p netip.Prefix) netip.Prefix {
	q, _ := p.Addr().Prefix(p.Bits() - 1)
	return q
}
