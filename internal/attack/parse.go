package attack

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Packet is what Parse reads from an IPv4 packet. Transport fields are
// set only for a packet that starts its datagram (fragment offset 0)
// and is long enough to hold them.
type Packet struct {
	Src, Dst netip.Addr
	Proto    uint8
	ID       uint16
	FragOff  int // bytes
	MF       bool

	SrcPort, DstPort uint16 // TCP, UDP, SCTP
	TCPFlags         uint8
	SCTPChunk        uint8 // type of the first chunk
	ICMPType         uint8
	ICMPCode         uint8
	ICMPID           uint16 // echo request and reply

	// Payload is the transport payload of TCP and UDP, else everything
	// after the IP header.
	Payload []byte
}

// Fragment reports whether p is a fragment of a larger datagram.
func (p Packet) Fragment() bool { return p.MF || p.FragOff > 0 }

func (p Packet) String() string {
	s := fmt.Sprintf("%s > %s proto %d id %d", p.Src, p.Dst, p.Proto, p.ID)
	if p.Fragment() {
		s += fmt.Sprintf(" frag off %d mf %v", p.FragOff, p.MF)
	}
	if p.SrcPort != 0 || p.DstPort != 0 {
		s += fmt.Sprintf(" ports %d > %d", p.SrcPort, p.DstPort)
	}
	return s
}

// Parse reads an IPv4 packet (starting at its IP header).
func Parse(b []byte) (Packet, error) {
	if len(b) < ipv4HeaderLen {
		return Packet{}, fmt.Errorf("parse %d bytes: %w", len(b), ErrShort)
	}
	if b[0]>>4 != 4 {
		return Packet{}, fmt.Errorf("parse version %d: %w", b[0]>>4, ErrNotIPv4)
	}
	hl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:]))
	if hl < ipv4HeaderLen || len(b) < hl || total < hl {
		return Packet{}, fmt.Errorf("parse header of %d bytes in %d: %w", hl, len(b), ErrShort)
	}
	if total < len(b) {
		b = b[:total] // Ethernet padding
	}
	frag := binary.BigEndian.Uint16(b[6:])
	p := Packet{
		Src:     netip.AddrFrom4([4]byte(b[12:16])),
		Dst:     netip.AddrFrom4([4]byte(b[16:20])),
		Proto:   b[9],
		ID:      binary.BigEndian.Uint16(b[4:]),
		FragOff: int(frag&0x1fff) * 8,
		MF:      frag&0x2000 != 0,
		Payload: b[hl:],
	}
	if p.FragOff == 0 {
		parseTransport(&p)
	}
	return p, nil
}

func parseTransport(p *Packet) {
	t := p.Payload
	switch p.Proto {
	case ProtoTCP:
		if len(t) >= tcpHeaderLen {
			p.SrcPort, p.DstPort = binary.BigEndian.Uint16(t), binary.BigEndian.Uint16(t[2:])
			p.TCPFlags = t[13]
			if off := int(t[12]>>4) * 4; off >= tcpHeaderLen && off <= len(t) {
				p.Payload = t[off:]
			}
		}
	case ProtoUDP:
		if len(t) >= udpHeaderLen {
			p.SrcPort, p.DstPort = binary.BigEndian.Uint16(t), binary.BigEndian.Uint16(t[2:])
			p.Payload = t[udpHeaderLen:]
		}
	case ProtoSCTP:
		if len(t) >= 13 {
			p.SrcPort, p.DstPort = binary.BigEndian.Uint16(t), binary.BigEndian.Uint16(t[2:])
			p.SCTPChunk = t[12]
		}
	case ProtoICMP:
		if len(t) >= 8 {
			p.ICMPType, p.ICMPCode = t[0], t[1]
			p.ICMPID = binary.BigEndian.Uint16(t[4:])
		}
	}
}
