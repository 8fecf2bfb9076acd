// Command egress measures what the egress masquerade costs: single-stream
// TCP throughput (iperf3) from a pod to a host outside the cluster,
// masqueraded (the node's nftables table rewrites the source) and routed
// (the destination is in cluster.egress.nonMasqueradeCIDRs and the
// underlay routes the pod CIDR back), in alternated runs, and prints the
// medians and their ratio (issue 17's goal: >= 0.95). Compare figures
// only within one run (the machine is shared and noisy).
//
//	sudo go run ./e2e/bench/egress [-t 5] [-runs 5]
//
// It builds the netreconcile binary and brings up a lab of one node with
// a veth pod. Two outside addresses go on the loopback of the lab's
// underlay namespace: 198.51.100.10, masqueraded, and 198.51.100.11,
// listed in nonMasqueradeCIDRs, with a route back to the node's pod CIDR
// in the underlay. Both paths are live at once, so runs alternate without
// a reconcile between them. Everything lives in namespaces named after a
// random id (nrlab-eg<hex>*, eg<hex>-*), removed on exit, error or
// interrupt. iperf3 is installed with apt-get when missing.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/netreconcile/netreconcile/e2e/bench/internal/benchnode"
	"github.com/netreconcile/netreconcile/lab"
	"github.com/netreconcile/netreconcile/spec"
)

const (
	masqAddr   = "198.51.100.10"
	routedAddr = "198.51.100.11"
	podIP      = "10.244.1.10"
)

func main() {
	secs := flag.Int("t", 5, "seconds per iperf3 run")
	runs := flag.Int("runs", 5, "runs per path, alternated (the median is shown)")
	flag.Parse()
	benchnode.RequireRoot("egress")
	if *secs < 1 || *secs > 60 || *runs < 1 || *runs > 15 {
		fmt.Fprintln(os.Stderr, "-t must be between 1 and 60, -runs between 1 and 15")
		os.Exit(1)
	}
	benchnode.Run(func(ctx context.Context) error { return run(ctx, *secs, *runs) })
}

func run(ctx context.Context, secs, runs int) error {
	if err := benchnode.EnsureTools(ctx, map[string]string{"iperf3": "iperf3", "nft": "nftables"}); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "nr-egress-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	id := benchnode.RandID("eg")
	bin, file := filepath.Join(tmp, "netreconcile"), filepath.Join(tmp, "topo.yaml")
	if err := benchnode.BuildBinary(ctx, bin); err != nil {
		return err
	}
	node, pod := id+"a", id+"-p"
	topo := fmt.Sprintf(`apiVersion: netreconcile/v1
kind: Topology
cluster:
  podCIDR: 10.244.0.0/16
  egress: {nonMasqueradeCIDRs: [%s/32]}
nodes: [{name: %s, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}]
pods: [{name: p, namespace: eg, node: %s, ip: %s, netns: %s}]
`, routedAddr, node, node, podIP, pod)
	if err := os.WriteFile(file, []byte(topo), 0o644); err != nil {
		return err
	}
	r, err := spec.LoadFiles(file)
	if err != nil {
		return err
	}
	down, err := benchnode.LabUp(ctx, bin, file, "--state-dir", filepath.Join(tmp, "state"))
	defer down()
	if err != nil {
		return err
	}
	ul := lab.UnderlayNetns(r)
	if err := outside(ctx, ul, "nrlab-"+node); err != nil {
		return err
	}
	paths := []struct{ name, addr string }{{"masqueraded", masqAddr}, {"routed (nonMasqueradeCIDRs)", routedAddr}}
	gbps := make([][]float64, len(paths))
	retr := make([][]int, len(paths))
	port := 5201
	for i := range runs * len(paths) {
		p := i % len(paths)
		if i/len(paths)%2 == 1 {
			p = len(paths) - 1 - p // ABBA: neither path always goes first
		}
		res, err := benchnode.Iperf(ctx, ul, paths[p].addr, pod, paths[p].addr, port, secs)
		if err != nil {
			return fmt.Errorf("%s: %w", paths[p].name, err)
		}
		port++
		gbps[p], retr[p] = append(gbps[p], res.Gbps), append(retr[p], res.Retransmits)
		fmt.Fprint(os.Stderr, ".")
	}
	fmt.Fprintln(os.Stderr)
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "pod -> outside host\tGbit/s (median)\tmin\tmax\tretransmits (median)\t")
	for p, path := range paths {
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%d\t\n", path.name, benchnode.Median(gbps[p]), minOf(gbps[p]), maxOf(gbps[p]), benchnode.Median(retr[p]))
	}
	tw.Flush()
	fmt.Printf("single-stream TCP, iperf3 -t %d, %d alternated runs per path\n", secs, runs)
	fmt.Print(b.String())
	ratio := benchnode.Median(gbps[0]) / benchnode.Median(gbps[1])
	verdict := "meets"
	if ratio < 0.95 {
		verdict = "misses"
	}
	fmt.Printf("masqueraded / routed = %.3f (%s the goal of >= 0.95)\n", ratio, verdict)
	return nil
}

// outside puts the two outside addresses on the underlay ul's loopback
// with a route back to the pod CIDR, and checks that node namespace ns
// has its masquerade table.
func outside(ctx context.Context, ul, ns string) error {
	for _, args := range [][]string{
		{"addr", "add", masqAddr + "/32", "dev", "lo"}, {"addr", "add", routedAddr + "/32", "dev", "lo"},
		{"route", "add", "10.244.1.0/24", "via", "172.31.1.2"},
	} {
		if out, err := exec.CommandContext(ctx, "ip", append([]string{"-n", ul}, args...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip -n %s %s: %w\n%s", ul, strings.Join(args, " "), err, out)
		}
	}
	if out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "nft", "list", "table", "ip", "netreconcile").CombinedOutput(); err != nil {
		return fmt.Errorf("the masquerade table is missing in %s: %w\n%s", ns, err, out)
	}
	return nil
}

func minOf(xs []float64) float64 {
	m := xs[0]
	for _, x := range xs {
		m = min(m, x)
	}
	return m
}

func maxOf(xs []float64) float64 {
	m := xs[0]
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
