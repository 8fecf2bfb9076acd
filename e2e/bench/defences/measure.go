package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/netreconcile/netreconcile/e2e/bench/internal/benchnode"
)

// The four figures of one phase (one release applied, measured once).
const (
	tputPod = iota // iperf3 Gbit/s to the pod IP
	tputSvc        // iperf3 Gbit/s through the clusterIP
	connPod        // new connections per second to the pod IP
	connSvc        // through the clusterIP
	nFigures
)

var figureNames = [nFigures]string{
	"throughput pod -> pod IP (iperf3, 1 stream)",
	"throughput pod -> clusterIP (iperf3, 1 stream)",
	"new TCP connections/s pod -> pod IP",
	"new TCP connections/s pod -> clusterIP",
}

var figureUnits = [nFigures]string{"Gbit/s", "Gbit/s", "conn/s", "conn/s"}

// The iperf3 servers: the pod IP's, and the clusterIP's backend.
var (
	podIperf = netip.AddrPortFrom(serverIP, portIperfPod)
	svcIperf = netip.AddrPortFrom(serverIP, portIperfSvc)
)

// phase is what one release measured in one round.
type phase struct {
	fig   [nFigures]float64
	rtx   [2]int            // iperf3 retransmissions: pod IP, clusterIP
	rates [2]benchnode.Rate // connections: pod IP, clusterIP
	drops map[string]uint64 // with the defences only
}

// measure applies r, measures the four figures, and destroys again.
func (b *bench) measure(ctx context.Context, r *release) (phase, error) {
	var ph phase
	l := b.lab
	b.applied = r
	if err := l.apply(ctx, r); err != nil {
		return ph, err
	}
	if r.share != 0 {
		if err := raiseShare(r); err != nil {
			return ph, err
		}
	}
	var srv benchnode.ConnServers
	err := srv.Listen(l.netns("server"), serverIP, portConnPod)
	if err == nil {
		err = srv.Listen(l.netns("server"), serverIP, portConnSvc)
	}
	if err == nil {
		err = b.measureApplied(ctx, &ph)
	}
	srv.Stop()
	if err == nil && r.bin == b.with.bin {
		ph.drops, err = drops(r)
	}
	if err != nil {
		return ph, fmt.Errorf("%s defences: %w", r.name, err)
	}
	if err := l.destroy(ctx, r); err != nil {
		return ph, err
	}
	b.applied = nil
	fmt.Fprint(os.Stderr, ".")
	return ph, nil
}

func (b *bench) measureApplied(ctx context.Context, ph *phase) error {
	l, secs := b.lab, b.cfg.secs
	cli, srv := l.netns("client"), l.netns("server")
	var err error
	if ph.fig[tputPod], ph.rtx[0], err = iperf(ctx, srv, podIperf, cli, podIperf, secs); err != nil {
		return err
	}
	if ph.fig[tputSvc], ph.rtx[1], err = iperf(ctx, srv, svcIperf, cli, l.svc(80), secs); err != nil {
		return err
	}
	for i, dst := range []netip.AddrPort{netip.AddrPortFrom(serverIP, portConnPod), l.svc(81)} {
		if ph.rates[i], err = benchnode.ConnRate(ctx, cli, dst, b.cfg.dur); err != nil {
			return err
		}
		ph.fig[connPod+i] = ph.rates[i].PerSec()
	}
	return nil
}

// defences: with vs without (and the diagnostic), rounds of all three in
// an order that rotates from round to round.
func (b *bench) defences(ctx context.Context) error {
	rels := []*release{b.without, b.with, b.shared}
	got := make([][]phase, len(rels))
	for k := range b.cfg.rounds {
		for j := range rels {
			i := (j + k) % len(rels)
			ph, err := b.measure(ctx, rels[i])
			if err != nil {
				return fmt.Errorf("round %d: %w", k+1, err)
			}
			got[i] = append(got[i], ph)
		}
	}
	column := func(ps []phase, f int) []float64 {
		var out []float64
		for _, p := range ps {
			out = append(out, p.fig[f])
		}
		return out
	}
	for f := range nFigures {
		b.rows = append(b.rows, compareRow("with vs without", figureNames[f], figureUnits[f],
			column(got[0], f), column(got[1], f), phaseNotes(f, got[0], got[1])))
	}
	for _, f := range []int{connPod, connSvc} {
		r := compareRow("diagnostic", figureNames[f]+", share raised to "+fmt.Sprint(shareRaised), figureUnits[f],
			column(got[0], f), column(got[2], f), phaseNotes(f, got[0], got[2]))
		r.goal, r.met = "-", "-"
		b.rows = append(b.rows, r)
	}
	return nil
}

// phaseNotes: what could explain a figure (retransmissions, failed or
// slow connections, the datapath's drops).
func phaseNotes(f int, without, with []phase) string {
	sum := func(ps []phase) (rtx int, failed, slow int, syn int64, drops map[string]uint64) {
		drops = map[string]uint64{}
		for _, p := range ps {
			switch f {
			case tputPod, tputSvc:
				rtx += p.rtx[f-tputPod]
			default:
				r := p.rates[f-connPod]
				failed, slow, syn = failed+r.Failed, slow+r.Slow, syn+r.SynRetrans
			}
			for k, v := range p.drops {
				drops[k] += v
			}
		}
		return
	}
	rw, fw, sw, yw, _ := sum(without)
	rd, fd, sd, yd, drops := sum(with)
	if f == tputPod || f == tputSvc {
		return fmt.Sprintf("retransmits %d / %d", rw, rd)
	}
	return fmt.Sprintf("SYN rtx %d / %d, failed %d / %d, >500ms %d / %d; with: %s (all figures)",
		yw, yd, fw, fd, sw, sd, formatDrops(drops))
}

// clusterIP: pod IP and clusterIP alternated with the defences on.
func (b *bench) clusterIP(ctx context.Context) error {
	l := b.lab
	b.applied = b.with
	if err := l.apply(ctx, b.with); err != nil {
		return err
	}
	cli, srv := l.netns("client"), l.netns("server")
	var pod, svc []float64
	var rtx [2]int
	for range b.cfg.pairs {
		g, n, err := iperf(ctx, srv, podIperf, cli, podIperf, b.cfg.secs)
		if err != nil {
			return fmt.Errorf("pod IP: %w", err)
		}
		pod, rtx[0] = append(pod, g), rtx[0]+n
		if g, n, err = iperf(ctx, srv, svcIperf, cli, l.svc(80), b.cfg.secs); err != nil {
			return fmt.Errorf("clusterIP: %w", err)
		}
		svc, rtx[1] = append(svc, g), rtx[1]+n
		fmt.Fprint(os.Stderr, ".")
	}
	ds, err := drops(b.with)
	if err != nil {
		return err
	}
	if err := l.destroy(ctx, b.with); err != nil {
		return err
	}
	b.applied = nil
	b.rows = append(b.rows, compareRow("clusterIP vs pod IP", "throughput, defences on (iperf3, 1 stream, veth)", "Gbit/s",
		pod, svc, fmt.Sprintf("retransmits %d / %d; %s", rtx[0], rtx[1], formatDrops(ds))))
	return nil
}

// elapsed formats a duration in milliseconds.
func elapsed(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

// iperf is benchnode.IperfTo as Gbit/s and retransmissions.
func iperf(ctx context.Context, srvNS string, bind netip.AddrPort, cliNS string, dst netip.AddrPort, secs int) (float64, int, error) {
	r, err := benchnode.IperfTo(ctx, srvNS, bind, cliNS, dst, secs)
	return r.Gbps, r.Retransmits, err
}
