package attack

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Flood is a stream of new flows from one namespace: TCP SYNs and UDP
// datagrams, each from a random source address of Sources and a random
// source port, to a random one of Targets (port 0: a random port).
type Flood struct {
	Sources netip.Prefix // a /32 of the sender's own address: not forged
	Targets []netip.AddrPort
	Protos  []uint8 // ProtoTCP (SYN) and ProtoUDP; both when empty
	Workers int     // senders in parallel (one per CPU spreads the load); 1 when 0
	Rate    int     // packets per second per worker; 0: as fast as possible
}

// Run floods from nsRef until ctx ends and returns how many packets were
// sent. Sends the kernel refuses for lack of buffer are skipped, as a
// flooder would.
func (f Flood) Run(ctx context.Context, nsRef string) (int64, error) {
	if len(f.Targets) == 0 || !f.Sources.Addr().Is4() {
		return 0, fmt.Errorf("flood from netns %q: want IPv4 sources and at least one target", nsRef)
	}
	raws := make([]*Raw, max(f.Workers, 1))
	for i := range raws {
		r, err := OpenRaw(nsRef)
		if err != nil {
			for _, o := range raws[:i] {
				o.Close()
			}
			return 0, err
		}
		raws[i] = r
	}
	var sent atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(raws))
	for w, r := range raws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			if err := f.work(ctx, r, uint64(w), &sent); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return sent.Load(), <-errs
}

func (f Flood) work(ctx context.Context, r *Raw, seed uint64, sent *atomic.Int64) error {
	rng := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
	protos := f.Protos
	if len(protos) == 0 {
		protos = []uint8{ProtoTCP, ProtoUDP}
	}
	start, n := time.Now(), 0
	for ctx.Err() == nil {
		pkt := f.packet(rng, protos[rng.IntN(len(protos))])
		err := unix.Sendto(r.fd, pkt, 0, &unix.SockaddrInet4{Addr: [4]byte(pkt[16:20])})
		switch err {
		case nil:
			sent.Add(1)
		case unix.ENOBUFS, unix.EAGAIN, unix.EPERM:
			// full queues, or a firewall's refusal: a flooder moves on
		default:
			return fmt.Errorf("flood: send: %w", err)
		}
		n++
		if f.Rate > 0 && n%64 == 0 {
			ahead := time.Duration(n)*time.Second/time.Duration(f.Rate) - time.Since(start)
			if ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}
	return nil
}

func (f Flood) packet(rng *rand.Rand, proto uint8) []byte {
	src := netip.AddrPortFrom(randomAddr(rng, f.Sources), uint16(1024+rng.IntN(64512)))
	dst := f.Targets[rng.IntN(len(f.Targets))]
	if dst.Port() == 0 {
		dst = netip.AddrPortFrom(dst.Addr(), uint16(1+rng.IntN(65535)))
	}
	h := IPv4{Src: src.Addr(), Dst: dst.Addr(), Proto: proto, ID: uint16(rng.Uint32())}
	if proto == ProtoTCP {
		return h.Packet(SYN(src, dst, rng.Uint32()))
	}
	return h.Packet(UDP(src, dst, []byte("flood")))
}

// randomAddr draws an address of p: its host bits at random.
func randomAddr(rng *rand.Rand, p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(0)
	if p.Bits() < 32 {
		host = rng.Uint32() & (1<<(32-p.Bits()) - 1)
	}
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
