// Command watch measures the `netreconcile watch` daemon: how fast it puts
// back what is deleted by hand, how fast a file change reaches the kernel,
// what it costs while nothing happens, and its memory with a large file.
// It prints one table; compare figures only within one run (the machine is
// shared and noisy).
//
//	sudo go run ./e2e/bench/watch [-n 50] [-changes 20] [-idle 60s] [-pods 1000] [-services 5000] [-policies 500]
//	    [-parts latency,partial,full] [-keep] [-hold 0s]
//
// It builds the binary and a one-node lab, runs the daemon as a child
// process, and times repairs with its own netlink subscription in the node
// namespace (from the deletion call to the notification of the re-added
// route). Idle CPU is the sum of the daemon's threads' run time
// (/proc/PID/task/*/schedstat) over the idle window. Memory is VmRSS and
// VmHWM (/proc/PID/status) with the large file: once with most pods on
// another node (few real pods here), once with every pod on this node
// (one namespace each). Everything lives in namespaces named after a
// random id (nrlab-nrw<hex>n, nrw<hex>-*), removed at the end, also on
// error or interrupt.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/e2e/bench/internal/benchnode"
	"github.com/netreconcile/netreconcile/internal/nsutil"
)

var (
	nDel     = flag.Int("n", 50, "deletions per drift experiment")
	nChanges = flag.Int("changes", 20, "file changes")
	idle     = flag.Duration("idle", 60*time.Second, "idle window for the CPU measurement")
	bigPods  = flag.Int("pods", 1000, "pods in the large file")
	bigSvcs  = flag.Int("services", 5000, "services in the large file")
	bigPols  = flag.Int("policies", 500, "policies in the large file")
	smallN   = flag.Int("small", 10, "pods of the lab used for latencies")
	keep     = flag.Bool("keep", false, "keep the temporary directory (daemon logs) and print its path")
	parts    = flag.String("parts", "latency,partial,full", "what to run: latency (small lab), partial (large file, few pods here), full (every pod here)")
	hold     = flag.Duration("hold", 0, "after the full part, keep the daemon running this long (to inspect it)")
)

func part(name string) bool { return strings.Contains(","+*parts+",", ","+name+",") }

func main() {
	flag.Parse()
	benchnode.RequireRoot("watch bench")
	if *nDel < 1 || *nDel > 1000 || *bigPods < 1 || *bigPods > 4000 || *smallN < 2 || *smallN > 200 {
		fmt.Fprintln(os.Stderr, "bad sizes")
		os.Exit(1)
	}
	b := &bench{id: benchnode.RandID("nrw")}
	benchnode.Run(func(ctx context.Context) error {
		err := b.run(ctx)
		b.cleanup()
		b.print()
		return err
	})
}

type bench struct {
	id, tmp, bin, stateDir string
	node, nodeNS           string
	labFile                string
	cleanups               []func()
	rows                   [][2]string
}

func (b *bench) add(name, value string) { b.rows = append(b.rows, [2]string{name, value}) }

func (b *bench) print() {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tresult")
	for _, r := range b.rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	tw.Flush()
}

func (b *bench) cleanup() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
	b.cleanups = nil
}

func (b *bench) defer_(f func()) { b.cleanups = append(b.cleanups, f) }

func (b *bench) run(ctx context.Context) error {
	var err error
	if b.tmp, err = os.MkdirTemp("", "nr-watchbench-"); err != nil {
		return err
	}
	b.defer_(func() {
		if *keep {
			fmt.Fprintln(os.Stderr, "kept", b.tmp)
			return
		}
		os.RemoveAll(b.tmp)
	})
	b.bin = filepath.Join(b.tmp, "netreconcile")
	b.stateDir = filepath.Join(b.tmp, "state")
	b.node = b.id + "n"
	b.nodeNS = "nrlab-" + b.node
	if err := benchnode.BuildBinary(ctx, b.bin); err != nil {
		return err
	}
	// The lab: one node, no pods; the daemon makes the pods.
	b.labFile = filepath.Join(b.tmp, "lab.yaml")
	if err := os.WriteFile(b.labFile, []byte(b.topo(nil, 0, 0, "")), 0o644); err != nil {
		return err
	}
	down, err := benchnode.LabUp(ctx, b.bin, b.labFile, "--state-dir", b.stateDir)
	b.defer_(down)
	if err != nil {
		return err
	}
	if part("latency") {
		if err := b.latencies(ctx); err != nil {
			return err
		}
	}
	if part("partial") {
		if err := b.memory(ctx, false); err != nil {
			return err
		}
	}
	if part("full") {
		return b.memory(ctx, true)
	}
	return nil
}

// pod is one pod of a generated file.
type pod struct {
	name, node, ip string
	ns             string
}

// topo writes a topology: our node (and another one, on our subnet, when
// some pods are elsewhere), pods, services selecting them, policies.
func (b *bench) topo(pods []pod, svcs, pols int, other string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "apiVersion: netreconcile/v1\nkind: Topology\ncluster: {podCIDR: 10.240.0.0/12, serviceCIDR: 10.96.0.0/16}\n")
	fmt.Fprintf(&s, "namespaces:\n  - {name: bench, labels: {team: bench}}\nnodes:\n")
	fmt.Fprintf(&s, "  - {name: %s, address: 172.31.1.2/24, uplink: eth0, podCIDR: 10.240.0.0/20}\n", b.node)
	if other != "" {
		fmt.Fprintf(&s, "  - {name: %s, address: 172.31.1.3/24, uplink: eth0, podCIDR: 10.241.0.0/20}\n", other)
	}
	if len(pods) > 0 {
		s.WriteString("pods:\n")
	}
	for i, p := range pods {
		fmt.Fprintf(&s, "  - {name: %s, namespace: bench, node: %s, ip: %s, netns: %s, labels: {app: a%d, tier: t%d}, ports: [{name: http, port: 8080}]}\n",
			p.name, p.node, p.ip, p.ns, i, i%10)
	}
	if svcs > 0 {
		s.WriteString("services:\n")
	}
	for i := range svcs {
		fmt.Fprintf(&s, "  - {name: s%d, namespace: bench, clusterIP: 10.96.%d.%d, selector: {app: a%d}, ports: [{port: 80, targetPort: 8080}]}\n",
			i, 1+i/250, 1+i%250, i%max(len(pods), 1))
	}
	if pols > 0 {
		s.WriteString("policies:\n")
	}
	for i := range pols {
		// Each policy admits one tier (a tenth of the pods) to one pod.
		fmt.Fprintf(&s, "  - name: p%d\n    namespace: bench\n    spec:\n      podSelector: {matchLabels: {app: a%d}}\n"+
			"      ingress: [{from: [{podSelector: {matchLabels: {tier: t%d}}}], ports: [{port: 8080, protocol: TCP}]}]\n",
			i, i%max(len(pods), 1), i%10)
	}
	return s.String()
}

func podIP(node, i int) string { return fmt.Sprintf("10.%d.%d.%d", 240+node, i/200, 10+i%200) }

// daemon is a running `watch`.
type daemon struct {
	cmd     *exec.Cmd
	metrics string
	logPath string
	mu      sync.Mutex
	msgs    []string
	done    chan struct{}
}

func (b *bench) start(ctx context.Context, file string) (*daemon, time.Duration, error) {
	d := &daemon{done: make(chan struct{}), logPath: filepath.Join(b.tmp, "watch-"+strconv.Itoa(len(b.cleanups))+".log")}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, 0, err
	}
	d.metrics = l.Addr().String()
	l.Close()
	sock := filepath.Join(b.tmp, fmt.Sprintf("notify-%d.sock", len(b.cleanups)))
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return nil, 0, err
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := nc.Read(buf)
			if err != nil {
				return
			}
			d.mu.Lock()
			d.msgs = append(d.msgs, string(buf[:n]))
			d.mu.Unlock()
		}
	}()
	logf, err := os.Create(d.logPath)
	if err != nil {
		nc.Close()
		return nil, 0, err
	}
	d.cmd = exec.Command(b.bin, "watch", "-f", file, "--node", b.node, "--node-netns", b.nodeNS, "--state-dir", b.stateDir,
		"--metrics-addr", d.metrics, "--log-format", "json", "-v") // -v: no-op passes are logged too
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t0 := time.Now()
	if err := d.cmd.Start(); err != nil {
		nc.Close()
		return nil, 0, err
	}
	go func() { _ = d.cmd.Wait(); logf.Close(); nc.Close(); close(d.done) }()
	b.defer_(func() { d.stop() })
	if err := d.wait(ctx, "READY=1", 5*time.Minute); err != nil {
		return nil, 0, err
	}
	return d, time.Since(t0), nil
}

// wait waits for a notification containing want, consuming up to it.
func (d *daemon) wait(ctx context.Context, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		d.mu.Lock()
		for i, m := range d.msgs {
			if strings.Contains(m, want) {
				d.msgs = d.msgs[i+1:]
				d.mu.Unlock()
				return nil
			}
		}
		d.msgs = nil
		d.mu.Unlock()
		select {
		case <-d.done:
			log, _ := os.ReadFile(d.logPath)
			return fmt.Errorf("daemon exited waiting for %s:\n%s", want, benchnode.Tail(string(log), 20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s within %v", want, timeout)
		}
	}
}

func (d *daemon) stop() {
	select {
	case <-d.done:
		return
	default:
	}
	_ = syscall.Kill(d.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
	}
}

func (d *daemon) metric(name string) float64 {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + d.metrics + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// cpuTime is the run time of all the daemon's threads.
func (d *daemon) cpuTime() time.Duration {
	var total time.Duration
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", d.cmd.Process.Pid))
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			total += time.Duration(ns)
		}
	}
	return total
}

// memory returns VmRSS and VmHWM in MiB.
func (d *daemon) memory() (rss, hwm float64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm
}

func (d *daemon) threads() int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", d.cmd.Process.Pid))
	return len(tasks)
}

// routeWatch timestamps route notifications in the node namespace.
type routeWatch struct {
	ch   chan netlink.RouteUpdate
	done chan struct{}
}

func watchRoutes(nsRef string) (*routeWatch, error) {
	h, err := nsutil.Open(nsRef)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	w := &routeWatch{ch: make(chan netlink.RouteUpdate, 4096), done: make(chan struct{})}
	err = netlink.RouteSubscribeWithOptions(w.ch, w.done, netlink.RouteSubscribeOptions{Namespace: &h, ReceiveBufferSize: 1 << 20})
	return w, err
}

func (w *routeWatch) close() { close(w.done) }

// drain discards notifications already queued.
func (w *routeWatch) drain() {
	for {
		select {
		case <-w.ch:
		default:
			return
		}
	}
}

// await waits for the route to dst to be added.
func (w *routeWatch) await(dst netip.Prefix, timeout time.Duration) (time.Time, error) {
	deadline := time.After(timeout)
	for {
		select {
		case u := <-w.ch:
			if u.Type != syscall.RTM_NEWROUTE || u.Dst == nil {
				continue
			}
			ip, _ := netip.AddrFromSlice(u.Dst.IP)
			bits, _ := u.Dst.Mask.Size()
			if netip.PrefixFrom(ip.Unmap(), bits) == dst {
				return time.Now(), nil
			}
		case <-deadline:
			return time.Time{}, fmt.Errorf("route %s not back within %v", dst, timeout)
		}
	}
}

func (b *bench) latencies(ctx context.Context) error {
	var pods []pod
	for i := range *smallN {
		pods = append(pods, pod{name: fmt.Sprintf("p%d", i), node: b.node, ip: podIP(0, i), ns: fmt.Sprintf("%s-p%d", b.id, i)})
	}
	b.defer_(func() {
		for _, p := range pods {
			_ = nsutil.Delete(p.ns)
		}
	})
	file := filepath.Join(b.tmp, "small.yaml")
	if err := os.WriteFile(file, []byte(b.topo(pods, 0, 0, "")), 0o644); err != nil {
		return err
	}
	d, ready, err := b.start(ctx, file)
	if err != nil {
		return err
	}
	b.add(fmt.Sprintf("start to READY, %d pods created", len(pods)), ready.Round(time.Millisecond).String())
	h, err := nsutil.Handle(b.nodeNS)
	if err != nil {
		return err
	}
	defer h.Close()
	rw, err := watchRoutes(b.nodeNS)
	if err != nil {
		return err
	}
	defer rw.close()
	time.Sleep(time.Second) // let the start's own events settle

	// Deleting a node route of a pod.
	var routeLat []time.Duration
	for i := range *nDel {
		p := pods[i%len(pods)]
		dst := netip.MustParsePrefix(p.ip + "/32")
		routes, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: &net.IPNet{IP: net.ParseIP(p.ip), Mask: net.CIDRMask(32, 32)}}, netlink.RT_FILTER_DST)
		if err != nil || len(routes) != 1 {
			return fmt.Errorf("route of %s: %v (%d found)", p.name, err, len(routes))
		}
		rw.drain()
		t0 := time.Now()
		if err := h.RouteDel(&routes[0]); err != nil {
			return err
		}
		at, err := rw.await(dst, 5*time.Second)
		if err != nil {
			return err
		}
		routeLat = append(routeLat, at.Sub(t0))
		time.Sleep(150 * time.Millisecond) // the follow-up pass
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	b.add(fmt.Sprintf("drift repair, node route deleted (n=%d)", len(routeLat)), stats(routeLat))

	// Deleting a pod's host-side veth (the pod end goes with it): the
	// repair recreates the pair, the pod's address, neighbour and routes;
	// the node route to the pod is the last step.
	var linkLat []time.Duration
	for i := range *nDel {
		p := pods[i%len(pods)]
		l, err := h.LinkByName(drivers.HostIfName(b.node, "bench/"+p.name))
		if err != nil {
			return fmt.Errorf("host veth of %s: %w", p.name, err)
		}
		rw.drain()
		// From the call: deleting a veth waits for RCU grace periods
		// after the kernel has already announced the deletion.
		t0 := time.Now()
		if err := h.LinkDel(l); err != nil {
			return err
		}
		at, err := rw.await(netip.MustParsePrefix(p.ip+"/32"), 5*time.Second)
		if err != nil {
			return err
		}
		linkLat = append(linkLat, at.Sub(t0))
		// New links report carrier changes up to a second later
		// (linkwatch), which would start the next repair early.
		time.Sleep(1200 * time.Millisecond)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	b.add(fmt.Sprintf("drift repair, pod host veth deleted (n=%d)", len(linkLat)), stats(linkLat))
	if v := d.metric("netreconcile_drift_repair_seconds_count"); v > 0 {
		sum := d.metric("netreconcile_drift_repair_seconds_sum")
		b.add("  as the daemon measures it (first event to pass end)", fmt.Sprintf("mean %s over %.0f repairs",
			(time.Duration(sum/v*1e9)).Round(10*time.Microsecond), v))
	}

	// File change to converged: move p0 between two addresses.
	var fileLat []time.Duration
	for i := range *nChanges {
		moved := append([]pod(nil), pods...)
		moved[0].ip = podIP(0, 200+i%2)
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(b.topo(moved, 0, 0, "")), 0o644); err != nil {
			return err
		}
		rw.drain()
		t0 := time.Now()
		if err := os.Rename(tmp, file); err != nil {
			return err
		}
		at, err := rw.await(netip.MustParsePrefix(moved[0].ip+"/32"), 10*time.Second)
		if err != nil {
			return err
		}
		fileLat = append(fileLat, at.Sub(t0))
		time.Sleep(150 * time.Millisecond)
	}
	b.add(fmt.Sprintf("file change (rename) to route in the kernel (n=%d, --debounce 200ms)", len(fileLat)), stats(fileLat))

	if err := b.idleCPU(ctx, d, fmt.Sprintf("%d pods", len(pods))); err != nil {
		return err
	}
	d.stop()
	out, err := exec.Command(b.bin, "destroy", "-f", file, "--node", b.node, "--node-netns", b.nodeNS, "--state-dir", b.stateDir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("destroy: %w\n%s", err, out)
	}
	return nil
}

func (b *bench) idleCPU(ctx context.Context, d *daemon, what string) error {
	time.Sleep(2 * time.Second) // settle
	runs0 := sumMetric(d, "netreconcile_reconcile_runs_total")
	c0, t0 := d.cpuTime(), time.Now()
	select {
	case <-time.After(*idle):
	case <-ctx.Done():
		return ctx.Err()
	}
	c1, el := d.cpuTime(), time.Since(t0)
	runs1 := sumMetric(d, "netreconcile_reconcile_runs_total")
	cpu := c1 - c0
	b.add(fmt.Sprintf("idle CPU over %v, %s", idle.Round(time.Second), what),
		fmt.Sprintf("%s (%.3f%% of one core), %.0f passes, %d threads", cpu.Round(10*time.Microsecond),
			100*cpu.Seconds()/el.Seconds(), runs1-runs0, d.threads()))
	return nil
}

// sumMetric sums every series of a counter family (scraping costs a bit
// of the daemon's CPU too; it is done outside the idle window).
func sumMetric(d *daemon, family string) float64 {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + d.metrics + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var total float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, family+"{") {
			f, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			total += f
		}
	}
	return total
}

// memory runs the daemon on the large file: with allHere, every pod on
// this node (a namespace each); otherwise all but smallN on another node.
func (b *bench) memory(ctx context.Context, allHere bool) error {
	other := b.id + "o"
	var pods []pod
	here := 0
	for i := range *bigPods {
		p := pod{name: fmt.Sprintf("q%d", i), node: b.node, ip: podIP(0, i), ns: fmt.Sprintf("%s-q%d", b.id, i)}
		if !allHere && i >= *smallN {
			p.node, p.ip = other, podIP(1, i)
		} else {
			here++
		}
		pods = append(pods, p)
	}
	b.defer_(func() {
		for _, p := range pods {
			if p.node == b.node {
				_ = nsutil.Delete(p.ns)
			}
		}
	})
	file := filepath.Join(b.tmp, fmt.Sprintf("big-%v.yaml", allHere))
	if err := os.WriteFile(file, []byte(b.topo(pods, *bigSvcs, *bigPols, other)), 0o644); err != nil {
		return err
	}
	d, ready, err := b.start(ctx, file)
	if err != nil {
		return err
	}
	label := fmt.Sprintf("%d pods (%d on this node), %d services, %d policies", len(pods), here, *bigSvcs, *bigPols)
	rss, _ := d.memory()
	b.add("start to READY, "+label, ready.Round(time.Millisecond).String())
	// A no-op full pass (SIGHUP: read and converge).
	t0 := time.Now()
	_ = syscall.Kill(d.cmd.Process.Pid, syscall.SIGHUP)
	if err := d.wait(ctx, "READY=1", 5*time.Minute); err != nil {
		return err
	}
	b.add("no-op full pass (SIGHUP to READY), "+label, time.Since(t0).Round(time.Millisecond).String())
	rss2, hwm := d.memory()
	b.add("memory, "+label, fmt.Sprintf("RSS %.1f MiB after start, %.1f MiB after a pass; peak %.1f MiB; %d threads",
		rss, rss2, hwm, d.threads()))
	if allHere {
		if err := b.idleCPU(ctx, d, label); err != nil {
			return err
		}
		if *hold > 0 {
			fmt.Fprintf(os.Stderr, "daemon pid %d, metrics %s, log %s; stopping in %v\n", d.cmd.Process.Pid, d.metrics, d.logPath, *hold)
			time.Sleep(*hold)
		}
	}
	d.stop()
	// Remove the pods the daemon made (destroy leaves the lab's node).
	out, err := exec.Command(b.bin, "destroy", "-f", file, "--node", b.node, "--node-netns", b.nodeNS, "--state-dir", b.stateDir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("destroy: %w\n%s", err, out)
	}
	return nil
}

func stats(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	r := func(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }
	return fmt.Sprintf("median %s  p99 %s  (min %s, max %s)", r(q(0.5)), r(q(0.99)), r(s[0]), r(s[len(s)-1]))
}
