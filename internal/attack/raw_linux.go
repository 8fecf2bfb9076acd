package attack

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/internal/nsutil"
)

var (
	// ErrNoIPv6 is returned by LinkLocal when the interface has no IPv6
	// link-local address (IPv6 is off there).
	ErrNoIPv6 = errors.New("no IPv6 link-local address")
	// ErrNotIPv4Packet is returned by Raw.Send for a buffer that is not
	// an IPv4 packet.
	ErrNotIPv4Packet = errors.New("not an IPv4 packet")
)

// socketIn opens a socket in the namespace nsRef.
func socketIn(nsRef string, domain, typ, proto int) (int, error) {
	fd := -1
	err := nsutil.Do(nsRef, func() (err error) {
		fd, err = unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
		return err
	})
	if err != nil {
		return -1, fmt.Errorf("open socket (%d, %d, %d) in netns %q: %w", domain, typ, proto, nsRef, err)
	}
	return fd, nil
}

// Raw sends whole IPv4 packets, header included (IP_HDRINCL), from one
// namespace: any source address, any fragment field.
type Raw struct{ fd int }

// OpenRaw opens a Raw in nsRef.
func OpenRaw(nsRef string) (*Raw, error) {
	fd, err := socketIn(nsRef, unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
	if err != nil {
		return nil, err
	}
	return &Raw{fd: fd}, nil
}

// Send sends pkt, routed by its destination address. The kernel keeps
// the header as built, save the total length and checksum it rewrites
// (to the same values) and an ID of 0 it replaces.
func (r *Raw) Send(pkt []byte) error {
	if len(pkt) < ipv4HeaderLen || pkt[0]>>4 != 4 {
		return fmt.Errorf("send %d bytes: %w", len(pkt), ErrNotIPv4Packet)
	}
	sa := &unix.SockaddrInet4{Addr: [4]byte(pkt[16:20])}
	if err := unix.Sendto(r.fd, pkt, 0, sa); err != nil {
		p, _ := Parse(pkt)
		return fmt.Errorf("send %v: %w", p, err)
	}
	return nil
}

// SendAll sends packets in order and stops at the first error.
func (r *Raw) SendAll(pkts ...[]byte) error {
	for _, p := range pkts {
		if err := r.Send(p); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the socket.
func (r *Raw) Close() error { return unix.Close(r.fd) }

// SendOnce opens a Raw in nsRef, sends pkts and closes it.
func SendOnce(nsRef string, pkts ...[]byte) error {
	r, err := OpenRaw(nsRef)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.SendAll(pkts...)
}

// SendFrames sends whole Ethernet frames on ifname in nsRef from an
// AF_PACKET socket. With bypassQdisc the frames skip the device's
// queueing layer (PACKET_QDISC_BYPASS), and with it the tc egress hook:
// what a pod with raw sockets can do to programs attached to its own
// interface.
func SendFrames(nsRef, ifname string, bypassQdisc bool, frames ...[]byte) error {
	fd, err := socketIn(nsRef, unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	idx, err := ifIndex(nsRef, ifname)
	if err != nil {
		return err
	}
	if bypassQdisc {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
			return fmt.Errorf("set PACKET_QDISC_BYPASS on %s in netns %q: %w", ifname, nsRef, err)
		}
	}
	for _, f := range frames {
		sa := &unix.SockaddrLinklayer{Ifindex: idx, Halen: 6}
		copy(sa.Addr[:], f[:6])
		if err := unix.Sendto(fd, f, 0, sa); err != nil {
			return fmt.Errorf("send frame on %s in netns %q: %w", ifname, nsRef, err)
		}
	}
	return nil
}

func ifIndex(nsRef, ifname string) (int, error) {
	h, err := nsutil.Handle(nsRef)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	l, err := h.LinkByName(ifname)
	if err != nil {
		return 0, fmt.Errorf("find %s in netns %q: %w", ifname, nsRef, err)
	}
	return l.Attrs().Index, nil
}

// MAC returns the hardware address of ifname in nsRef.
func MAC(nsRef, ifname string) (net.HardwareAddr, error) {
	h, err := nsutil.Handle(nsRef)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	l, err := h.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("find %s in netns %q: %w", ifname, nsRef, err)
	}
	return l.Attrs().HardwareAddr, nil
}

// DialTCPFrom connects from src (an address of nsRef's interfaces) to
// dst, within timeout.
func DialTCPFrom(nsRef string, src netip.Addr, dst netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := nsutil.Do(nsRef, func() (err error) {
		d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
		c, err = d.Dial("tcp4", dst.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial tcp %s from %s in netns %q: %w", dst, src, nsRef, err)
	}
	return c, nil
}

// SendUDPFrom sends one datagram from src (an address of nsRef's
// interfaces; port 0 picks one) to dst through the kernel's UDP stack,
// which fragments it when it exceeds the route's MTU.
func SendUDPFrom(nsRef string, src, dst netip.AddrPort, payload []byte) error {
	err := nsutil.Do(nsRef, func() error {
		c, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(src), net.UDPAddrFromAddrPort(dst))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(payload)
		return err
	})
	if err != nil {
		return fmt.Errorf("send udp %s -> %s (%d bytes) in netns %q: %w", src, dst, len(payload), nsRef, err)
	}
	return nil
}

// LinkLocal returns the IPv6 link-local address of ifname in nsRef once
// duplicate address detection is done (or timeout passes), or an error
// wrapping ErrNoIPv6 when the interface has none.
func LinkLocal(nsRef, ifname string, timeout time.Duration) (netip.Addr, error) {
	h, err := nsutil.Handle(nsRef)
	if err != nil {
		return netip.Addr{}, err
	}
	defer h.Close()
	l, err := h.LinkByName(ifname)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("find %s in netns %q: %w", ifname, nsRef, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		addrs, err := h.AddrList(l, unix.AF_INET6)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("list IPv6 addresses of %s in netns %q: %w", ifname, nsRef, err)
		}
		var ll netip.Addr
		tentative := false
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.IsLinkLocalUnicast() {
				ll, tentative = ip, a.Flags&unix.IFA_F_TENTATIVE != 0
			}
		}
		switch {
		case !ll.IsValid():
			return netip.Addr{}, fmt.Errorf("%s in netns %q: %w", ifname, nsRef, ErrNoIPv6)
		case !tentative || time.Now().After(deadline):
			return ll, nil
		}
		time.Sleep(50 * time.Millisecond) // DAD has no event to wait on here
	}
}
