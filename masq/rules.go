package masq

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/state"
)

// Offsets of the IPv4 source and destination in the network header.
const (
	offSaddr = 12
	offDaddr = 16
)

// prefixExprs match the IPv4 address at offset off against p.
func prefixExprs(off uint32, p netip.Prefix) []expr.Any {
	mask := make([]byte, 4)
	binary.BigEndian.PutUint32(mask, ^uint32(0)<<(32-p.Bits()))
	if p.Bits() == 0 {
		mask = []byte{0, 0, 0, 0}
	}
	net := p.Masked().Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: net[:]},
	}
}

// exceptExprs: ip daddr p return.
func exceptExprs(p netip.Prefix) []expr.Any {
	return append(prefixExprs(offDaddr, p), &expr.Verdict{Kind: expr.VerdictReturn})
}

// masqExprs: ip saddr pods oifname uplink masquerade to :lo-hi.
func masqExprs(pods netip.Prefix, uplink string, lo, hi uint16) []expr.Any {
	return append(prefixExprs(offSaddr, pods),
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(uplink)},
		&expr.Immediate{Register: 1, Data: be16(lo)},
		&expr.Immediate{Register: 2, Data: be16(hi)},
		&expr.Masq{ToPorts: true, RegProtoMin: 1, RegProtoMax: 2},
	)
}

func ifname(s string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, s)
	return b
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// decode adds what a rule of the chain says to m: an exception, or the
// masquerade rule's sources, uplink and ports. A rule of another shape
// adds nothing (it is only counted).
func decode(es []expr.Any, m *state.Masquerade) {
	if len(es) == 4 {
		if p, ok := prefixOf(es[:3], offDaddr); ok {
			if v, ok := es[3].(*expr.Verdict); ok && v.Kind == expr.VerdictReturn {
				m.Except = append(m.Except, p)
			}
		}
		return
	}
	if len(es) != 8 {
		return
	}
	pods, ok := prefixOf(es[:3], offSaddr)
	meta, okMeta := es[3].(*expr.Meta)
	name, okName := es[4].(*expr.Cmp)
	lo, okLo := es[5].(*expr.Immediate)
	hi, okHi := es[6].(*expr.Immediate)
	mq, okMasq := es[7].(*expr.Masq)
	if !ok || !okMeta || !okName || !okLo || !okHi || !okMasq || meta.Key != expr.MetaKeyOIFNAME || meta.SourceRegister ||
		name.Op != expr.CmpOpEq || lo.Register != 1 || hi.Register != 2 || len(lo.Data) != 2 || len(hi.Data) != 2 ||
		!mq.ToPorts || mq.RegProtoMin != 1 || mq.RegProtoMax != 2 {
		return
	}
	m.PodCIDR = pods
	m.Uplink = string(bytes.TrimRight(name.Data, "\x00"))
	m.Ports = ports(binary.BigEndian.Uint16(lo.Data), binary.BigEndian.Uint16(hi.Data))
}

// prefixOf decodes prefixExprs(off, p) back to p.
func prefixOf(es []expr.Any, off uint32) (netip.Prefix, bool) {
	pl, ok1 := es[0].(*expr.Payload)
	bw, ok2 := es[1].(*expr.Bitwise)
	cm, ok3 := es[2].(*expr.Cmp)
	if !ok1 || !ok2 || !ok3 || pl.Base != expr.PayloadBaseNetworkHeader || pl.Offset != off || pl.Len != 4 ||
		pl.OperationType != expr.PayloadLoad || bw.Len != 4 || len(bw.Mask) != 4 || !bytes.Equal(bw.Xor, []byte{0, 0, 0, 0}) ||
		cm.Op != expr.CmpOpEq || len(cm.Data) != 4 {
		return netip.Prefix{}, false
	}
	mask := binary.BigEndian.Uint32(bw.Mask)
	bits := 0
	for bits < 32 && mask&(1<<(31-bits)) != 0 {
		bits++
	}
	if bits < 32 && mask<<bits != 0 {
		return netip.Prefix{}, false // not a prefix mask
	}
	p := netip.PrefixFrom(netip.AddrFrom4([4]byte(cm.Data)), bits)
	if p.Masked() != p {
		return netip.Prefix{}, false
	}
	return p, true
}

// nodePortExprs: ip daddr A meta l4proto P th dport N dnat to C:Q, from
// nodePortRule's text.
func nodePortExprs(rule string) ([]expr.Any, error) {
	proto, from, to, err := parseNodePort(rule)
	if err != nil {
		return nil, err
	}
	addr, dst := from.Addr().As4(), to.Addr().As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offDaddr, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:]},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be16(from.Port())},
		&expr.Immediate{Register: 1, Data: dst[:]},
		&expr.Immediate{Register: 2, Data: be16(to.Port())},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}, nil
}

// parseNodePort reads "TCP/172.31.1.2:30080>10.96.0.10:80".
func parseNodePort(rule string) (proto byte, from, to netip.AddrPort, err error) {
	name, rest, ok1 := strings.Cut(rule, "/")
	a, b, ok2 := strings.Cut(rest, ">")
	from, err1 := netip.ParseAddrPort(a)
	to, err2 := netip.ParseAddrPort(b)
	switch {
	case !ok1 || !ok2 || err1 != nil || err2 != nil || !from.Addr().Is4() || !to.Addr().Is4():
		return 0, from, to, fmt.Errorf("node port rule %q: want PROTO/ADDR:PORT>ADDR:PORT", rule)
	case name == "TCP":
		return unix.IPPROTO_TCP, from, to, nil
	case name == "UDP":
		return unix.IPPROTO_UDP, from, to, nil
	}
	return 0, from, to, fmt.Errorf("node port rule %q: protocol %s is not TCP or UDP", rule, name)
}

// decodeNodePort reads nodePortExprs back into its text.
func decodeNodePort(es []expr.Any) (string, bool) {
	if len(es) != 9 {
		return "", false
	}
	da, ok1 := es[0].(*expr.Payload)
	addr, ok2 := es[1].(*expr.Cmp)
	proto, ok3 := es[3].(*expr.Cmp)
	dp, ok4 := es[4].(*expr.Payload)
	port, ok5 := es[5].(*expr.Cmp)
	ip, ok6 := es[6].(*expr.Immediate)
	tp, ok7 := es[7].(*expr.Immediate)
	nat, ok8 := es[8].(*expr.NAT)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || !ok7 || !ok8 || da.Offset != offDaddr || len(addr.Data) != 4 ||
		len(proto.Data) != 1 || dp.Base != expr.PayloadBaseTransportHeader || dp.Offset != 2 || len(port.Data) != 2 ||
		len(ip.Data) != 4 || len(tp.Data) != 2 || nat.Type != expr.NATTypeDestNAT {
		return "", false
	}
	name := map[byte]string{unix.IPPROTO_TCP: "TCP", unix.IPPROTO_UDP: "UDP"}[proto.Data[0]]
	if name == "" {
		return "", false
	}
	from := netip.AddrPortFrom(netip.AddrFrom4([4]byte(addr.Data)), binary.BigEndian.Uint16(port.Data))
	to := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip.Data)), binary.BigEndian.Uint16(tp.Data))
	return name + "/" + from.String() + ">" + to.String(), true
}
