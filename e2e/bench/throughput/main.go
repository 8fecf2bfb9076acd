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
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
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
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "throughput needs root (it builds namespaces)")
		os.Exit(1)
	}
	if *secs < 1 || *secs > 60 || *runs < 1 || *runs > 9 {
		fmt.Fprintln(os.Stderr, "-t must be between 1 and 60, -runs between 1 and 9")
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *secs, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func randID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "tp" + hex.EncodeToString(b)
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
	if err := ensureIperf3(ctx); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "nr-throughput-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	l := &lab{id: randID(), bin: filepath.Join(tmp, "netreconcile"), file: filepath.Join(tmp, "topo.yaml"),
		stateDir: filepath.Join(tmp, "state")}
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", l.bin, ".").CombinedOutput(); err != nil {
		return fmt.Errorf("build netreconcile (run from the repository root): %w\n%s", err, out)
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
	defer func() {
		// A fresh context: the run's may be cancelled by now.
		down, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(down, l.bin, "lab", "down", "-f", l.file, "--state-dir", l.stateDir).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "lab down: %v\n%s", err, out)
		}
	}()
	if out, err := exec.CommandContext(ctx, l.bin, "lab", "up", "-f", l.file, "--state-dir", l.stateDir).CombinedOutput(); err != nil {
		return fmt.Errorf("lab up: %w\n%s", err, out)
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
		var all []result
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
		sort.Slice(all, func(i, j int) bool { return all[i].gbps < all[j].gbps })
		res := all[len(all)/2]
		if r.loopback {
			ceiling = res.gbps
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.0f%%\t%d\t\n", r.scenario, r.mode, res.gbps, 100*res.gbps/ceiling, res.retransmits)
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

type result struct {
	gbps        float64
	retransmits int
}

// iperf runs one iperf3 test: a one-off server in the destination pod
// (or in the source pod on 127.0.0.1 for loopback), the client in the
// source pod. The server is killed by its pid if it is still there.
func (l *lab) iperf(ctx context.Context, r row, port, secs int) (result, error) {
	srvNS, addr := l.netns(r.to), r.to.ip
	if r.loopback {
		srvNS, addr = l.netns(r.from), "127.0.0.1"
	}
	srv := exec.Command("ip", "netns", "exec", srvNS, "iperf3", "-s", "-1", "-B", addr, "-p", fmt.Sprint(port))
	srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var srvOut bytes.Buffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		return result{}, err
	}
	done := make(chan struct{})
	go func() { _ = srv.Wait(); close(done) }()
	defer func() {
		select {
		case <-done:
		default:
			_ = syscall.Kill(-srv.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}()
	if err := waitListening(ctx, srvNS, port, done); err != nil {
		return result{}, fmt.Errorf("%w\n%s", err, srvOut.String())
	}
	cctx, cancel := context.WithTimeout(ctx, time.Duration(secs+30)*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, "ip", "netns", "exec", l.netns(r.from), "iperf3", "-c", addr, "-p", fmt.Sprint(port),
		"-t", fmt.Sprint(secs), "-J").Output()
	if err != nil {
		return result{}, fmt.Errorf("iperf3 client: %w\n%s", err, out)
	}
	var j struct {
		End struct {
			Sent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
			Received struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &j); err != nil {
		return result{}, fmt.Errorf("iperf3 output: %w", err)
	}
	if j.Error != "" {
		return result{}, errors.New(j.Error)
	}
	return result{gbps: j.End.Received.BitsPerSecond / 1e9, retransmits: j.End.Sent.Retransmits}, nil
}

// waitListening waits until something listens on TCP port in ns, without
// connecting (a one-off iperf3 server would take a probe for its test).
func waitListening(ctx context.Context, ns string, port int, exited <-chan struct{}) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "ss", "-Hltn", fmt.Sprintf("sport = :%d", port)).Output()
		if strings.TrimSpace(string(out)) != "" {
			return nil
		}
		select {
		case <-exited:
			return errors.New("iperf3 server exited")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return errors.New("iperf3 server not listening after 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ensureIperf3 installs iperf3 with apt-get when it is missing.
func ensureIperf3(ctx context.Context) error {
	if _, err := exec.LookPath("iperf3"); err == nil {
		return nil
	}
	fmt.Fprintln(os.Stderr, "iperf3 missing: apt-get install -y iperf3")
	cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "-qq", "iperf3")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("install iperf3: %w\n%s", err, out)
	}
	return nil
}
