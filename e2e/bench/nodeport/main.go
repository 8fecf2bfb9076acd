// Command nodeport measures the node's edge of the service datapath:
// single-stream TCP throughput through a nodePort against the same
// through a clusterIP, and the rate of short connections from a node's
// own processes to a clusterIP against the same to the backend's pod IP.
// It prints one table of medians and the ratios; compare figures only
// within one run (the machine is shared and noisy).
//
//	sudo go run ./e2e/bench/nodeport [-t 5] [-runs 3] [-conn 3s]
//
// The pairings keep everything but the way in equal. Throughput: the
// client is node a's own namespace, the server a pod on node b, and the
// path node a -> underlay -> node b -> pod in both rows; the nodePort
// row enters at node b's uplink program (and is source-NATed to node b,
// externalTrafficPolicy Cluster), the clusterIP row at node a's service
// device. Rows for the outside host (the lab underlay's loopback) and for
// a pod client are printed too, without a ratio. Connection rate: node
// a's own namespace to the clusterIP (through the service device) and to
// the pod IP (routed), the same backend on node b. Rows run alternately,
// runs times each, and each row's median is shown.
//
// Everything lives in namespaces named after a random id (nrlab-np<hex>*,
// np<hex>-*), taken down on exit, error or interrupt.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/netreconcile/netreconcile/e2e/bench/internal/benchnode"
	"github.com/netreconcile/netreconcile/lab"
	"github.com/netreconcile/netreconcile/spec"
)

var (
	outside  = netip.MustParseAddr("198.51.100.10")
	nodeA    = netip.MustParseAddr("172.31.1.2")
	nodeB    = netip.MustParseAddr("172.31.1.3")
	srvIP    = netip.MustParseAddr("10.244.2.10")
	cluster  = netip.MustParseAddr("10.96.0.10")
	iperfP   = 5201
	connP    = 7000
	nodePort = 30201
)

func main() {
	secs := flag.Int("t", 5, "seconds per iperf3 run")
	runs := flag.Int("runs", 3, "runs per row, alternated (the median is shown)")
	conn := flag.Duration("conn", 3*time.Second, "duration of one connection-rate run")
	flag.Parse()
	benchnode.RequireRoot("nodeport")
	if *secs < 1 || *secs > 60 || *runs < 1 || *runs > 9 || *conn < time.Second || *conn > time.Minute {
		fmt.Fprintln(os.Stderr, "-t must be between 1 and 60, -runs between 1 and 9, -conn between 1s and 1m")
		os.Exit(1)
	}
	benchnode.Run(func(ctx context.Context) error { return run(ctx, *secs, *runs, *conn) })
}

type benchLab struct{ id, bin, file, stateDir, underlay string }

func (l *benchLab) node(s string) string   { return l.id + s }
func (l *benchLab) nodeNS(s string) string { return "nrlab-" + l.node(s) }
func (l *benchLab) podNS(p string) string  { return l.id + "-" + p }

func (l *benchLab) topo() string {
	var b strings.Builder
	b.WriteString("apiVersion: netreconcile/v1\nkind: Topology\ncluster: {podCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/16, routing: {mode: auto}}\nnodes:\n")
	fmt.Fprintf(&b, "  - {name: %s, address: %s/24, podCIDR: 10.244.1.0/24}\n", l.node("a"), nodeA)
	fmt.Fprintf(&b, "  - {name: %s, address: %s/24, podCIDR: 10.244.2.0/24}\npods:\n", l.node("b"), nodeB)
	fmt.Fprintf(&b, "  - {name: srv, namespace: np, node: %s, ip: %s, netns: %s, labels: {app: srv}}\n", l.node("b"), srvIP, l.podNS("srv"))
	fmt.Fprintf(&b, "  - {name: cli, namespace: np, node: %s, ip: 10.244.1.10, netns: %s}\n", l.node("a"), l.podNS("cli"))
	fmt.Fprintf(&b, "services:\n  - {name: srv, namespace: np, type: NodePort, clusterIP: %s, selector: {app: srv}, ports: [", cluster)
	fmt.Fprintf(&b, "{name: iperf, port: %d, nodePort: %d}, {name: conn, port: %d}]}\n", iperfP, nodePort, connP)
	return b.String()
}

func run(ctx context.Context, secs, runs int, connDur time.Duration) error {
	if err := benchnode.EnsureTools(ctx, map[string]string{"iperf3": "iperf3"}); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "nr-nodeport-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	l := &benchLab{id: benchnode.RandID("np"), bin: filepath.Join(tmp, "netreconcile"), file: filepath.Join(tmp, "topo.yaml"),
		stateDir: filepath.Join(tmp, "state")}
	if err := benchnode.BuildBinary(ctx, l.bin); err != nil {
		return err
	}
	if err := os.WriteFile(l.file, []byte(l.topo()), 0o644); err != nil {
		return err
	}
	down, err := benchnode.LabUp(ctx, l.bin, l.file, "--state-dir", l.stateDir)
	defer down()
	if err != nil {
		return err
	}
	if err := l.addOutside(); err != nil {
		return err
	}
	tput, err := l.throughput(ctx, secs, runs)
	if err != nil {
		return err
	}
	rates, err := l.connRates(ctx, connDur, runs)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr)
	fmt.Print(tput, rates)
	return nil
}

// addOutside puts the outside host on the underlay's loopback.
func (l *benchLab) addOutside() error {
	r, err := spec.LoadBytes("topo.yaml", []byte(l.topo()))
	if err != nil {
		return err
	}
	l.underlay = lab.UnderlayNetns(r)
	for _, args := range [][]string{{"link", "set", "lo", "up"}, {"addr", "add", outside.String() + "/32", "dev", "lo"}} {
		if out, err := exec.Command("ip", append([]string{"-n", l.underlay}, args...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip -n %s %v: %w %s", l.underlay, args, err, out)
		}
	}
	return nil
}

// tputRow is one way to reach the iperf3 server in pod srv on node b.
type tputRow struct {
	name, clientNS string
	dst            netip.AddrPort
}

// throughput measures every row runs times, alternately, and returns the
// table with the nodePort/clusterIP ratio of the paired rows.
func (l *benchLab) throughput(ctx context.Context, secs, runs int) (string, error) {
	rows := []tputRow{
		{"node a -> clusterIP (service device)", l.nodeNS("a"), netip.AddrPortFrom(cluster, uint16(iperfP))},
		{"node a -> nodePort of node b (uplink, SNAT)", l.nodeNS("a"), netip.AddrPortFrom(nodeB, uint16(nodePort))},
		{"outside -> nodePort of node b", l.underlay, netip.AddrPortFrom(nodeB, uint16(nodePort))},
		{"outside -> nodePort of node a (to b, SNAT)", l.underlay, netip.AddrPortFrom(nodeA, uint16(nodePort))},
		{"pod on a -> clusterIP", l.podNS("cli"), netip.AddrPortFrom(cluster, uint16(iperfP))},
	}
	got := make([][]float64, len(rows))
	for range runs {
		for i, r := range rows {
			res, err := benchnode.IperfTo(ctx, l.podNS("srv"), netip.AddrPortFrom(srvIP, uint16(iperfP)), r.clientNS, r.dst, secs)
			if err != nil {
				return "", fmt.Errorf("%s: %w", r.name, err)
			}
			got[i] = append(got[i], res.Gbps)
			fmt.Fprint(os.Stderr, ".")
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "single-stream TCP to a pod on node b, iperf3 -t %d, median of %d alternated runs\n", secs, runs)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\tGbit/s\t")
	med := make([]float64, len(rows))
	for i, r := range rows {
		med[i] = benchnode.Median(got[i])
		fmt.Fprintf(tw, "%s\t%.2f\t\n", r.name, med[i])
	}
	tw.Flush()
	fmt.Fprintf(&b, "ratio nodePort / clusterIP (same client, server and wire path): %.3f (goal >= 0.95)\n\n", med[1]/med[0])
	return b.String(), nil
}

// connRates measures short connections from node a's own namespace to
// the clusterIP and to the pod IP, alternately.
func (l *benchLab) connRates(ctx context.Context, d time.Duration, runs int) (string, error) {
	// Two listeners alike: the pod sees both paths' connections as the
	// same 4-tuple when they share a port, and a connection of one path
	// meeting the TIME_WAIT of the other's (the server closes first)
	// waits for a SYN retransmission: each path gets a port of its own.
	var srv benchnode.ConnServers
	for _, port := range []int{connP, connP + 1} {
		if err := srv.Listen(l.podNS("srv"), srvIP, port); err != nil {
			return "", err
		}
	}
	defer srv.Stop()
	rows := []struct {
		name string
		dst  netip.AddrPort
	}{
		{"node a -> clusterIP", netip.AddrPortFrom(cluster, uint16(connP))},
		{"node a -> pod IP", netip.AddrPortFrom(srvIP, uint16(connP+1))},
	}
	got := make([][]float64, len(rows))
	failed, slow, retrans := make([]int, len(rows)), make([]int, len(rows)), make([]int64, len(rows))
	for range runs {
		for i, r := range rows {
			res, err := benchnode.ConnRate(ctx, l.nodeNS("a"), r.dst, d)
			if err != nil {
				return "", fmt.Errorf("%s: %w", r.name, err)
			}
			got[i] = append(got[i], res.PerSec())
			failed[i] += res.Failed
			slow[i] += res.Slow
			retrans[i] += res.SynRetrans
			fmt.Fprint(os.Stderr, ".")
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "short TCP connections from node a's namespace to a pod on node b, one thread, %s per run, median of %d alternated runs\n", d, runs)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "destination\tconn/s\tfailed\tover 500 ms\tSYN retransmits\t")
	med := make([]float64, len(rows))
	for i, r := range rows {
		med[i] = benchnode.Median(got[i])
		fmt.Fprintf(tw, "%s\t%.0f\t%d\t%d\t%d\t\n", r.name, med[i], failed[i], slow[i], retrans[i])
	}
	tw.Flush()
	fmt.Fprintf(&b, "ratio clusterIP / pod IP: %.3f (goal >= 0.9)\n", med[0]/med[1])
	return b.String(), nil
}
