// Command throughput measures single-stream TCP throughput between pods
// with iperf3, for each pod mode on one node and across nodes (direct
// routes vs VXLAN), beside loopback inside one namespace (the ceiling of
// this machine). It prints one table; compare figures only within one run
// (the machine is shared and noisy).
//
//	sudo go run ./e2e/bench/throughput [-t 5] [-runs 1]
//
// It builds the netreconcile binary, brings up a lab of three nodes (a and
// b on one underlay subnet, c behind the lab's router) with a veth, a
// bridge and a macvlan pod pair on a and one pod of each mode on b and c,
// runs iperf3 between them, and takes the lab down again, also on error or
// interrupt. Everything lives in namespaces named after a random id
// (nrlab-tp<hex>*, tp<hex>-*). iperf3 is installed with apt-get when
// missing.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/netreconcile/netreconcile/e2e/bench/internal/benchnode"
)

type pod struct{ name, node, ip, mode string }

type row struct {
	scenario, mode string
	from, to       pod
	loopback       bool
}

func main() {
	secs := flag.Int("t", 5, "seconds per iperf3 run")
	runs := flag.Int("runs", 1, "iperf3 runs per row (the median is shown)")
	flag.Parse()
	benchnode.RequireRoot("throughput")
	if *secs < 1 || *secs > 60 || *runs < 1 || *runs > 9 {
		fmt.Fprintln(os.Stderr, "-t must be between 1 and 60, -runs between 1 and 9")
		os.Exit(1)
	}
	benchnode.Run(func(ctx context.Context) error { return run(ctx, *secs, *runs) })
}

// lab is the benchmark's cluster.
type lab struct {
	id, bin, file, stateDir string
	pods                    []pod
}

func (l *lab) node(s string) string { return l.id + s }
func (l *lab) netns(p pod) string   { return l.id + "-" + p.name }
func (l *lab) pod(name string) pod {
	for _, p := range l.pods {
		if p.name == name {
			return p
		}
	}
	panic("no pod " + name)
}

func run(ctx context.Context, secs, runs int) error {
	if err := benchnode.EnsureTools(ctx, map[string]string{"iperf3": "iperf3"}); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "nr-throughput-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	l := &lab{id: benchnode.RandID("tp"), bin: filepath.Join(tmp, "netreconcile"), file: filepath.Join(tmp, "topo.yaml"),
		stateDir: filepath.Join(tmp, "state")}
	if err := benchnode.BuildBinary(ctx, l.bin); err != nil {
		return err
	}
	l.pods = []pod{
		{"av1", "a", "10.244.1.10", "veth"}, {"av2", "a", "10.244.1.11", "veth"},
		{"ab1", "a", "10.244.1.20", "bridge"}, {"ab2", "a", "10.244.1.21", "bridge"},
		{"am1", "a", "10.244.1.30", "macvlan"}, {"am2", "a", "10.244.1.31", "macvlan"},
		{"bv", "b", "10.244.2.10", "veth"}, {"bb", "b", "10.244.2.20", "bridge"}, {"bm", "b", "10.244.2.30", "macvlan"},
		{"cv", "c", "10.244.3.10", "veth"}, {"cb", "c", "10.244.3.20", "bridge"}, {"cm", "c", "10.244.3.30", "macvlan"},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: netreconcile/v1\nkind: Topology\ncluster: {podCIDR: 10.244.0.0/16, routing: {mode: auto}}\nnodes:\n")
	fmt.Fprintf(&b, "  - {name: %s, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}\n", l.node("a"))
	fmt.Fprintf(&b, "  - {name: %s, address: 172.31.1.3/24, podCIDR: 10.244.2.0/24}\n", l.node("b"))
	fmt.Fprintf(&b, "  - {name: %s, address: 172.31.2.2/24, podCIDR: 10.244.3.0/24}\npods:\n", l.node("c"))
	for _, p := range l.pods {
		fmt.Fprintf(&b, "  - {name: %s, namespace: tp, node: %s, ip: %s, mode: %s, netns: %s}\n", p.name, l.node(p.node), p.ip, p.mode, l.netns(p))
	}
	if err := os.WriteFile(l.file, []byte(b.String()), 0o644); err != nil {
		return err
	}
	down, err := benchnode.LabUp(ctx, l.bin, l.file, "--state-dir", l.stateDir)
	defer down()
	if err != nil {
		return err
	}
	mtu, _ := exec.Command("ip", "-n", l.netns(l.pods[0]), "-o", "link", "show", "eth0").Output()
	rows := []row{{scenario: "loopback, one netns", mode: "-", from: l.pod("av1"), loopback: true}}
	modes := []struct{ mode, a1, a2, b, c string }{
		{"veth", "av1", "av2", "bv", "cv"}, {"bridge", "ab1", "ab2", "bb", "cb"}, {"macvlan", "am1", "am2", "bm", "cm"},
	}
	for _, m := range modes {
		rows = append(rows, row{scenario: "same node", mode: m.mode, from: l.pod(m.a1), to: l.pod(m.a2)})
	}
	for _, m := range modes {
		rows = append(rows, row{scenario: "across nodes, direct", mode: m.mode, from: l.pod(m.a1), to: l.pod(m.b)})
	}
	for _, m := range modes {
		rows = append(rows, row{scenario: "across nodes, VXLAN", mode: m.mode, from: l.pod(m.a1), to: l.pod(m.c)})
	}
	var b2 strings.Builder
	tw := tabwriter.NewWriter(&b2, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tmode\tGbit/s\t% of loopback\tretransmits\t")
	var ceiling float64
	port := 5201
	for _, r := range rows {
		var all []benchnode.IperfResult
		for range runs {
			if err := ctx.Err(); err != nil {
				return err
			}
			res, err := l.iperf(ctx, r, port, secs)
			if err != nil {
				return fmt.Errorf("%s %s: %w", r.scenario, r.mode, err)
			}
			port++
			all = append(all, res)
			fmt.Fprint(os.Stderr, ".")
		}
		sort.Slice(all, func(i, j int) bool { return all[i].Gbps < all[j].Gbps })
		res := all[len(all)/2]
		if r.loopback {
			ceiling = res.Gbps
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.0f%%\t%d\t\n", r.scenario, r.mode, res.Gbps, 100*res.Gbps/ceiling, res.Retransmits)
	}
	tw.Flush()
	fmt.Fprintln(os.Stderr)
	fmt.Printf("single-stream TCP, iperf3 -t %d, median of %d; pod MTU %s (the cluster uses VXLAN)\n", secs, runs, field(string(mtu), "mtu"))
	fmt.Print(b2.String())
	return nil
}

func field(s, name string) string {
	f := strings.Fields(s)
	for i := range f {
		if f[i] == name && i+1 < len(f) {
			return f[i+1]
		}
	}
	return "?"
}

// iperf runs one iperf3 test: a one-off server in the destination pod
// (or in the source pod on 127.0.0.1 for loopback), the client in the
// source pod.
func (l *lab) iperf(ctx context.Context, r row, port, secs int) (benchnode.IperfResult, error) {
	srvNS, addr := l.netns(r.to), r.to.ip
	if r.loopback {
		srvNS, addr = l.netns(r.from), "127.0.0.1"
	}
	return benchnode.Iperf(ctx, srvNS, addr, l.netns(r.from), addr, port, secs)
}
