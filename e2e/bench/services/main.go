// Command services benchmarks netreconcile's eBPF service datapath against
// kube-proxy-style iptables rules, on labs built by netreconcile itself,
// and prints one table. All figures come from one run; compare them only
// within it (the machine is shared and noisy).
//
//	sudo go run ./e2e/bench/services [-t 4] [-d 2s] [-n 1,1000,5000,10000]
//
// It measures:
//
//   - iperf3 single stream, same node, per mode (veth, bridge, macvlan): pod
//     IP vs clusterIP with the eBPF datapath (fast path on, and off for
//     veth and bridge), beside plain routing without any datapath and an
//     iptables DNAT clusterIP that the bench writes itself in a lab node's
//     namespace; loopback inside one namespace is the ceiling.
//   - new TCP connections per second to the service matched first and to
//     the one matched last, with N services of two endpoints each: eBPF
//     (services applied by netreconcile) vs kube-proxy's iptables rules with
//     iptables-nft and iptables-legacy. Every measurement uses server ports
//     of its own (a SYN to a port whose TIME_WAIT was left by another
//     address translation is dropped and retried after 1 s) and the SYN
//     retransmissions are counted.
//   - control plane: programming 5000 services of two endpoints from
//     scratch, and one endpoint change: netreconcile apply (the whole
//     command), the datapath's map writes alone, and iptables-restore of
//     the same services (full, and kube-proxy's partial sync).
//
// Two labs: "ebpf" (one node with services, so netreconcile attaches its
// programs) and "ipt" (two nodes without services: n for iptables-nft, l
// for iptables-legacy). Everything lives in namespaces named after a
// random id and in the pin directory /sys/fs/bpf/netreconcile-bench-<id>,
// all removed at the end, also on error or interrupt. iptables runs only
// through `ip netns exec <lab node namespace>`: the root namespace's
// firewall is never touched. iperf3 and iptables are installed with
// apt-get when missing.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/e2e/bench/internal/benchnode"
)

type config struct {
	secs  int
	runs  int
	dur   time.Duration
	sizes []int
	reps  int
}

func main() {
	var c config
	flag.IntVar(&c.secs, "t", 3, "seconds per iperf3 run")
	flag.IntVar(&c.runs, "runs", 3, "iperf3 rounds (every row once per round; the median is shown)")
	flag.DurationVar(&c.dur, "d", 2*time.Second, "duration of each new-connection measurement")
	sizes := flag.String("n", "1,1000,5000,10000", "service counts for the new-connection rate")
	flag.IntVar(&c.reps, "reps", 3, "repetitions of each control-plane measurement (the median is shown)")
	flag.Parse()
	benchnode.RequireRoot("the services bench")
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 20000 {
			fmt.Fprintf(os.Stderr, "-n: bad service count %q (1..20000)\n", s)
			os.Exit(1)
		}
		c.sizes = append(c.sizes, n)
	}
	if c.secs < 1 || c.secs > 60 || c.runs < 1 || c.runs > 9 || c.dur < 100*time.Millisecond || c.dur > time.Minute || c.reps < 1 || c.reps > 9 {
		fmt.Fprintln(os.Stderr, "-t must be 1..60, -runs 1..9, -d 100ms..1m, -reps 1..9")
		os.Exit(1)
	}
	benchnode.Run(func(ctx context.Context) error { return run(ctx, c) })
}

// row is one line of the table.
type row struct{ section, what, value, ratio, of, note string }

type bench struct {
	cfg       config
	ebpf, ipt *lab
	srv       benchnode.ConnServers
	rows      []row
}

func (b *bench) add(r row) {
	b.rows = append(b.rows, r)
	fmt.Fprint(os.Stderr, ".")
}

func run(ctx context.Context, cfg config) error {
	need := map[string]string{"iperf3": "iperf3", "iptables-nft-restore": "iptables", "ss": "iproute2"}
	if err := benchnode.EnsureTools(ctx, need); err != nil {
		return err
	}
	id := benchnode.RandID("sb")
	tmp, err := os.MkdirTemp("", "nr-services-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	pinRoot := "/sys/fs/bpf/netreconcile-bench-" + id
	defer os.RemoveAll(pinRoot)
	bin := filepath.Join(tmp, "netreconcile")
	if err := benchnode.BuildBinary(ctx, bin); err != nil {
		return err
	}
	b := &bench{cfg: cfg}
	b.ebpf = &lab{name: "ebpf", id: id, bin: bin, dir: tmp, pinRoot: pinRoot,
		nodes: []node{{"e", "172.31.1.2/24", "10.244.1.0/24"}},
		pods: []pod{
			{name: "v1", node: "e", ip: "10.244.1.10", mode: "veth"},
			{name: "v2", node: "e", ip: "10.244.1.11", mode: "veth", labels: map[string]string{"tp": "veth", "rate": "yes", "edit": "x"}},
			{name: "v3", node: "e", ip: "10.244.1.12", mode: "veth", labels: map[string]string{"rate": "yes", "edit": "x"}},
			{name: "b1", node: "e", ip: "10.244.1.20", mode: "bridge"},
			{name: "b2", node: "e", ip: "10.244.1.21", mode: "bridge", labels: map[string]string{"tp": "bridge"}},
			{name: "m1", node: "e", ip: "10.244.1.30", mode: "macvlan"},
			{name: "m2", node: "e", ip: "10.244.1.31", mode: "macvlan", labels: map[string]string{"tp": "macvlan"}},
		}}
	b.ipt = &lab{name: "ipt", id: id, bin: bin, dir: tmp, pinRoot: pinRoot,
		nodes: []node{{"n", "172.31.1.2/24", "10.244.1.0/24"}, {"l", "172.31.1.3/24", "10.244.2.0/24"}},
		pods: []pod{
			{name: "nv1", node: "n", ip: "10.244.1.10", mode: "veth"},
			{name: "nv2", node: "n", ip: "10.244.1.11", mode: "veth"},
			{name: "nv3", node: "n", ip: "10.244.1.12", mode: "veth"},
			{name: "nb1", node: "n", ip: "10.244.1.20", mode: "bridge"},
			{name: "nb2", node: "n", ip: "10.244.1.21", mode: "bridge"},
			{name: "nm1", node: "n", ip: "10.244.1.30", mode: "macvlan"},
			{name: "nm2", node: "n", ip: "10.244.1.31", mode: "macvlan"},
			{name: "lv1", node: "l", ip: "10.244.2.10", mode: "veth"},
			{name: "lv2", node: "l", ip: "10.244.2.11", mode: "veth"},
			{name: "lv3", node: "l", ip: "10.244.2.12", mode: "veth"},
			{name: "lb1", node: "l", ip: "10.244.2.20", mode: "bridge"},
			{name: "lb2", node: "l", ip: "10.244.2.21", mode: "bridge"},
			{name: "lm1", node: "l", ip: "10.244.2.30", mode: "macvlan"},
			{name: "lm2", node: "l", ip: "10.244.2.31", mode: "macvlan"},
		}}
	for i, m := range modes {
		b.ebpf.services = append(b.ebpf.services,
			service{name: "tp-" + m, ip: fmt.Sprintf("10.96.1.%d", i+1), port: portEBPF + i, targetPort: portEBPF + i, selector: map[string]string{"tp": m}},
			service{name: "tpoff-" + m, ip: fmt.Sprintf("10.96.2.%d", i+1), port: portOff + i, targetPort: portOff + i, selector: map[string]string{"tp": m}})
	}
	defer b.srv.Stop()
	defer b.ebpf.down()
	defer b.ipt.down()
	fmt.Fprintf(os.Stderr, "labs %s: ", id)
	if err := b.ebpf.up(ctx); err != nil {
		return err
	}
	if err := b.ipt.up(ctx); err != nil {
		return err
	}
	start := time.Now()
	if err := b.throughput(ctx); err != nil {
		return err
	}
	if err := b.connRates(ctx); err != nil {
		return err
	}
	if err := b.controlPlane(ctx); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, " done in %v\n", time.Since(start).Round(time.Second))
	b.print()
	return nil
}

var modes = []string{"veth", "bridge", "macvlan"}

// Server ports. Every measurement has ports of its own (see the package
// documentation on TIME_WAIT).
const (
	portPlain   = 5301 // + mode: pod IP, no datapath, no rules
	portIptPod  = 5311 // + mode: pod IP, iptables rules loaded
	portIptSvc  = 5321 // + mode: iptables DNAT clusterIP
	portEBPFPod = 5331 // + mode: pod IP, eBPF datapath
	portEBPF    = 5341 // + mode: eBPF clusterIP
	portOffPod  = 5351 // + mode: pod IP, eBPF fast path off
	portOff     = 5361 // + mode: eBPF clusterIP, fast path off
	portRate    = 20000
)

func gbps(v float64) string { return fmt.Sprintf("%.1f Gbit/s", v) }

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// tput is one iperf3 row of the table.
type tput struct {
	what          string
	of            int    // index of the row its ratio is taken against
	ofName        string // how that row is named in the table
	srvNS, bindIP string
	cliNS, dst    string
	port          int
	fastPathOff   bool
	gbps          []float64
	rtx           []int
	versus        string // another row's name for a second ratio in the notes
	versusIdx     int
}

// throughput: iperf3 per mode, pod IP vs clusterIP, eBPF vs iptables DNAT,
// in rounds (every row once per round, the median shown) so that a slow
// spell of the shared machine touches all rows alike.
func (b *bench) throughput(ctx context.Context) error {
	e, n := b.ebpf, b.ipt
	v1 := e.pod("v1")
	rows := []*tput{{what: "loopback, one netns (the ceiling)", of: 0, ofName: "loopback",
		srvNS: e.netns(v1), bindIP: "127.0.0.1", cliNS: e.netns(v1), dst: "127.0.0.1", port: 5300}}
	plainIdx := map[string]int{}
	for i, m := range modes {
		pair := func(l *lab, prefix string) (pod, pod) {
			return l.pod(prefix + m[:1] + "1"), l.pod(prefix + m[:1] + "2")
		}
		lc, ls := pair(n, "l")
		plainIdx[m] = len(rows)
		rows = append(rows, &tput{what: m + ": pod IP, no datapath, no rules", of: 0, ofName: "loopback",
			srvNS: n.netns(ls), bindIP: ls.ip, cliNS: n.netns(lc), dst: ls.ip, port: portPlain + i})
		nc, ns := pair(n, "n")
		iptPod := len(rows)
		rows = append(rows, &tput{what: m + ": pod IP, iptables rules loaded", of: plainIdx[m], ofName: "no rules",
			srvNS: n.netns(ns), bindIP: ns.ip, cliNS: n.netns(nc), dst: ns.ip, port: portIptPod + i})
		iptSvc := len(rows)
		rows = append(rows, &tput{what: m + ": clusterIP, iptables DNAT", of: iptPod, ofName: "its pod IP",
			srvNS: n.netns(ns), bindIP: ns.ip, cliNS: n.netns(nc), dst: fmt.Sprintf("10.96.9.%d", i+1), port: portIptSvc + i})
		ec, es := pair(e, "")
		path := "fast path"
		if m == "macvlan" {
			path = "in the pod"
		}
		ePod := len(rows)
		rows = append(rows, &tput{what: m + ": pod IP, eBPF " + path, of: plainIdx[m], ofName: "no datapath",
			srvNS: e.netns(es), bindIP: es.ip, cliNS: e.netns(ec), dst: es.ip, port: portEBPFPod + i})
		rows = append(rows, &tput{what: m + ": clusterIP, eBPF " + path, of: ePod, ofName: "its pod IP",
			srvNS: e.netns(es), bindIP: es.ip, cliNS: e.netns(ec), dst: fmt.Sprintf("10.96.1.%d", i+1), port: portEBPF + i,
			versus: "iptables DNAT", versusIdx: iptSvc})
		if m == "macvlan" {
			continue // no fast path to switch off
		}
		offPod := len(rows)
		rows = append(rows, &tput{what: m + ": pod IP, eBPF, fast path off", of: plainIdx[m], ofName: "no datapath",
			srvNS: e.netns(es), bindIP: es.ip, cliNS: e.netns(ec), dst: es.ip, port: portOffPod + i, fastPathOff: true})
		rows[ePod].versus, rows[ePod].versusIdx = "fast path off", offPod
		rows = append(rows, &tput{what: m + ": clusterIP, eBPF, fast path off", of: offPod, ofName: "its pod IP",
			srvNS: e.netns(es), bindIP: es.ip, cliNS: e.netns(ec), dst: fmt.Sprintf("10.96.2.%d", i+1), port: portOff + i, fastPathOff: true})
	}

	// The iptables DNAT clusterIPs, as in the article: DNAT in PREROUTING;
	// the bridge's replies are un-NATed by br_netfilter
	// (bridge-nf-call-iptables is 1 in the node namespace); macvlan
	// replies would bypass the node, so they are masqueraded.
	var rules strings.Builder
	rules.WriteString("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n")
	for i, m := range modes {
		c, s := n.pod("n"+m[:1]+"1"), n.pod("n"+m[:1]+"2")
		fmt.Fprintf(&rules, "-A PREROUTING -d 10.96.9.%d/32 -p tcp -m tcp --dport %d -j DNAT --to-destination %s:%d\n", i+1, portIptSvc+i, s.ip, portIptSvc+i)
		if m == "macvlan" {
			fmt.Fprintf(&rules, "-A POSTROUTING -s %s/32 -d %s/32 -j MASQUERADE\n", c.ip, s.ip)
		}
	}
	rules.WriteString("COMMIT\n")
	if _, err := backends[0].restore(ctx, n.nodeNS("n"), rules.String(), false); err != nil {
		return err
	}
	fp, err := datapath.Open(e.pinDir("e"))
	if err != nil {
		return err
	}
	defer fp.Close()
	setFastPath := func(on bool) error {
		c, err := fp.Config()
		if err != nil {
			return err
		}
		c.FastPath = on
		return fp.SetConfig(c)
	}
	for range b.cfg.runs {
		for _, r := range rows {
			if r.fastPathOff {
				if err := setFastPath(false); err != nil {
					return err
				}
			}
			res, err := benchnode.Iperf(ctx, r.srvNS, r.bindIP, r.cliNS, r.dst, r.port, b.cfg.secs)
			if r.fastPathOff {
				if err := setFastPath(true); err != nil {
					return err
				}
			}
			if err != nil {
				return fmt.Errorf("%s: %w", r.what, err)
			}
			r.gbps, r.rtx = append(r.gbps, res.Gbps), append(r.rtx, res.Retransmits)
			fmt.Fprint(os.Stderr, ".")
		}
	}
	med := func(r *tput) float64 { return benchnode.Median(r.gbps) }
	for _, r := range rows {
		note := fmt.Sprintf("runs %s; retransmits %s", fmtFloats(r.gbps), fmtInts(r.rtx))
		if r.versus != "" {
			note = fmt.Sprintf("%s x %s; %s", ratio(med(r), med(rows[r.versusIdx])), r.versus, note)
		}
		b.add(row{"iperf3", r.what, gbps(med(r)), ratio(med(r), med(rows[r.of])), r.ofName, note})
	}
	return nil
}

func fmtFloats(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.1f", x)
	}
	return strings.Join(s, " ")
}

func fmtInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, " ")
}

// rateIP is the clusterIP of service i of the new-connection runs.
func rateIP(i int) string { return fmt.Sprintf("10.96.%d.%d", 32+i/250, i%250+1) }

// ratePorts are the backend ports of the first and the last service for
// size index k and datapath index j (0 eBPF, 1 nft, 2 legacy).
func ratePorts(k, j int) (first, last int) {
	first = portRate + 100*j + 10*k
	return first, first + 1
}

// slices is how many slices each new-connection point is measured in:
// the six points of one size (three datapaths, first and last) take turns
// slice by slice, so that a slow spell of the machine touches all alike.
const slices = 4

// connRates: new connections per second to the first and the last
// service, for each size, eBPF vs both iptables backends.
func (b *bench) connRates(ctx context.Context) error {
	e, n := b.ebpf, b.ipt
	v2, v3 := e.pod("v2"), e.pod("v3")
	iptNodes := []struct {
		suffix, client string
		eps            []pod
	}{{"n", "nv1", []pod{n.pod("nv2"), n.pod("nv3")}}, {"l", "lv1", []pod{n.pod("lv2"), n.pod("lv3")}}}
	// servers on every port any run will use
	for k := range b.cfg.sizes {
		for j := range 3 {
			first, last := ratePorts(k, j)
			for _, port := range []int{first, last} {
				var err error
				if j == 0 {
					err = b.listenAll(e, []pod{v2, v3}, port)
				} else {
					err = b.listenAll(n, iptNodes[j-1].eps, port)
				}
				if err != nil {
					return err
				}
			}
		}
	}
	clients := []string{e.netns(e.pod("v1")), n.netns(n.pod("nv1")), n.netns(n.pod("lv1"))}
	// wider ephemeral ranges in the clients (their own namespaces)
	for _, ns := range clients {
		if _, err := nsExec(ctx, ns, "", "sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535"); err != nil {
			return err
		}
	}
	names := []string{"eBPF", backends[0].name, backends[1].name}
	for k, size := range b.cfg.sizes {
		// eBPF: the services through netreconcile; iptables: the rules.
		first, last := ratePorts(k, 0)
		e.services = rateServices(size, first, last)
		took, err := e.apply(ctx, "e")
		if err != nil {
			return err
		}
		notes := []string{fmt.Sprintf("netreconcile apply to %d services: %v", size, took.Round(time.Millisecond)), "", ""}
		for j, ipt := range backends {
			nd := iptNodes[j]
			first, last := ratePorts(k, j+1)
			rules := kubeRules(kubeServices(size, first, last, nd.eps), "10.244.0.0/16")
			load, err := ipt.restore(ctx, n.nodeNS(nd.suffix), rules, false)
			if err != nil {
				return err
			}
			count, err := ipt.ruleCount(ctx, n.nodeNS(nd.suffix))
			if err != nil {
				return err
			}
			notes[j+1] = fmt.Sprintf("%d nat rules, restore %v", count, load.Round(time.Millisecond))
		}
		var res [3][2]benchnode.Rate // datapath, first/last
		for range slices {
			for j := range 3 {
				for t, ip := range []string{rateIP(0), rateIP(size - 1)} {
					dst := netip.AddrPortFrom(netip.MustParseAddr(ip), 80)
					r, err := benchnode.ConnRate(ctx, clients[j], dst, b.cfg.dur/slices)
					if err != nil {
						return fmt.Errorf("%s, %d services, to %s: %w", names[j], size, ip, err)
					}
					res[j][t].Add(r)
				}
			}
			fmt.Fprint(os.Stderr, ".")
		}
		for j, p := range res {
			what := fmt.Sprintf("%s, %d services: first / last", names[j], size)
			val := fmt.Sprintf("%.0f / %.0f conn/s", p[0].PerSec(), p[1].PerSec())
			note := fmt.Sprintf("SYN rtx %d/%d, failed %d/%d, >500ms %d/%d; %s", p[0].SynRetrans, p[1].SynRetrans,
				p[0].Failed, p[1].Failed, p[0].Slow, p[1].Slow, notes[j])
			b.add(row{"new conns", what, val, ratio(p[1].PerSec(), p[0].PerSec()), "last/first", note})
		}
		b.add(row{"new conns", fmt.Sprintf("eBPF vs iptables-nft, %d services, last", size), "",
			ratio(res[0][1].PerSec(), res[1][1].PerSec()), "eBPF/nft", fmt.Sprintf("vs legacy: %s", ratio(res[0][1].PerSec(), res[2][1].PerSec()))})
	}
	return nil
}

func (b *bench) listenAll(l *lab, pods []pod, port int) error {
	for _, p := range pods {
		if err := b.srv.Listen(l.netns(p), netip.MustParseAddr(p.ip), port); err != nil {
			return err
		}
	}
	return nil
}

// rateServices are size services of two endpoints (v2 and v3); the first
// and the last have backend ports of their own, the others a port nothing
// listens on. The first selects its endpoints by the label "edit", so
// that one endpoint of it alone can change.
func rateServices(size, first, last int) []service {
	out := make([]service, size)
	for i := range out {
		out[i] = service{name: fmt.Sprintf("s%d", i), ip: rateIP(i), port: 80, targetPort: 9, selector: map[string]string{"rate": "yes"}}
	}
	out[size-1].targetPort = last
	out[0].targetPort = first
	out[0].selector = map[string]string{"edit": "x"}
	return out
}

// kubeServices are the same services for kube-proxy's rules.
func kubeServices(size, first, last int, eps []pod) []kubeService {
	out := make([]kubeService, size)
	for i, s := range rateServices(size, first, last) {
		out[i] = kubeService{name: s.name, ip: s.ip, port: s.port}
		for _, p := range eps {
			out[i].endpoints = append(out[i].endpoints, fmt.Sprintf("%s:%d", p.ip, s.targetPort))
		}
	}
	return out
}

func ms(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%.3f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.1f ms", float64(d)/1e6)
}

// controlPlane: 5000 services of two endpoints from scratch, and one
// endpoint change, through netreconcile and through iptables-restore.
func (b *bench) controlPlane(ctx context.Context) error {
	const size = 5000
	e, n := b.ebpf, b.ipt
	reps := b.cfg.reps
	svcs := rateServices(size, 9, 9)
	v3 := func() *pod {
		for i := range e.pods {
			if e.pods[i].name == "v3" {
				return &e.pods[i]
			}
		}
		panic("no v3")
	}()

	// netreconcile: from no datapath at all to 5000 services.
	var scratch, change []time.Duration
	for range reps {
		e.services = nil
		if _, err := e.apply(ctx, "e"); err != nil {
			return err
		}
		e.services = svcs
		took, err := e.apply(ctx, "e")
		if err != nil {
			return err
		}
		scratch = append(scratch, took)
	}
	var noop []time.Duration
	for range reps {
		start := time.Now()
		if out, err := exec.CommandContext(ctx, e.bin, "plan", "--detailed-exitcode", "-f", e.file, "--node", e.node("e"),
			"--node-netns", e.nodeNS("e"), "--state-dir", e.stateDir(), "--bpffs", e.pinDir("e")).CombinedOutput(); err != nil {
			return fmt.Errorf("plan after apply: %w\n%s", err, benchnode.Tail(string(out), 15))
		}
		noop = append(noop, time.Since(start))
	}
	for i := range 2 * reps {
		if i%2 == 0 {
			v3.labels = map[string]string{"rate": "yes"} // leaves s0
		} else {
			v3.labels = map[string]string{"rate": "yes", "edit": "x"}
		}
		took, err := e.apply(ctx, "e")
		if err != nil {
			return err
		}
		change = append(change, took)
	}
	// the datapath's map writes alone, in this process
	dir := filepath.Join(e.pinRoot, "scratch")
	d, err := datapath.Open(dir)
	if err != nil {
		return err
	}
	defer datapath.Destroy(dir)
	defer d.Close()
	b1, b2 := datapath.Backend{IP: netip.MustParseAddr("10.244.1.11"), Port: 8080}, datapath.Backend{IP: netip.MustParseAddr("10.244.1.12"), Port: 8080}
	start := time.Now()
	for i := range size {
		k := datapath.ServiceKey{IP: netip.MustParseAddr(rateIP(i)), Port: 80, Proto: datapath.ProtoTCP}
		if err := d.SetService(datapath.Service{Key: k, Backends: []datapath.Backend{b1, b2}}); err != nil {
			return err
		}
	}
	mapScratch := time.Since(start)
	var mapChange []time.Duration
	k0 := datapath.ServiceKey{IP: netip.MustParseAddr(rateIP(0)), Port: 80, Proto: datapath.ProtoTCP}
	for i := range 101 {
		bs := []datapath.Backend{b1}
		if i%2 == 1 {
			bs = append(bs, b2)
		}
		start := time.Now()
		if err := d.SetService(datapath.Service{Key: k0, Backends: bs}); err != nil {
			return err
		}
		mapChange = append(mapChange, time.Since(start))
	}

	// iptables-restore of the same services, from an empty nat table.
	type iptRes struct{ scratch, full, partial []time.Duration }
	var ipts [2]iptRes
	for j, ipt := range backends {
		ns := n.nodeNS([]string{"n", "l"}[j])
		eps := []pod{n.pod([]string{"nv2", "lv2"}[j]), n.pod([]string{"nv3", "lv3"}[j])}
		ks := kubeServices(size, 9, 9, eps)
		all := kubeRules(ks, "10.244.0.0/16")
		for range reps {
			if _, err := ipt.restore(ctx, ns, emptyNat, false); err != nil {
				return err
			}
			took, err := ipt.restore(ctx, ns, all, false)
			if err != nil {
				return err
			}
			ipts[j].scratch = append(ipts[j].scratch, took)
		}
		one := append([]kubeService(nil), ks...)
		one[0].endpoints = ks[0].endpoints[:1]
		oneRules := kubeRules(one, "10.244.0.0/16")
		for i := range 2 * reps {
			rules := oneRules
			if i%2 == 1 {
				rules = all
			}
			took, err := ipt.restore(ctx, ns, rules, false)
			if err != nil {
				return err
			}
			ipts[j].full = append(ipts[j].full, took)
		}
		for i := range 2 * reps {
			var rules string
			if i%2 == 0 {
				rules = partialUpdate(one[0], ks[0].endpoints, "10.244.0.0/16")
			} else {
				rules = partialUpdate(ks[0], one[0].endpoints, "10.244.0.0/16")
			}
			took, err := ipt.restore(ctx, ns, rules, true)
			if err != nil {
				return err
			}
			ipts[j].partial = append(ipts[j].partial, took)
		}
	}
	nft := benchnode.Median(ipts[0].scratch)
	what := fmt.Sprintf("%d services x 2 endpoints from scratch", size)
	note := fmt.Sprintf("median of %d", reps)
	b.add(row{"control", what + ": netreconcile apply (whole command)", ms(benchnode.Median(scratch)), ratio(benchnode.Median(scratch).Seconds(), nft.Seconds()), "iptables-nft", note})
	b.add(row{"control", what + ": datapath map writes alone", ms(mapScratch), ratio(mapScratch.Seconds(), nft.Seconds()), "iptables-nft", "in process, one run"})
	for j, ipt := range backends {
		b.add(row{"control", what + ": " + ipt.restoreCmd, ms(benchnode.Median(ipts[j].scratch)), ratio(benchnode.Median(ipts[j].scratch).Seconds(), nft.Seconds()), "iptables-nft", note})
	}
	b.add(row{"control", fmt.Sprintf("no change, %d services: netreconcile plan (whole command)", size), ms(benchnode.Median(noop)), "", "", note + "; parse, observe, diff"})
	what = "one endpoint change"
	b.add(row{"control", what + ": netreconcile apply (whole command)", ms(benchnode.Median(change)), "", "", fmt.Sprintf("median of %d", 2*reps)})
	b.add(row{"control", what + ": datapath map write alone", ms(benchnode.Median(mapChange)), "", "", "median of 101, in process"})
	for j, ipt := range backends {
		b.add(row{"control", what + ": " + ipt.restoreCmd + " (full sync)", ms(benchnode.Median(ipts[j].full)), "", "", fmt.Sprintf("median of %d", 2*reps)})
		b.add(row{"control", what + ": " + ipt.restoreCmd + " --noflush (partial sync)", ms(benchnode.Median(ipts[j].partial)), "", "", fmt.Sprintf("median of %d", 2*reps)})
	}
	return nil
}

func (b *bench) print() {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "section\tmeasurement\tvalue\tratio\tratio of\tnotes\n")
	for _, r := range b.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.section, r.what, r.value, r.ratio, r.of, r.note)
	}
	tw.Flush()
	fmt.Printf("iperf3 -t %d single stream; new connections: one client thread, %v per point, server closes first; control plane: 5000 services x 2 endpoints\n",
		b.cfg.secs, b.cfg.dur)
}
