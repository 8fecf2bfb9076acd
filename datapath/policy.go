package datapath

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/netreconcile/netreconcile/bpf"
)

// Network policy maps (see bpf/policy.h for how the programs read them).
// Like the service maps, every entry is written and deleted on its own and
// every read is one dump, so the engine can diff and converge entry by
// entry; what the entries should be is decided by the policy compiler.

// PolicyDir is the side of a pod a policy entry applies to.
type PolicyDir uint8

// Policy directions (NR_POL_INGRESS, NR_POL_EGRESS).
const (
	PolicyIngress PolicyDir = 1
	PolicyEgress  PolicyDir = 2
)

func (d PolicyDir) String() string {
	switch d {
	case PolicyIngress:
		return "ingress"
	case PolicyEgress:
		return "egress"
	}
	return fmt.Sprintf("dir-%d", uint8(d))
}

// ParsePolicyDir reads "ingress" or "egress".
func ParsePolicyDir(s string) (PolicyDir, error) {
	switch s {
	case "ingress":
		return PolicyIngress, nil
	case "egress":
		return PolicyEgress, nil
	}
	return 0, fmt.Errorf("policy direction %q (want ingress or egress): %w", s, ErrInvalid)
}

func (d PolicyDir) valid() bool { return d == PolicyIngress || d == PolicyEgress }

// Reserved identities (NR_POL_ID_*). Every other value names a class of
// addresses that the policy compiler chose.
const (
	// IdentityWorld is an address without an entry in the identity map.
	IdentityWorld uint32 = 0
	// IdentityHost is the node's own addresses: always allowed.
	IdentityHost uint32 = 1
	// IdentityAny in a rule matches every remote address.
	IdentityAny uint32 = 0xffffffff
)

const (
	polIsolated = 1  // NR_POL_ISOLATED
	polRuleFull = 96 // NR_POL_RULE_FULL: every key field fixed
)

// PolicyRule is one entry of the rule map: the pod at Local, on side Dir,
// accepts (ingress) or may open (egress) connections whose remote end has
// identity Remote, with protocol Proto, to a port in the aligned block
// [Port, Port + 2^(16-PortBits)): PortBits 16 is the single port Port,
// 0 every port (Port 0).
type PolicyRule struct {
	Local    netip.Addr
	Dir      PolicyDir
	Remote   uint32
	Proto    uint8
	Port     uint16
	PortBits uint8
}

func (r PolicyRule) validate() error {
	switch {
	case !r.Local.Is4():
		return fmt.Errorf("local address %v is not IPv4: %w", r.Local, ErrInvalid)
	case !r.Dir.valid():
		return fmt.Errorf("direction %d: %w", r.Dir, ErrInvalid)
	case r.Proto == 0:
		return fmt.Errorf("protocol 0: %w", ErrInvalid)
	case r.PortBits > 16:
		return fmt.Errorf("port prefix /%d longer than 16 bits: %w", r.PortBits, ErrInvalid)
	case r.PortBits < 16 && r.Port&(1<<(16-r.PortBits)-1) != 0:
		return fmt.Errorf("port %d is not aligned to a block of %d: %w", r.Port, 1<<(16-r.PortBits), ErrInvalid)
	}
	return nil
}

func (r PolicyRule) mapKey() bpf.NrPolRuleKey {
	return bpf.NrPolRuleKey{
		Prefixlen: polRuleFull - 16 + uint32(r.PortBits),
		Local:     be32(r.Local),
		Remote:    r.Remote,
		Dir:       uint8(r.Dir),
		Proto:     r.Proto,
		Port:      be16(r.Port),
	}
}

// ComparePolicyRules orders rules by pod, direction, remote, protocol and
// ports, as PolicyRules returns them.
func ComparePolicyRules(a, b PolicyRule) int {
	return cmp.Or(a.Local.Compare(b.Local), cmp.Compare(a.Dir, b.Dir), cmp.Compare(a.Remote, b.Remote),
		cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Port, b.Port), cmp.Compare(a.PortBits, b.PortBits))
}

// PolicyRules reads every rule, sorted (ComparePolicyRules).
func (d *Datapath) PolicyRules() ([]PolicyRule, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []PolicyRule
	err := scan(d.objs.NrPolRules, func(k *bpf.NrPolRuleKey, _ *bpf.NrPolRule) {
		bits := int(k.Prefixlen) - (polRuleFull - 16)
		if bits < 0 || bits > 16 {
			return // not written by us: a prefix that ends before the port
		}
		out = append(out, PolicyRule{Local: addrFrom(k.Local), Dir: PolicyDir(k.Dir), Remote: k.Remote,
			Proto: k.Proto, Port: portFrom(k.Port), PortBits: uint8(bits)})
	})
	if err != nil {
		return nil, fmt.Errorf("read policy rules: %w", err)
	}
	slices.SortFunc(out, ComparePolicyRules)
	return out, nil
}

// AddPolicyRule writes one rule (writing an existing rule is success).
func (d *Datapath) AddPolicyRule(r PolicyRule) error {
	if err := r.validate(); err != nil {
		return fmt.Errorf("policy rule %+v: %w", r, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	k := r.mapKey()
	if err := d.objs.NrPolRules.Put(&k, &bpf.NrPolRule{}); err != nil {
		return fmt.Errorf("policy rule %+v: write: %w", r, err)
	}
	return nil
}

// DeletePolicyRule removes one rule; a missing one is success.
func (d *Datapath) DeletePolicyRule(r PolicyRule) error {
	if err := r.validate(); err != nil {
		return fmt.Errorf("policy rule %+v: %w", r, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	k := r.mapKey()
	if err := d.objs.NrPolRules.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("policy rule %+v: delete: %w", r, err)
	}
	return nil
}

// PolicySide names one side (direction) of one local pod.
type PolicySide struct {
	IP  netip.Addr
	Dir PolicyDir
}

func (s PolicySide) validate() error {
	switch {
	case !s.IP.Is4():
		return fmt.Errorf("address %v is not IPv4: %w", s.IP, ErrInvalid)
	case !s.Dir.valid():
		return fmt.Errorf("direction %d: %w", s.Dir, ErrInvalid)
	}
	return nil
}

func (s PolicySide) String() string { return s.IP.String() + " " + s.Dir.String() }

// PolicyIsolation reads which sides of which pods are isolated (an entry
// without the isolated flag reads as false).
func (d *Datapath) PolicyIsolation() (map[PolicySide]bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[PolicySide]bool{}
	err := scan(d.objs.NrPolPods, func(k *bpf.NrPolPodKey, v *bpf.NrPolPod) {
		out[PolicySide{IP: addrFrom(k.Ip), Dir: PolicyDir(k.Dir)}] = v.Flags&polIsolated != 0
	})
	if err != nil {
		return nil, fmt.Errorf("read policy isolation: %w", err)
	}
	return out, nil
}

// SetPolicyIsolation marks one side of a pod isolated (only its rules
// allow new connections) or not (everything is allowed).
func (d *Datapath) SetPolicyIsolation(s PolicySide, isolated bool) error {
	if err := s.validate(); err != nil {
		return fmt.Errorf("policy isolation of %s: %w", s, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	k := bpf.NrPolPodKey{Ip: be32(s.IP), Dir: uint8(s.Dir)}
	v := bpf.NrPolPod{}
	if isolated {
		v.Flags = polIsolated
	}
	if err := d.objs.NrPolPods.Put(&k, &v); err != nil {
		return fmt.Errorf("policy isolation of %s: write: %w", s, err)
	}
	return nil
}

// DeletePolicyIsolation removes the entry of one side of a pod (which then
// is not isolated); a missing one is success.
func (d *Datapath) DeletePolicyIsolation(s PolicySide) error {
	if err := s.validate(); err != nil {
		return fmt.Errorf("policy isolation of %s: %w", s, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	k := bpf.NrPolPodKey{Ip: be32(s.IP), Dir: uint8(s.Dir)}
	if err := d.objs.NrPolPods.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("policy isolation of %s: delete: %w", s, err)
	}
	return nil
}

// PolicyIdentities reads the identity map: address prefix -> identity.
func (d *Datapath) PolicyIdentities() (map[netip.Prefix]uint32, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[netip.Prefix]uint32{}
	err := scan(d.objs.NrPolIds, func(k *bpf.NrPolIdKey, v *bpf.NrPolId) {
		if k.Prefixlen <= 32 {
			out[netip.PrefixFrom(addrFrom(k.Addr), int(k.Prefixlen))] = v.Id
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read policy identities: %w", err)
	}
	return out, nil
}

func identityKey(p netip.Prefix) (bpf.NrPolIdKey, error) {
	if !p.Addr().Is4() || p != p.Masked() {
		return bpf.NrPolIdKey{}, fmt.Errorf("prefix %v is not a canonical IPv4 prefix: %w", p, ErrInvalid)
	}
	return bpf.NrPolIdKey{Prefixlen: uint32(p.Bits()), Addr: be32(p.Addr())}, nil
}

// SetPolicyIdentity gives the addresses of p (those no longer prefix
// claims) identity id.
func (d *Datapath) SetPolicyIdentity(p netip.Prefix, id uint32) error {
	k, err := identityKey(p)
	if err != nil {
		return fmt.Errorf("policy identity: %w", err)
	}
	if id == IdentityAny {
		return fmt.Errorf("policy identity of %v: %#x is reserved for rules: %w", p, id, ErrInvalid)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.objs.NrPolIds.Put(&k, &bpf.NrPolId{Id: id}); err != nil {
		return fmt.Errorf("policy identity of %v: write: %w", p, err)
	}
	return nil
}

// DeletePolicyIdentity removes the entry of p; a missing one is success.
func (d *Datapath) DeletePolicyIdentity(p netip.Prefix) error {
	k, err := identityKey(p)
	if err != nil {
		return fmt.Errorf("policy identity: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.objs.NrPolIds.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("policy identity of %v: delete: %w", p, err)
	}
	return nil
}

// PolicyRevision reads the revision that connection tracking entries are
// checked against (0 in fresh maps).
func (d *Datapath) PolicyRevision() (uint32, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var st bpf.NrPolState
	if err := d.objs.NrPolState.Lookup(uint32(0), &st); err != nil {
		return 0, fmt.Errorf("read policy revision: %w", err)
	}
	return st.Revision, nil
}

// SetPolicyRevision publishes a new revision of the policy maps: the next
// packet of every tracked connection is judged again under them. Write it
// after the entries it stands for.
func (d *Datapath) SetPolicyRevision(rev uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.objs.NrPolState.Put(uint32(0), &bpf.NrPolState{Revision: rev}); err != nil {
		return fmt.Errorf("set policy revision: %w", err)
	}
	return nil
}

// PolicyConn is a connection that policy has allowed, as one hook
// direction recorded it.
type PolicyConn struct {
	Proto    uint8
	Src, Dst netip.AddrPort // as the connection's first packet travelled
	Dir      PolicyDir      // the side that judged it
	Revision uint32         // the policy revision it was last judged under
}

// PolicyConntrack lists the connections policy has allowed. Entries outlive
// their connections until the LRU map recycles them.
func (d *Datapath) PolicyConntrack() ([]PolicyConn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []PolicyConn
	err := scan(d.objs.NrPolCt, func(k *bpf.NrPolCtKey, v *bpf.NrPolCt) {
		out = append(out, PolicyConn{
			Proto:    k.Proto,
			Src:      netip.AddrPortFrom(addrFrom(k.Saddr), portFrom(k.Sport)),
			Dst:      netip.AddrPortFrom(addrFrom(k.Daddr), portFrom(k.Dport)),
			Dir:      PolicyDir(k.Dir),
			Revision: v.Revision,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read policy conntrack: %w", err)
	}
	slices.SortFunc(out, func(a, b PolicyConn) int {
		return cmp.Or(a.Src.Compare(b.Src), a.Dst.Compare(b.Dst), cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Dir, b.Dir))
	})
	return out, nil
}
