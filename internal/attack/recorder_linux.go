package attack

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// pollEvery is how long a blocked receive waits before it checks
	// whether the recorder was closed.
	pollEvery = 50 * time.Millisecond
	// maxRecorded bounds a recorder's memory under a flood; later
	// packets are only counted.
	maxRecorded = 50000
)

// Recorder records the IPv4 packets a socket receives, from the moment
// it is made until Close.
type Recorder struct {
	fd       int
	outgoing bool // an AF_PACKET socket: skip what the interface sends
	stop     atomic.Bool
	done     chan struct{}

	mu    sync.Mutex
	pkts  []Packet
	total int
}

// Capture records the IPv4 packets arriving on ifname in nsRef, as the
// interface received them: before the IP stack, fragments unassembled.
// Where the datapath filters on the host side of the pod's link, a
// packet captured here is one the policies let through.
func Capture(nsRef, ifname string) (*Recorder, error) {
	proto := int(htons(unix.ETH_P_IP))
	fd, err := socketIn(nsRef, unix.AF_PACKET, unix.SOCK_DGRAM, proto)
	if err != nil {
		return nil, err
	}
	idx, err := ifIndex(nsRef, ifname)
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: idx})
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("capture on %s in netns %q: %w", ifname, nsRef, err)
	}
	return startRecorder(fd, true)
}

// ListenRaw records the packets of IP protocol proto that nsRef's stack
// delivers locally (after reassembly), through a raw socket: the only
// way to receive SCTP here, where the kernel has no SCTP.
func ListenRaw(nsRef string, proto int) (*Recorder, error) {
	fd, err := socketIn(nsRef, unix.AF_INET, unix.SOCK_RAW, proto)
	if err != nil {
		return nil, err
	}
	return startRecorder(fd, false)
}

func startRecorder(fd int, packetSocket bool) (*Recorder, error) {
	tv := unix.NsecToTimeval(pollEvery.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("set receive timeout: %w", err)
	}
	r := &Recorder{fd: fd, outgoing: packetSocket, done: make(chan struct{})}
	go r.loop()
	return r, nil
}

func (r *Recorder) loop() {
	defer close(r.done)
	buf := make([]byte, 1<<16)
	for !r.stop.Load() {
		n, from, err := unix.Recvfrom(r.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && r.outgoing && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		p, err := Parse(append([]byte(nil), buf[:n]...))
		if err != nil {
			continue
		}
		r.mu.Lock()
		r.total++
		if len(r.pkts) < maxRecorded {
			r.pkts = append(r.pkts, p)
		}
		r.mu.Unlock()
	}
}

// Packets returns the packets recorded so far that match (all when
// match is nil).
func (r *Recorder) Packets(match func(Packet) bool) []Packet {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Packet
	for _, p := range r.pkts {
		if match == nil || match(p) {
			out = append(out, p)
		}
	}
	return out
}

// Total is the number of packets received, recorded or not.
func (r *Recorder) Total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

// WaitFor polls until a packet matching match has been recorded, or
// timeout passes; it reports whether one was.
func (r *Recorder) WaitFor(timeout time.Duration, match func(Packet) bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if len(r.Packets(match)) > 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Close stops recording and closes the socket. The recorded packets stay
// readable.
func (r *Recorder) Close() error {
	if r.stop.Swap(true) {
		return nil
	}
	<-r.done
	return unix.Close(r.fd)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Ping sends ICMP echo requests from nsRef to dst (one every 200 ms)
// until a matching echo reply arrives or timeout passes, and reports
// whether one arrived.
func Ping(nsRef string, dst netip.Addr, timeout time.Duration) (bool, error) {
	rec, err := ListenRaw(nsRef, unix.IPPROTO_ICMP)
	if err != nil {
		return false, err
	}
	defer rec.Close()
	fd, err := socketIn(nsRef, unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	var b [2]byte
	rand.Read(b[:])
	id := binary.BigEndian.Uint16(b[:])
	reply := func(p Packet) bool {
		return p.Src == dst && p.ICMPType == ICMPEchoReply && p.ICMPID == id
	}
	deadline := time.Now().Add(timeout)
	for seq := uint16(1); time.Now().Before(deadline); seq++ {
		// The socket adds the IP header: the source is nsRef's own.
		err := unix.Sendto(fd, ICMPEcho(id, seq, []byte("attack ping")), 0, &unix.SockaddrInet4{Addr: dst.As4()})
		if err != nil {
			return false, fmt.Errorf("ping %s from netns %q: %w", dst, nsRef, err)
		}
		if rec.WaitFor(min(200*time.Millisecond, time.Until(deadline)), reply) {
			return true, nil
		}
	}
	return false, nil
}
