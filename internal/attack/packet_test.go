package attack

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"testing"
)

var (
	srcAP = netip.MustParseAddrPort("10.244.1.12:40000")
	dstAP = netip.MustParseAddrPort("10.244.1.10:80")
)

// The header of the classic worked example (Wikipedia, "IPv4 header
// checksum"): 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7.
func TestIPv4HeaderKnownVector(t *testing.T) {
	h := IPv4{Src: netip.MustParseAddr("192.168.0.1"), Dst: netip.MustParseAddr("192.168.0.199"),
		Proto: ProtoUDP, TTL: 0x40, DF: true}
	got := h.Packet(make([]byte, 0x73-20))[:20]
	want, _ := hex.DecodeString("45000073000040004011b861c0a80001c0a800c7")
	if !bytes.Equal(got, want) {
		t.Errorf("header\n got %x\nwant %x", got, want)
	}
}

// RFC 3720 B.4 lists CRC32c results as the bytes sent on the wire, in
// the order SCTP uses too.
func TestCRC32cRFC3720Vectors(t *testing.T) {
	inc, dec, ones := make([]byte, 32), make([]byte, 32), make([]byte, 32)
	for i := range 32 {
		inc[i], dec[i], ones[i] = byte(i), byte(31-i), 0xff
	}
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"zeros", make([]byte, 32), "aa36918a"},
		{"ones", ones, "43aba862"},
		{"incrementing", inc, "4e79dd46"},
		{"decrementing", dec, "5cdb3f11"},
	} {
		// The CRC field is the last 4 bytes of a buffer holding data.
		buf := append(bytes.Clone(c.data), 0, 0, 0, 0)
		PutCRC32c(buf[32:], buf[:32])
		if got := hex.EncodeToString(buf[32:]); got != c.want {
			t.Errorf("%s: crc32c bytes %s, want %s", c.name, got, c.want)
		}
	}
}

func TestSCTPInit(t *testing.T) {
	b := SCTPInit(5000, 80, 0x01020304)
	if len(b) != 32 {
		t.Fatalf("INIT packet is %d bytes, want 32", len(b))
	}
	if binary.BigEndian.Uint32(b[4:]) != 0 {
		t.Errorf("verification tag %x, want 0 in an INIT", b[4:8])
	}
	if b[12] != SCTPChunkInit || binary.BigEndian.Uint16(b[14:]) != 20 {
		t.Errorf("chunk type %d length %d, want INIT of 20", b[12], binary.BigEndian.Uint16(b[14:]))
	}
	// A receiver checks by zeroing the field and recomputing.
	c := bytes.Clone(b)
	PutCRC32c(c[8:12], c)
	if !bytes.Equal(c, b) || bytes.Equal(b[8:12], []byte{0, 0, 0, 0}) {
		t.Errorf("checksum %x does not verify (recomputed %x)", b[8:12], c[8:12])
	}
	p, err := Parse(IPv4{Src: srcAP.Addr(), Dst: dstAP.Addr(), Proto: ProtoSCTP, ID: 1}.Packet(b))
	if err != nil || p.SrcPort != 5000 || p.DstPort != 80 || p.SCTPChunk != SCTPChunkInit {
		t.Errorf("parsed %+v, %v", p, err)
	}
}

// verifies reports whether an L4 checksum verifies as a receiver checks
// it: the sum over pseudo-header and segment is all ones.
func verifies(seg []byte, proto uint8) bool {
	return l4Checksum(srcAP.Addr(), dstAP.Addr(), proto, seg) == 0
}

func TestUDPAndTCPChecksums(t *testing.T) {
	for _, n := range []int{0, 1, 7, 1400} { // odd lengths pad with a zero byte
		u := UDP(srcAP, dstAP, bytes.Repeat([]byte{0xa5}, n))
		if !verifies(u, ProtoUDP) {
			t.Errorf("UDP with %d bytes: checksum %x does not verify", n, u[6:8])
		}
		s := TCP{Src: srcAP, Dst: dstAP, Seq: 7, Flags: FlagACK | FlagPSH, Payload: make([]byte, n)}.Segment()
		if !verifies(s, ProtoTCP) {
			t.Errorf("TCP with %d bytes: checksum %x does not verify", n, s[16:18])
		}
	}
	syn := SYN(srcAP, dstAP, 99)
	// A checksum over the wrong pseudo-header must not verify.
	if l4Checksum(srcAP.Addr(), netip.MustParseAddr("10.244.1.11"), ProtoTCP, syn) == 0 {
		t.Error("SYN checksum verifies for another destination too")
	}
	p, err := Parse(IPv4{Src: srcAP.Addr(), Dst: dstAP.Addr(), Proto: ProtoTCP}.Packet(syn))
	if err != nil || p.TCPFlags != FlagSYN || p.SrcPort != 40000 || p.DstPort != 80 || len(p.Payload) != 0 {
		t.Errorf("parsed SYN %+v, %v", p, err)
	}
}

func TestICMPEcho(t *testing.T) {
	b := ICMPEcho(0x1234, 3, []byte("abc"))
	if Checksum(b) != 0 {
		t.Errorf("echo checksum %x does not verify", b[2:4])
	}
	p, _ := Parse(IPv4{Src: srcAP.Addr(), Dst: dstAP.Addr(), Proto: ProtoICMP}.Packet(b))
	if p.ICMPType != ICMPEchoRequest || p.ICMPID != 0x1234 {
		t.Errorf("parsed %+v", p)
	}
}

func TestFragments(t *testing.T) {
	seg := UDP(srcAP, dstAP, bytes.Repeat([]byte("0123456789"), 300)) // 3008 bytes
	h := IPv4{Src: srcAP.Addr(), Dst: dstAP.Addr(), Proto: ProtoUDP, ID: 777, DF: true}
	frags, err := Fragments(h, seg, 1480)
	if err != nil {
		t.Fatal(err)
	}
	if len(frags) != 3 {
		t.Fatalf("%d fragments, want 3", len(frags))
	}
	var joined []byte
	for i, f := range frags {
		if Checksum(f[:20]) != 0 {
			t.Errorf("fragment %d: header checksum does not verify", i)
		}
		p, err := Parse(f)
		if err != nil {
			t.Fatal(err)
		}
		last := i == len(frags)-1
		if p.ID != 777 || p.FragOff != i*1480 || p.MF == last || f[6]&0x40 != 0 {
			t.Errorf("fragment %d: %v (DF bit %v)", i, p, f[6]&0x40 != 0)
		}
		if (i == 0) != (p.DstPort == 80) {
			t.Errorf("fragment %d: ports parsed %d > %d; only the first carries them", i, p.SrcPort, p.DstPort)
		}
		joined = append(joined, f[20:]...)
	}
	if !bytes.Equal(joined, seg) {
		t.Error("the fragments do not add up to the segment")
	}
	if _, err := Fragments(h, seg, 100); !errors.Is(err, ErrFragSize) {
		t.Errorf("size 100: %v, want ErrFragSize", err)
	}
}

func TestARPFrame(t *testing.T) {
	mac := net.HardwareAddr{0x0a, 0x58, 10, 244, 1, 21}
	f := ARP{Op: ARPReply, SenderMAC: mac, SenderIP: netip.MustParseAddr("10.244.1.1"),
		TargetMAC: Broadcast, TargetIP: netip.MustParseAddr("10.244.1.1")}.Frame(Broadcast)
	want, _ := hex.DecodeString("ffffffffffff" + "0a580af40115" + "0806" +
		"0001" + "0800" + "06" + "04" + "0002" + "0a580af40115" + "0af40101" + "ffffffffffff" + "0af40101")
	if len(f) != minFrameLen || !bytes.Equal(f[:len(want)], want) || !bytes.Equal(f[len(want):], make([]byte, minFrameLen-len(want))) {
		t.Errorf("frame\n got %x\nwant %x + zero padding to %d", f, want, minFrameLen)
	}
}

func TestParseRejects(t *testing.T) {
	if _, err := Parse(make([]byte, 10)); !errors.Is(err, ErrShort) {
		t.Errorf("10 bytes: %v", err)
	}
	b := IPv4{Src: srcAP.Addr(), Dst: dstAP.Addr(), Proto: ProtoUDP}.Packet(nil)
	b[0] = 0x60
	if _, err := Parse(b); !errors.Is(err, ErrNotIPv4) {
		t.Errorf("IPv6 version: %v", err)
	}
}

func TestClaimFrames(t *testing.T) {
	att := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	victim := Host{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, IP: netip.MustParseAddr("10.244.1.20")}
	gw := netip.MustParseAddr("10.244.1.1")
	frames := ClaimFrames(att, gw, []Host{victim})
	if len(frames) != 4 {
		t.Fatalf("%d frames, want 4", len(frames))
	}
	for i, f := range frames {
		senderMAC, senderIP := net.HardwareAddr(f[22:28]), netip.AddrFrom4([4]byte(f[28:32]))
		if !bytes.Equal(f[6:12], att) || !bytes.Equal(senderMAC, att) || senderIP != gw {
			t.Errorf("frame %d: from %s, sender %s/%s; want the attacker's MAC claiming %s", i, net.HardwareAddr(f[6:12]), senderMAC, senderIP, gw)
		}
		if dst := net.HardwareAddr(f[0:6]); i >= 2 && !bytes.Equal(dst, victim.MAC) {
			t.Errorf("frame %d: to %s, want the victim %s", i, dst, victim.MAC)
		}
	}
}
