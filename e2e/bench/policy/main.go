// Command policy measures what network policy costs: single-stream TCP
// throughput (iperf3) and the new-connection rate between two pods of one
// node with 0, 100 and 1000 policies on the node (and without the eBPF
// datapath at all, for reference), and how long compiling and programming
// 1000 policies takes, from scratch and for one policy change. It prints
// one table; compare figures only within one run (the machine is shared
// and noisy).
//
//	sudo go run ./e2e/bench/policy [-t 3] [-rounds 3]
//
// The file declares 500 pods: the two real ones (a client and a server,
// veth pods on node <id>a) and 498 on a node that is declared but never
// built, which only add identities and peers. Every policy applies on the
// real node: the server's ingress or the client's egress, with peers that
// name the declared pods by namespace and labels, ipBlocks, single ports
// and port ranges; two of them allow client -> server on the measured
// ports. Measurements of the configurations are interleaved over rounds
// (in a rotating order) so that drift of the machine hits all alike; the
// median and the best round are shown. Beside them, the cost of the
// datapath itself per packet, from BPF_PROG_TEST_RUN on the live program
// and maps, which the machine's noise does not blur: an established
// connection's packet, and a new connection's first packet judged on both
// sides.
//
// It builds the netreconcile binary, brings up a one-node lab, and takes
// it down again, also on error or interrupt. Everything lives in
// namespaces named after a random id (nrlab-pb<hex>a, pb<hex>-*).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netns"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/e2e/bench/internal/benchnode"
	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/policy/compile"
	"github.com/netreconcile/netreconcile/spec"
)

const (
	iperfPort = 5201
	connPort  = 5300
	declared  = 500
	workers   = 4
)

func main() {
	secs := flag.Int("t", 3, "seconds per throughput and connection-rate measurement")
	rounds := flag.Int("rounds", 3, "rounds over the configurations (the median is shown)")
	flag.Parse()
	benchnode.RequireRoot("policy bench")
	if *secs < 1 || *secs > 60 || *rounds < 1 || *rounds > 9 {
		fmt.Fprintln(os.Stderr, "-t must be between 1 and 60, -rounds between 1 and 9")
		os.Exit(1)
	}
	benchnode.Run(func(ctx context.Context) error { return run(ctx, *secs, *rounds) })
}

type lab struct {
	id, bin, dir, stateDir, labFile string
}

func (l *lab) node() string          { return l.id + "a" }
func (l *lab) netns(p string) string { return l.id + "-" + p }

const (
	clientIP = "10.244.1.10"
	serverIP = "10.244.1.20"
)

// topology writes the benchmark's file with n policies (-1: no policies
// and no service, so no eBPF datapath). changed alters one policy.
func (l *lab) topology(n int, changed bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/16, routing: {mode: direct}}
namespaces:
`)
	for t := range 10 {
		fmt.Fprintf(&b, "  - {name: g%d, labels: {team: t%d}}\n", t, t)
	}
	fmt.Fprintf(&b, `nodes:
  - {name: %s, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}
  - {name: %sghost, address: 172.31.1.9/24, podCIDR: 10.244.8.0/22}
pods:
  - {name: client, namespace: bench, node: %s, ip: %s, mode: veth, netns: %s, labels: {role: client}}
  - {name: server, namespace: bench, node: %s, ip: %s, mode: veth, netns: %s, labels: {role: server},
     ports: [{name: iperf, port: %d}, {name: conn, port: %d}]}
`, l.node(), l.id, l.node(), clientIP, l.netns("client"), l.node(), serverIP, l.netns("server"), iperfPort, connPort)
	for k := range declared - 2 {
		fmt.Fprintf(&b, "  - {name: p%d, namespace: g%d, node: %sghost, labels: {app: app-%d, tier: t%d}, ports: [{name: web, port: %d}]}\n",
			k, k%10, l.id, k, k%7, 8000+k%50)
	}
	if n < 0 {
		return b.String()
	}
	fmt.Fprintf(&b, "services:\n  - {name: svc, namespace: bench, clusterIP: 10.96.0.10, selector: {role: server}, ports: [{port: 80, targetPort: %d}]}\n", connPort)
	if n == 0 {
		return b.String()
	}
	b.WriteString("policies:\n")
	fmt.Fprintf(&b, `  - name: server-in
    namespace: bench
    spec:
      podSelector: {matchLabels: {role: server}}
      ingress: [{from: [{podSelector: {matchLabels: {role: client}}}], ports: [{port: iperf}, {port: conn}]}]
`)
	if n > 1 {
		fmt.Fprintf(&b, `  - name: client-out
    namespace: bench
    spec:
      podSelector: {matchLabels: {role: client}}
      policyTypes: [Egress]
      egress: [{to: [{podSelector: {matchLabels: {role: server}}}], ports: [{port: %d}, {port: %d}]}]
`, iperfPort, connPort)
	}
	for i := 2; i < n; i++ {
		k := i % (declared - 2)
		port := 10000 + i
		if changed && i == n/2 {
			port = 9999
		}
		if i%2 == 0 {
			fmt.Fprintf(&b, `  - name: in-%d
    namespace: bench
    spec:
      podSelector: {matchLabels: {role: server}}
      ingress:
        - from: [{namespaceSelector: {matchLabels: {team: t%d}}, podSelector: {matchLabels: {app: app-%d}}}, {ipBlock: {cidr: 192.0.%d.0/24, except: [192.0.%d.%d/32]}}]
          ports: [{port: %d}, {port: web}]
`, i, k%10, k, i%256, i%256, i%200, port)
		} else {
			fmt.Fprintf(&b, `  - name: out-%d
    namespace: bench
    spec:
      podSelector: {matchLabels: {role: client}}
      policyTypes: [Egress]
      egress:
        - to: [{namespaceSelector: {}, podSelector: {matchLabels: {tier: t%d, app: app-%d}}}]
          ports: [{port: %d, endPort: %d, protocol: UDP}, {port: web}]
`, i, k%7, k, port, port+20)
		}
	}
	return b.String()
}

func (l *lab) write(name, content string) (string, error) {
	p := filepath.Join(l.dir, name)
	return p, os.WriteFile(p, []byte(content), 0o644)
}

func (l *lab) nr(ctx context.Context, args ...string) (string, error) {
	args = append(args, "--state-dir", l.stateDir)
	out, err := exec.CommandContext(ctx, l.bin, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("netreconcile %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// apply applies file on the real node and returns how long it took and
// how many changes the plan had.
func (l *lab) apply(ctx context.Context, file string) (time.Duration, int, error) {
	node := []string{"-f", file, "--node", l.node(), "--node-netns", "nrlab-" + l.node()}
	out, err := l.nr(ctx, append([]string{"plan", "-o", "json"}, node...)...)
	if err != nil {
		return 0, 0, err
	}
	var p struct{ Changes []json.RawMessage }
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		return 0, 0, fmt.Errorf("plan json: %w", err)
	}
	start := time.Now()
	if _, err := l.nr(ctx, append([]string{"apply"}, node...)...); err != nil {
		return 0, 0, err
	}
	return time.Since(start), len(p.Changes), nil
}

type config struct {
	name     string
	policies int // -1: no datapath
	file     string
}

// sample holds one configuration's measurements, one per round, and
// their ratios to the 0-policy figure of the same round.
type sample struct {
	gbps, conns           []float64
	gbpsRatio, connsRatio []float64
	estNs, newNs          float64 // datapath ns per packet (min over rounds)
}

func run(ctx context.Context, secs, rounds int) error {
	if err := benchnode.EnsureTools(ctx, map[string]string{"iperf3": "iperf3", "ss": "iproute2"}); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "nr-policy-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	l := &lab{id: benchnode.RandID("pb"), bin: filepath.Join(tmp, "netreconcile"), dir: tmp, stateDir: filepath.Join(tmp, "state")}
	if err := benchnode.BuildBinary(ctx, l.bin); err != nil {
		return err
	}
	// The lab is node a alone; the file's ghost node is never built.
	labFile, err := l.write("lab.yaml", fmt.Sprintf(`apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16}
nodes:
  - {name: %s, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}
pods:
  - {name: client, namespace: bench, node: %s, ip: %s, mode: veth, netns: %s}
  - {name: server, namespace: bench, node: %s, ip: %s, mode: veth, netns: %s}
`, l.node(), l.node(), clientIP, l.netns("client"), l.node(), serverIP, l.netns("server")))
	if err != nil {
		return err
	}
	l.labFile = labFile
	down, err := benchnode.LabUp(ctx, l.bin, l.labFile, "--state-dir", l.stateDir)
	defer down()
	if err != nil {
		return err
	}

	configs := []config{{name: "no eBPF datapath", policies: -1}, {name: "0 policies", policies: 0},
		{name: "100 policies", policies: 100}, {name: "1000 policies", policies: 1000}}
	for i := range configs {
		c := &configs[i]
		if c.file, err = l.write(fmt.Sprintf("p%d.yaml", c.policies), l.topology(c.policies, false)); err != nil {
			return err
		}
	}

	stopServer, err := l.connServer()
	if err != nil {
		return err
	}
	defer stopServer()

	samples := make([]sample, len(configs))
	entries := make([]string, len(configs))
	for round := range rounds {
		var g, n [4]float64
		// Rotate the order each round: drift of the machine spreads
		// over all configurations.
		for k := range configs {
			i := (k + round) % len(configs)
			c := configs[i]
			if err := ctx.Err(); err != nil {
				return err
			}
			if _, _, err := l.apply(ctx, c.file); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			entries[i] = l.entries(ctx)
			if g[i], err = l.iperf(ctx, secs); err != nil {
				return fmt.Errorf("%s: iperf3: %w", c.name, err)
			}
			if n[i], err = l.connRate(ctx, secs); err != nil {
				return fmt.Errorf("%s: connections: %w", c.name, err)
			}
			if c.policies >= 0 {
				est, nw, err := l.packetCost()
				if err != nil {
					return fmt.Errorf("%s: test run: %w", c.name, err)
				}
				if round == 0 || est < samples[i].estNs {
					samples[i].estNs = est
				}
				if round == 0 || nw < samples[i].newNs {
					samples[i].newNs = nw
				}
			}
			fmt.Fprint(os.Stderr, ".")
		}
		for i := range configs {
			samples[i].gbps = append(samples[i].gbps, g[i])
			samples[i].conns = append(samples[i].conns, n[i])
			samples[i].gbpsRatio = append(samples[i].gbpsRatio, g[i]/g[1])
			samples[i].connsRatio = append(samples[i].connsRatio, n[i]/n[1])
		}
	}

	// Programming: compile in process (best of 5); apply 1000 from 0,
	// then one change (median of 3).
	r, err := spec.LoadFiles(configs[3].file)
	if err != nil {
		return err
	}
	var prog *compile.Program
	var compileTime time.Duration
	for k := range 5 {
		start := time.Now()
		if prog, err = compile.Node(r, l.node()); err != nil {
			return err
		}
		if d := time.Since(start); k == 0 || d < compileTime {
			compileTime = d
		}
	}
	rules := 0
	for _, s := range prog.Sides {
		rules += len(s.Rules)
	}
	changed, err := l.write("p1000-changed.yaml", l.topology(1000, true))
	if err != nil {
		return err
	}
	var scratch, change []float64
	var nScratch, nChange int
	for range 3 {
		if _, _, err := l.apply(ctx, configs[1].file); err != nil {
			return err
		}
		d, n, err := l.apply(ctx, configs[3].file)
		if err != nil {
			return err
		}
		scratch, nScratch = append(scratch, d.Seconds()), n
		if d, n, err = l.apply(ctx, changed); err != nil {
			return err
		}
		change, nChange = append(change, d.Seconds()), n
	}
	fmt.Fprintln(os.Stderr)

	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "measurement\tvalue\tvs 0 policies\tnotes")
	for i, c := range configs {
		fmt.Fprintf(tw, "throughput, %s\t%.2f Gbit/s (best %.2f)\t%.2fx (best %.2fx)\t%s\n", c.name, benchnode.Median(samples[i].gbps),
			best(samples[i].gbps), benchnode.Median(samples[i].gbpsRatio), best(samples[i].gbps)/best(samples[1].gbps), entries[i])
	}
	for i, c := range configs {
		fmt.Fprintf(tw, "new connections, %s\t%.0f /s (best %.0f)\t%.2fx (best %.2fx)\t\n", c.name, benchnode.Median(samples[i].conns),
			best(samples[i].conns), benchnode.Median(samples[i].connsRatio), best(samples[i].conns)/best(samples[1].conns))
	}
	for i, c := range configs[1:] {
		s := samples[i+1]
		fmt.Fprintf(tw, "datapath per packet, established, %s\t%.0f ns\t%.2fx\tnr_from_pod, BPF_PROG_TEST_RUN\n", c.name, s.estNs, s.estNs/samples[1].estNs)
	}
	for i, c := range configs[1:] {
		s := samples[i+1]
		fmt.Fprintf(tw, "datapath per packet, new connection judged, %s\t%.0f ns\t%.2fx\tegress and ingress judged, nothing cached\n", c.name, s.newNs, s.newNs/samples[1].newNs)
	}
	fmt.Fprintf(tw, "compile 1000 policies (policy/compile, in process)\t%v\t\t%d identities, %d rules (best of 5)\n",
		compileTime.Round(100*time.Microsecond), len(prog.Identities), rules)
	fmt.Fprintf(tw, "apply 1000 policies from scratch (plan+apply+verify)\t%.0f ms\t\t%d planned changes (median of 3)\n", 1000*benchnode.Median(scratch), nScratch)
	fmt.Fprintf(tw, "apply one policy change among 1000\t%.0f ms\t\t%d planned changes (median of 3)\n", 1000*benchnode.Median(change), nChange)
	tw.Flush()
	fmt.Printf("two veth pods on one node, %d pods declared; iperf3 -t %d single stream; %d clients opening and resetting TCP connections for %d s;\n"+
		"median and best of %d rounds (ratios: median of the per-round ratios, and best over best); per-packet cost: best of %d runs of 200000 BPF_PROG_TEST_RUN repeats\n",
		declared, secs, workers, secs, rounds, rounds)
	fmt.Print(b.String())
	return nil
}

// packetCost runs the client's nr_from_pod (its host veth's tcx ingress)
// on synthetic packets with BPF_PROG_TEST_RUN, against the live maps, and
// returns ns per packet: an ACK of a connection the datapath tracks
// (established), and an ACK of one it does not know (judged on both sides
// every time, nothing recorded: the cost of a new connection's first
// packet without the conntrack insert). The packets go nowhere; the run
// happens on a thread in the node's namespace.
func (l *lab) packetCost() (est, nw float64, err error) {
	dp, reason, err := datapath.Inspect(filepath.Join(datapath.DefaultPinRoot, l.node()))
	if err != nil || dp == nil {
		return 0, 0, fmt.Errorf("inspect datapath: %v %s", err, reason)
	}
	defer dp.Close()
	atts, err := dp.Attachments(nil)
	if err != nil {
		return 0, 0, err
	}
	host := drivers.HostIfName(l.node(), "bench/client")
	var id ebpf.ProgramID
	for _, a := range atts {
		if a.IfName == host && a.Direction == datapath.HostIngress {
			id = a.ProgramID
		}
	}
	if id == 0 {
		return 0, 0, fmt.Errorf("no program on %s", host)
	}
	prog, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return 0, 0, err
	}
	defer prog.Close()
	const repeat = 200000
	err = nsutil.Do("nrlab-"+l.node(), func() error {
		syn := tcpPacket(clientIP, serverIP, 40000, connPort, 0x02)
		if _, err := prog.Run(&ebpf.RunOptions{Data: syn}); err != nil {
			return err
		}
		_, d, err := prog.Benchmark(tcpPacket(clientIP, serverIP, 40000, connPort, 0x10), repeat, nil)
		if err != nil {
			return err
		}
		est = float64(d.Nanoseconds())
		_, d, err = prog.Benchmark(tcpPacket(clientIP, serverIP, 40001, connPort, 0x10), repeat, nil)
		nw = float64(d.Nanoseconds())
		return err
	})
	return est, nw, err
}

// tcpPacket is an Ethernet frame with an IPv4 TCP segment (checksums
// left out: the datapath does not check them).
func tcpPacket(src, dst string, sport, dport int, flags byte) []byte {
	b := make([]byte, 14+20+20)
	b[12], b[13] = 0x08, 0x00
	ip := b[14:]
	ip[0] = 0x45
	ip[2], ip[3] = 0, 40
	ip[8] = 64
	ip[9] = 6
	copy(ip[12:16], net.ParseIP(src).To4())
	copy(ip[16:20], net.ParseIP(dst).To4())
	tcp := ip[20:]
	tcp[0], tcp[1] = byte(sport>>8), byte(sport)
	tcp[2], tcp[3] = byte(dport>>8), byte(dport)
	tcp[12] = 5 << 4
	tcp[13] = flags
	return b
}

// best is the highest figure: on a shared machine other load only ever
// takes throughput away, so the best round is the least disturbed one.
func best(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// entries counts the policy entries the node holds, from show.
func (l *lab) entries(ctx context.Context) string {
	out, err := l.nr(ctx, "show", "-o", "json", "--node", l.node(), "--node-netns", "nrlab-"+l.node())
	if err != nil {
		return "?"
	}
	var s struct {
		Owned struct {
			PolicyIdentities []json.RawMessage `json:"policy_identities"`
			PodPolicies      []struct {
				Rules []string `json:"rules"`
			} `json:"pod_policies"`
		} `json:"owned"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return "?"
	}
	rules := 0
	for _, p := range s.Owned.PodPolicies {
		rules += len(p.Rules)
	}
	return fmt.Sprintf("%d identities, %d rules", len(s.Owned.PolicyIdentities), rules)
}

// iperf runs one iperf3 test client -> server and returns Gbit/s.
func (l *lab) iperf(ctx context.Context, secs int) (float64, error) {
	res, err := benchnode.Iperf(ctx, l.netns("server"), serverIP, l.netns("client"), serverIP, iperfPort, secs)
	return res.Gbps, err
}

// connServer accepts TCP connections on the server pod's connPort and
// closes them.
func (l *lab) connServer() (func(), error) {
	var ln net.Listener
	err := nsutil.Do(l.netns("server"), func() (err error) {
		ln, err = net.Listen("tcp4", net.JoinHostPort(serverIP, fmt.Sprint(connPort)))
		return err
	})
	if err != nil {
		return func() {}, fmt.Errorf("listen in the server pod: %w", err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			c.Close()
		}
	}()
	return func() { ln.Close() }, nil
}

// connRate opens connections client -> server from several goroutines for
// secs seconds (each closed with a reset, so that no TIME_WAIT state
// limits the rate) and returns connections per second.
func (l *lab) connRate(ctx context.Context, secs int) (float64, error) {
	target, err := nsutil.Open(l.netns("client"))
	if err != nil {
		return 0, err
	}
	defer target.Close()
	addr := net.JoinHostPort(serverIP, fmt.Sprint(connPort))
	var n atomic.Int64
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	stop := time.Now().Add(time.Duration(secs) * time.Second)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// This goroutine's thread stays in the client's namespace
			// and is discarded when it exits (never unlocked).
			runtime.LockOSThread()
			if err := netns.Set(target); err != nil {
				fail(err)
				return
			}
			d := net.Dialer{Timeout: 2 * time.Second}
			for time.Now().Before(stop) && ctx.Err() == nil {
				c, err := d.Dial("tcp4", addr)
				if err != nil {
					fail(err)
					return
				}
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(n.Load()) / float64(secs), nil
}
