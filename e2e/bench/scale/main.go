// Command scale measures netreconcile at the scale issue 7 asks for: one
// lab node with 1000 veth pods, 5000 services (10 backends each, named
// targetPorts) and 500 policies. It times, through the real binary, apply
// from scratch, a no-op plan, a one-pod change (a pod added) and a
// one-service change (a selector changed), with each run's peak RSS (the
// child's, from wait4's rusage), beside the floor measured in the same
// run: the same pods made with raw netlink calls (benchnode.FloorPods),
// and those pods plus the service datapath programmed through package
// datapath directly (no observation, diffing or verification; services,
// endpoints and the programs on both hooks of every pod, not the policy
// entries). Through the binary it then makes the same two kinds of change
// through `netreconcile watch`, which keeps what it read between passes,
// and shows the daemon's pass durations, and once more through `apply`
// while the daemon runs (it hands the file to the daemon through its
// control socket), timing the command. It prints one table; compare
// figures only within one run (the machine is shared and noisy).
//
// With -attach-mode auto (netreconcile's default) the pods' programs are
// clsact filters (about 0.5 ms each). With -attach-mode tcx both apply and
// the datapath floor are dominated by the kernel: every tcx attach and
// detach waits for an RCU grace period under the rtnl lock (about 12 ms
// here, serialised), 2000 of them for 1000 pods.
//
//	sudo go run ./e2e/bench/scale [-pods 1000] [-services 5000] [-policies 500] [-runs 3] [-attach-mode auto|tcx|tc]
//	sudo go run ./e2e/bench/scale -inprocess -cpuprofile /tmp/prof   # same phases in this process, profiled
//
// -inprocess runs the phases through reconcile.Engine in this process (no
// process start, no logging) and writes one CPU profile per phase to the
// -cpuprofile directory (go tool pprof -top DIR/apply.pprof); peak RSS is
// then VmHWM, reset before each phase through /proc/self/clear_refs.
//
// Everything lives in namespaces named nrs<random>-*, pins below
// /sys/fs/bpf/nrbench-<id>, records in a temporary directory on tmpfs
// (/dev/shm, as the default /run/netreconcile is; -state-root DIR puts it
// elsewhere); all are removed at the end, also on error or interrupt.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"golang.org/x/sys/unix"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/e2e/bench/internal/benchnode"
	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
)

// Goals of issue 7.
const (
	goalPlan   = 200 * time.Millisecond
	goalChange = 100 * time.Millisecond
	goalRatio  = 1.5
	goalRSS    = 100 << 20
)

type config struct {
	pods, services, policies, runs int
	inProcess                      bool
	profileDir                     string
	verbose                        bool
	attachMode                     string // auto, tcx or tc (--attach-mode)
	hold                           bool
	stateRoot                      string // where the --state-dir is made
}

func main() {
	var c config
	flag.IntVar(&c.pods, "pods", 1000, "veth pods on the node (at most 4000)")
	flag.IntVar(&c.services, "services", 5000, "services (at most 12500)")
	flag.IntVar(&c.policies, "policies", 500, "network policies")
	flag.IntVar(&c.runs, "runs", 3, "no-op plans of each kind (the median is shown)")
	flag.StringVar(&c.attachMode, "attach-mode", datapath.ModeAuto, "how programs attach, in the floor and netreconcile alike: auto, tcx or tc (--attach-mode)")
	flag.BoolVar(&c.inProcess, "inprocess", false, "run the phases in this process through reconcile.Engine instead of the binary")
	flag.StringVar(&c.profileDir, "cpuprofile", "", "with -inprocess: write a CPU profile per phase into this directory")
	flag.BoolVar(&c.verbose, "v", false, "with -inprocess: log the engine's phase timings to stderr")
	flag.BoolVar(&c.hold, "hold", false, "after the apply from scratch, print a plan command for the lab and wait for an interrupt (for profiling)")
	flag.StringVar(&c.stateRoot, "state-root", defaultStateRoot(), "directory in which the --state-dir is made (default: tmpfs, as /run is)")
	flag.Parse()
	benchnode.RequireRoot("scale bench")
	if c.pods < 2 || c.pods > 4000 || c.services < 1 || c.services > 12500 || c.policies < 0 || c.runs < 1 {
		fmt.Fprintln(os.Stderr, "bad -pods, -services, -policies or -runs")
		os.Exit(1)
	}
	if c.attachMode != datapath.ModeAuto && c.attachMode != datapath.ModeTCX && c.attachMode != datapath.ModeTC {
		fmt.Fprintln(os.Stderr, "-attach-mode: auto, tcx or tc")
		os.Exit(1)
	}
	if c.profileDir != "" && !c.inProcess {
		fmt.Fprintln(os.Stderr, "-cpuprofile needs -inprocess (the binary has no profiling hook)")
		os.Exit(1)
	}
	benchnode.Run(func(ctx context.Context) error { return run(ctx, c) })
}

// defaultStateRoot is /dev/shm when it is tmpfs (the product's records
// default to /run/netreconcile, which is tmpfs on a systemd host), else
// the temporary directory.
func defaultStateRoot() string {
	var st unix.Statfs_t
	if unix.Statfs("/dev/shm", &st) == nil && st.Type == unix.TMPFS_MAGIC {
		return "/dev/shm"
	}
	return os.TempDir()
}

// bench is one run: its names, and what to remove at the end.
type bench struct {
	cfg      config
	id       string // node name
	nodeNS   string
	pinDir   string
	stateDir string
	dir      string // files and the binary
	bin      string
	runner   runner
}

func (b *bench) podNetns(i int) string { return fmt.Sprintf("%s-p%d", b.id, i) }

// topology writes the benchmark's file: pods in 10 namespaces, labelled
// app=a<i%100> with a named container port; every service selects one
// app value in its namespace (10 backends); policies isolate one app's
// ingress to another app on one port. extraPod adds one unlabelled pod
// (the one-pod change); svcChange points service 0 at another app (the
// one-service change).
func (b *bench) topology(extraPods int, svcChange bool) string {
	var s strings.Builder
	fmt.Fprintf(&s, "apiVersion: netreconcile/v1\nkind: Topology\n")
	fmt.Fprintf(&s, "cluster: {podCIDR: 10.0.0.0/10, serviceCIDR: 10.96.0.0/16}\nnamespaces:\n")
	for i := range 10 {
		fmt.Fprintf(&s, "  - {name: g%d, labels: {team: t%d}}\n", i, i)
	}
	fmt.Fprintf(&s, "nodes:\n  - {name: %s, address: %s, uplink: %s, podCIDR: 10.1.0.0/16}\npods:\n", b.id, benchnode.NodeAddr, benchnode.Uplink)
	for i := range b.cfg.pods {
		fmt.Fprintf(&s, "  - {name: p%d, namespace: g%d, node: %s, ip: %s, mode: veth, netns: %s, labels: {app: a%d}, ports: [{name: web, port: 8080}]}\n",
			i, i%10, b.id, benchnode.PodIP(i), b.podNetns(i), i%100)
	}
	for n := b.cfg.pods; n < b.cfg.pods+extraPods; n++ {
		fmt.Fprintf(&s, "  - {name: p%d, namespace: g0, node: %s, ip: %s, mode: veth, netns: %s}\n", n, b.id, benchnode.PodIP(n), b.podNetns(n))
	}
	s.WriteString("services:\n")
	for i := range b.cfg.services {
		app := i % 100
		if svcChange && i == 0 {
			app = 10 // same namespace (g0), other pods
		}
		fmt.Fprintf(&s, "  - {name: s%d, namespace: g%d, clusterIP: 10.96.%d.%d, selector: {app: a%d}, ports: [{port: 80, targetPort: web}]}\n",
			i, i%10, i/250, 1+i%250, app)
	}
	if b.cfg.policies > 0 {
		s.WriteString("policies:\n")
	}
	for i := range b.cfg.policies {
		fmt.Fprintf(&s, "  - {name: pol%d, namespace: g%d, spec: {podSelector: {matchLabels: {app: a%d}}, ingress: [{from: [{podSelector: {matchLabels: {app: a%d}}}], ports: [{port: %d}]}]}}\n",
			i, i%10, i%100, (i+10)%100, 1000+i)
	}
	return s.String()
}

func (b *bench) write(name, content string) (string, error) {
	p := filepath.Join(b.dir, name)
	return p, os.WriteFile(p, []byte(content), 0o644)
}

// measurement is one timed phase.
type measurement struct {
	took    time.Duration
	peakRSS int64 // bytes; 0: not measured
	changes int   // -1: not known
}

// runner runs the phases: through the binary, or in this process.
type runner interface {
	apply(ctx context.Context, file, phase string) (measurement, error)
	plan(ctx context.Context, file, phase string) (measurement, error)
	destroy(ctx context.Context, file, phase string) (measurement, error)
}

func run(ctx context.Context, c config) error {
	dir, err := os.MkdirTemp("", "nr-scale-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Records go where the product keeps them by default: on tmpfs
	// (/run/netreconcile on a systemd host). On a disk, every pod's two
	// record files cost a journal write each, a second or more for a
	// thousand pods on a busy one (-state-root /tmp measures that).
	stateDir, err := os.MkdirTemp(c.stateRoot, "nr-scale-state-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stateDir)
	b := &bench{cfg: c, id: benchnode.RandID("nrs"), dir: dir, stateDir: stateDir}
	b.pinDir = "/sys/fs/bpf/nrbench-" + b.id
	if !c.inProcess {
		if err := b.build(ctx); err != nil {
			return err
		}
		b.runner = &binRunner{b: b}
	}

	// The floor, in its own node namespace, removed before netreconcile runs.
	floorPods, floorDP, err := b.floor(ctx)
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}

	if b.nodeNS, err = benchnode.NodeNS(b.id); err != nil {
		return err
	}
	defer b.cleanup()
	if c.inProcess {
		b.runner = newEngineRunner(b)
	}
	full, err := b.write("full.yaml", b.topology(0, false))
	if err != nil {
		return err
	}
	podChange, _ := b.write("pod.yaml", b.topology(1, false))
	svcChange, err := b.write("svc.yaml", b.topology(1, true))
	if err != nil {
		return err
	}
	if _, err := spec.LoadFiles(full); err != nil {
		return err
	}

	scratch, err := b.runner.apply(ctx, full, "apply")
	if err != nil {
		return err
	}
	if c.hold {
		fmt.Printf("lab held; interrupt to remove it. A no-op plan:\n%s %s\n", b.bin, strings.Join((&binRunner{b: b}).nodeArgs("plan", full), " "))
		<-ctx.Done()
		return nil
	}
	// The binary's plans read the model apply left in the parse cache;
	// then the same with the cache set aside (what a file that no apply
	// has seen costs to decode). The changes below find it back, as they
	// would after an earlier apply. In this process there is no cache.
	var plans, cold []measurement
	cache := filepath.Join(b.stateDir, "parsed.cache")
	for i := range 2 * c.runs {
		if i == c.runs {
			if c.inProcess {
				break
			}
			if err := os.Rename(cache, cache+".aside"); err != nil {
				return fmt.Errorf("parse cache after apply: %w", err)
			}
		}
		m, err := b.runner.plan(ctx, full, fmt.Sprintf("plan%d", i))
		if err != nil {
			return err
		}
		if m.changes != 0 {
			return fmt.Errorf("plan after apply from scratch is not empty: %d changes", m.changes)
		}
		if i < c.runs {
			plans = append(plans, m)
		} else {
			cold = append(cold, m)
		}
	}
	if len(cold) > 0 {
		if err := os.Rename(cache+".aside", cache); err != nil {
			return err
		}
	}
	pod, err := b.runner.apply(ctx, podChange, "pod")
	if err != nil {
		return err
	}
	if err := b.requireEmpty(ctx, podChange); err != nil {
		return err
	}
	svc, err := b.runner.apply(ctx, svcChange, "service")
	if err != nil {
		return err
	}
	if err := b.requireEmpty(ctx, svcChange); err != nil {
		return err
	}
	// The same two kinds of change through the watch daemon, which keeps
	// the parsed file and its observations between passes: -runs of each,
	// in turn (a pod added, then service 0 pointed back or forth).
	// Then through apply, which the daemon serves while it holds the node.
	var watched, applied []measurement
	if r, ok := b.runner.(*binRunner); ok {
		contents := []string{b.topology(1, true)}
		for i := range c.runs {
			contents = append(contents, b.topology(2+i, i%2 == 0), b.topology(2+i, i%2 == 1))
		}
		var viaApply []string
		for j := c.runs; j < 2*c.runs; j++ { // the same pattern, on from the last file
			viaApply = append(viaApply, b.topology(2+j, j%2 == 0), b.topology(2+j, j%2 == 1))
		}
		if watched, applied, err = r.watch(ctx, contents, viaApply); err != nil {
			return err
		}
		last, _ := b.write("last.yaml", viaApply[len(viaApply)-1])
		if err := b.requireEmpty(ctx, last); err != nil {
			return err
		}
	}
	destroy, err := b.runner.destroy(ctx, svcChange, "destroy")
	if err != nil {
		return err
	}

	b.print(floorPods, floorDP, scratch, plans, cold, pod, svc, watched, applied, destroy)
	return nil
}

func (b *bench) requireEmpty(ctx context.Context, file string) error {
	m, err := b.runner.plan(ctx, file, "")
	if err != nil {
		return err
	}
	if m.changes != 0 {
		return fmt.Errorf("plan after apply of %s is not empty: %d changes", filepath.Base(file), m.changes)
	}
	return nil
}

func (b *bench) print(floorPods, floorDP time.Duration, scratch measurement, plans, cold []measurement, pod, svc measurement,
	watched, applied []measurement, destroy measurement) {
	c := b.cfg
	mode := "the netreconcile binary (process start and JSON logs included)"
	if c.inProcess {
		mode = "reconcile.Engine in this process"
	}
	fmt.Printf("scale: %d veth pods, %d services (10 backends each), %d policies on one node; %d CPUs; --attach-mode %s; through %s\n\n",
		c.pods, c.services, c.policies, runtime.NumCPU(), c.attachMode, mode)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\ttime\tchanges\tpeak RSS\tgoal\tmet\t")
	fmt.Fprintf(w, "floor: pods (raw netlink)\t%s\t\t\t\t\t\n", benchnode.Round(floorPods))
	fmt.Fprintf(w, "floor: pods + datapath (package datapath)\t%s\t\t\t\t\t\n", benchnode.Round(floorPods+floorDP))
	row := func(name string, m measurement, goal string, met bool) {
		ch := ""
		if m.changes >= 0 {
			ch = strconv.Itoa(m.changes)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t\n", name, benchnode.Round(m.took), ch, rss(m.peakRSS), goal, yes(met))
	}
	ratioPods := float64(scratch.took) / float64(floorPods)
	ratioAll := float64(scratch.took) / float64(floorPods+floorDP)
	row("apply from scratch", scratch, fmt.Sprintf("<= %.1fx floor", goalRatio), ratioAll <= goalRatio)
	fmt.Fprintf(w, "  ratio to the pods floor / to pods + datapath\t%.1fx / %.1fx\t\t\t\t\t\n", ratioPods, ratioAll)
	median := func(ms []measurement) measurement {
		var times []time.Duration
		m := measurement{}
		for _, p := range ms {
			times = append(times, p.took)
			m.peakRSS = max(m.peakRSS, p.peakRSS)
		}
		m.took = benchnode.Median(times)
		if len(ms) > 0 {
			m.changes = ms[0].changes // the same change each time
		}
		return m
	}
	warm := median(plans)
	name := "no-op plan, file as last applied"
	if c.inProcess {
		name = "no-op plan (no parse cache)"
	}
	row(fmt.Sprintf("%s (median of %d)", name, len(plans)), warm, "< "+goalPlan.String(), warm.took < goalPlan)
	peak := warm.peakRSS
	if len(cold) > 0 {
		m := median(cold)
		row(fmt.Sprintf("no-op plan, parse cache cold (median of %d)", len(cold)), m, "< "+goalPlan.String(), m.took < goalPlan)
		peak = max(peak, m.peakRSS)
	}
	row("one-pod change: apply (pod added)", pod, "< "+goalChange.String(), pod.took < goalChange)
	row("one-service change: apply (selector)", svc, "< "+goalChange.String(), svc.took < goalChange)
	maxRSS := max(scratch.peakRSS, peak, pod.peakRSS, svc.peakRSS, destroy.peakRSS)
	// changeRows shows the medians of alternating pod and service changes.
	changeRows := func(label, unit string, ms []measurement) {
		var pods, svcs []measurement
		for i := 0; i+1 < len(ms); i += 2 {
			pods, svcs = append(pods, ms[i]), append(svcs, ms[i+1])
		}
		p, s := median(pods), median(svcs)
		row(fmt.Sprintf("%s: one-pod change (%smedian of %d)", label, unit, len(pods)), p, "< "+goalChange.String(), p.took < goalChange)
		row(fmt.Sprintf("%s: one-service change (%smedian of %d)", label, unit, len(svcs)), s, "< "+goalChange.String(), s.took < goalChange)
	}
	if len(watched) >= 3 {
		changeRows("watch", "pass, ", watched[1:])
		if len(applied) >= 2 {
			changeRows("apply, watch running", "", applied)
		}
		fmt.Fprintf(w, "  watch daemon's peak RSS (its whole run)\t\t\t%s\t\t\t\n", rss(watched[0].peakRSS))
		maxRSS = max(maxRSS, watched[0].peakRSS)
	}
	row("destroy", destroy, "", true)
	fmt.Fprintf(w, "peak RSS of any run\t\t\t%s\t< %s\t%s\t\n", rss(maxRSS), rss(goalRSS), yes(maxRSS > 0 && maxRSS < goalRSS))
	w.Flush()
}

func rss(b int64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MB", float64(b)/(1<<20))
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

// build compiles the binary from the repository root (the working
// directory, or above it).
func (b *bench) build(ctx context.Context) error {
	b.bin = filepath.Join(b.dir, "netreconcile")
	return benchnode.BuildBinary(ctx, b.bin)
}

// floor measures the raw-netlink pods and then the datapath for them in a
// node namespace of its own, and removes it all.
func (b *bench) floor(ctx context.Context) (pods, dp time.Duration, err error) {
	id := benchnode.RandID("nrs")
	node, err := benchnode.NodeNS(id)
	if err != nil {
		return 0, 0, err
	}
	defer nsutil.Delete(node)
	pods, cleanup, err := benchnode.FloorPods(node, id, b.cfg.pods)
	defer cleanup()
	if err != nil {
		return 0, 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	pinDir := "/sys/fs/bpf/nrbench-" + id
	defer func() {
		if derr := datapath.Destroy(pinDir); derr != nil && err == nil {
			err = derr
		}
	}()
	t0 := time.Now()
	d, err := datapath.Open(pinDir)
	if err != nil {
		return 0, 0, err
	}
	defer d.Close()
	d.SetAttachMode(b.cfg.attachMode)
	for i := range b.cfg.services {
		svc := datapath.Service{Key: datapath.ServiceKey{IP: netip.AddrFrom4([4]byte{10, 96, byte(i / 250), byte(1 + i%250)}),
			Port: 80, Proto: datapath.ProtoTCP}}
		for p := i % 100; p < b.cfg.pods; p += 100 {
			svc.Backends = append(svc.Backends, datapath.Backend{IP: benchnode.PodIP(p), Port: 8080})
		}
		if err := d.SetService(svc); err != nil {
			return 0, 0, err
		}
	}
	fd, err := nsutil.Open(node)
	if err != nil {
		return 0, 0, err
	}
	defer fd.Close()
	for i := range b.cfg.pods {
		host := fmt.Sprintf("nrf%d", i)
		idx, err := ifindex(node, host)
		if err != nil {
			return 0, 0, err
		}
		if err := d.SetEndpoint(benchnode.PodIP(i), datapath.Endpoint{IfIndex: idx}); err != nil {
			return 0, 0, err
		}
		for _, dir := range datapath.HostDirections {
			if err := d.Attach(node, host, dir); err != nil {
				return 0, 0, err
			}
		}
	}
	return pods, time.Since(t0), nil
}

func ifindex(ns, name string) (int, error) {
	idx := 0
	err := nsutil.Do(ns, func() error {
		i, err := ifIndexHere(name)
		idx = i
		return err
	})
	return idx, err
}

var appliedRE = regexp.MustCompile(`applied (\d+) changes`)
var planRE = regexp.MustCompile(`Plan: (\d+) to add, (\d+) to change, (\d+) to destroy`)

// binRunner runs the netreconcile binary.
type binRunner struct{ b *bench }

func (r *binRunner) nodeArgs(cmd, file string) []string {
	b := r.b
	return []string{cmd, "-f", file, "--node", b.id, "--node-netns", b.nodeNS, "--state-dir", b.stateDir, "--bpffs", b.pinDir,
		"--log-format", "json", "--attach-mode", b.cfg.attachMode}
}

func (r *binRunner) exec(ctx context.Context, args []string, okCodes ...int) (string, measurement, error) {
	cmd := exec.CommandContext(ctx, r.b.bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	t0 := time.Now()
	err := cmd.Run()
	m := measurement{took: time.Since(t0), changes: -1}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			m.peakRSS = ru.Maxrss << 10 // KiB on Linux
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		for _, c := range okCodes {
			if ee.ExitCode() == c {
				err = nil
			}
		}
	}
	if err != nil {
		tail := errOut.String()
		if len(tail) > 2000 {
			tail = "..." + tail[len(tail)-2000:]
		}
		return "", m, fmt.Errorf("netreconcile %s: %w\n%s%s", strings.Join(args, " "), err, out.String(), tail)
	}
	return out.String(), m, nil
}

func (r *binRunner) apply(ctx context.Context, file, _ string) (measurement, error) {
	out, m, err := r.exec(ctx, r.nodeArgs("apply", file))
	if sm := appliedRE.FindStringSubmatch(out); sm != nil {
		m.changes, _ = strconv.Atoi(sm[1])
	} else if strings.Contains(out, "no changes") {
		m.changes = 0
	}
	return m, err
}

func (r *binRunner) plan(ctx context.Context, file, _ string) (measurement, error) {
	out, m, err := r.exec(ctx, r.nodeArgs("plan", file), 0)
	m.changes = 0
	if sm := planRE.FindStringSubmatch(out); sm != nil {
		a, _ := strconv.Atoi(sm[1])
		c, _ := strconv.Atoi(sm[2])
		d, _ := strconv.Atoi(sm[3])
		m.changes = a + c + d
	}
	return m, err
}

func (r *binRunner) destroy(ctx context.Context, file, _ string) (measurement, error) {
	out, m, err := r.exec(ctx, r.nodeArgs("destroy", file))
	if sm := appliedRE.FindStringSubmatch(out); sm != nil {
		m.changes, _ = strconv.Atoi(sm[1])
	}
	return m, err
}

// engineRunner runs the phases through reconcile.Engine in this process.
type engineRunner struct {
	b *bench
	e *reconcile.Engine
}

func newEngineRunner(b *bench) *engineRunner {
	return &engineRunner{b: b, e: &reconcile.Engine{
		Cfg: &reconcile.Config{Node: b.id, NodeNetns: b.nodeNS, StateDir: b.stateDir, BPFFS: b.pinDir,
			AttachMode: b.cfg.attachMode,
			Drivers:    reconcile.AllDrivers()},
		Log: engineLog(b.cfg.verbose),
	}}
}

func engineLog(verbose bool) logr.Logger {
	if !verbose {
		return logr.Discard()
	}
	return funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{Verbosity: 1})
}

// measure runs fn with the peak RSS reset and, with -cpuprofile, a CPU
// profile written to <dir>/<phase>.pprof.
func (r *engineRunner) measure(phase string, fn func() (int, error)) (measurement, error) {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM
	if dir := r.b.cfg.profileDir; dir != "" && phase != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return measurement{}, err
		}
		f, err := os.Create(filepath.Join(dir, phase+".pprof"))
		if err != nil {
			return measurement{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return measurement{}, err
		}
		defer pprof.StopCPUProfile()
	}
	t0 := time.Now()
	n, err := fn()
	return measurement{took: time.Since(t0), changes: n, peakRSS: vmHWM()}, err
}

func (r *engineRunner) apply(ctx context.Context, file, phase string) (measurement, error) {
	return r.measure(phase, func() (int, error) {
		res, err := spec.LoadFiles(file)
		if err != nil {
			return -1, err
		}
		out, err := r.e.Apply(ctx, res)
		if err != nil || out == nil {
			return -1, err
		}
		return out.Applied, nil
	})
}

func (r *engineRunner) plan(_ context.Context, file, phase string) (measurement, error) {
	return r.measure(phase, func() (int, error) {
		res, err := spec.LoadFiles(file)
		if err != nil {
			return -1, err
		}
		out, err := r.e.Plan(res, nil)
		if err != nil {
			return -1, err
		}
		return len(out.Plan.Changes), nil
	})
}

func (r *engineRunner) destroy(ctx context.Context, _, phase string) (measurement, error) {
	return r.measure(phase, func() (int, error) {
		out, err := r.e.Destroy(ctx)
		if err != nil || out == nil {
			return -1, err
		}
		return out.Applied, nil
	})
}

// vmHWM is this process's peak resident set size since the last reset.
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cleanup removes everything the run made: netreconcile's objects
// (destroy, which the last phase already did when all went well), the
// pod namespaces by name, the node namespace, pins and records.
func (b *bench) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if b.runner != nil {
		if _, err := b.runner.destroy(ctx, filepath.Join(b.dir, "full.yaml"), ""); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup: destroy:", err)
		}
	}
	for i := 0; i <= b.cfg.pods; i++ {
		_ = nsutil.Delete(b.podNetns(i))
	}
	_ = nsutil.Delete(b.nodeNS)
	if err := datapath.Destroy(b.pinDir); err != nil {
		fmt.Fprintln(os.Stderr, "cleanup:", err)
	}
}

// ifIndexHere looks name up in the calling thread's namespace with one
// ioctl (net.InterfaceByName would dump every link).
func ifIndexHere(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}
