package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/internal/nstest"
)

// unitFile is the example systemd unit; the daemon runs here with exactly
// the capabilities it grants.
const unitFile = "examples/systemd/netreconcile.service"

// watchProc is a `netreconcile watch` child process, started and stopped
// by PID, with its own notify socket (as systemd would provide) and
// metrics port.
type watchProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	logPath string
	metrics string
	done    chan struct{}
	err     error

	// Notifications, read as they come (as systemd does: a datagram
	// queue left unread would fill and block the sender).
	mu     sync.Mutex
	msgs   []string
	cursor int
}

// unitCaps reads CapabilityBoundingSet from the example unit and returns
// setpriv's argument that keeps exactly those.
func unitCaps(t *testing.T) (setprivArg string, want []string) {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, unitFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapabilityBoundingSet="); ok {
			want = strings.Fields(v)
		}
	}
	if len(want) == 0 {
		t.Fatalf("%s has no CapabilityBoundingSet", unitFile)
	}
	arg := "-all"
	for _, c := range want {
		arg += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
	}
	return arg, want
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startWatch starts the daemon on w's node and file and waits for
// READY=1. It runs under setpriv with the unit's capability bounding set
// and no_new_privs, as the unit runs it. It is stopped at cleanup
// (registered here, so before any lab teardown registered earlier).
func startWatch(t *testing.T, w *world, extra ...string) *watchProc {
	t.Helper()
	dir := t.TempDir()
	p := &watchProc{t: t, logPath: filepath.Join(dir, "watch.log"), metrics: freePort(t), done: make(chan struct{})}
	sock := filepath.Join(dir, "notify.sock")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { notify.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := notify.Read(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.msgs = append(p.msgs, string(buf[:n]))
			p.mu.Unlock()
		}
	}()
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	capArg, _ := unitCaps(t)
	args := append([]string{"--bounding-set=" + capArg, "--inh-caps=-all", "--no-new-privs", "--",
		w.bin, "watch", "-f", w.file, "--node", w.node, "--node-netns", w.nodeNS, "--state-dir", w.stateDir,
		"--metrics-addr", p.metrics, "--log-format", "json", "-v"}, extra...)
	p.cmd = exec.Command("setpriv", args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=1000000")
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("daemon log:\n%s", p.logs())
		}
	})
	t.Logf("$ %s  # pid %d", strings.Join(p.cmd.Args, " "), p.cmd.Process.Pid)
	if msg := p.waitNotify("READY=1", 60*time.Second); !strings.Contains(msg, "STATUS=") {
		t.Errorf("READY without STATUS: %q", msg)
	}
	return p
}

func (p *watchProc) pid() int { return p.cmd.Process.Pid }

func (p *watchProc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits; SIGKILL (to its process group, which
// holds only it) if it has not exited within 15 s. It returns the exit
// code (-1: killed).
func (p *watchProc) stop() int {
	if p.alive() {
		_ = syscall.Kill(p.pid(), syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			p.t.Errorf("daemon pid %d ignored SIGTERM for 15s; killing it", p.pid())
			_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
			<-p.done
		}
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	return 0
}

func (p *watchProc) logs() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// waitNotify waits for a notification containing want, after the ones
// an earlier waitNotify consumed, and consumes up to it.
func (p *watchProc) waitNotify(want string, timeout time.Duration) string {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p.mu.Lock()
		for ; p.cursor < len(p.msgs); p.cursor++ {
			if msg := p.msgs[p.cursor]; strings.Contains(msg, want) {
				p.cursor++
				p.mu.Unlock()
				return msg
			}
		}
		p.mu.Unlock()
		if time.Now().After(deadline) {
			p.t.Fatalf("no %q from the daemon in %v (alive: %v)\nlog:\n%s", want, timeout, p.alive(), p.logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// get fetches a path of the metrics listener.
func (p *watchProc) get(path string) (int, string) {
	p.t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.metrics + path)
	if err != nil {
		p.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// scrape returns the metric samples by `name{labels}`.
func (p *watchProc) scrape() map[string]float64 {
	p.t.Helper()
	code, body := p.get("/metrics")
	if code != 200 {
		p.t.Fatalf("/metrics: %d", code)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

// sumOf adds the samples whose key starts with prefix.
func sumOf(m map[string]float64, prefix string) float64 {
	var total float64
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			total += v
		}
	}
	return total
}

// eventually polls cond every 5 ms until it holds and returns how long
// that took; it fails the test after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		if time.Since(start) < 500*time.Millisecond {
			time.Sleep(5 * time.Millisecond)
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	return time.Since(start)
}

// replaceFile writes content the way editors do: a temporary file in the
// same directory, renamed over the file.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp~"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// ipOK runs ip(8) in ns and reports whether it succeeded with output
// containing want.
func ipHas(ns, want string, args ...string) bool {
	out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
	return err == nil && strings.Contains(string(out), want)
}

// planEmpty reports whether a plan of file against the node shows no
// changes.
func (w *world) planEmpty(file string) bool {
	_, _, code := Run(w.t, w.bin, "plan", "--detailed-exitcode", "-f", file, "--node", w.node, "--node-netns", w.nodeNS, "--state-dir", w.stateDir)
	return code == 0
}

// watchWorld builds a lab whose file lives at a fixed path (the daemon
// watches it), applied with pods, and registers its teardown.
func watchWorld(t *testing.T, pods []podDef) (*world, string) {
	w := newWorld(t)
	dir := t.TempDir()
	w.file = filepath.Join(dir, "topology.yaml")
	replaceFile(t, w.file, w.topo(pods))
	// Tests move w.file around; the lab's nodes never change.
	labFile := filepath.Join(dir, "lab.yaml")
	replaceFile(t, labFile, w.topo(pods))
	t.Cleanup(func() {
		w.labDown(labFile)
		for _, p := range pods {
			_ = exec.Command("ip", "netns", "del", p.netns).Run()
		}
	})
	w.mustRun("lab", "up", "-f", w.file, "--state-dir", w.stateDir)
	return w, dir
}

// TestWatchDaemon walks the daemon's promises on one lab node: it
// converges at start; drift (a pod's host interface, a node route, a route
// inside a pod) is repaired at once; file changes apply, also while
// flapping; an invalid or deleted file keeps the last good state; metrics
// and health endpoints move as expected; SIGHUP reloads; SIGTERM leaves
// traffic flowing; a restart recreates nothing; a ConfigMap-style symlink
// swap is followed.
func TestWatchDaemon(t *testing.T) {
	id := UniqueName("w")
	pods := []podDef{
		{"a", "10.244.1.10", "veth", id + "-a"},
		{"b", "10.244.1.11", "veth", id + "-b"},
		{"c", "10.244.1.20", "bridge", id + "-c"},
		{"d", "10.244.1.30", "veth", id + "-d"},
	}
	w, _ := watchWorld(t, pods[:2])
	t.Cleanup(func() {
		for _, p := range pods[2:] {
			_ = exec.Command("ip", "netns", "del", p.netns).Run()
		}
	})
	DumpOnFailure(t, w.nodeNS, pods[0].netns, pods[1].netns)
	// c is in the file the daemon starts with, not in what lab up applied.
	replaceFile(t, w.file, w.topo(pods[:3]))
	d := startWatch(t, w)

	// --- converges at start, with exactly the unit's capabilities
	if !netnsExists(pods[2].netns) || !w.planEmpty(w.file) {
		t.Fatal("watch did not converge at start")
	}
	_, wantCaps := unitCaps(t)
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.pid()))
	if eff := capEff(string(status)); eff != capMask(wantCaps) {
		t.Errorf("daemon CapEff %x, want %x (%v)", eff, capMask(wantCaps), wantCaps)
	}
	for _, p := range pods[:3] {
		nstest.StartEchoTCP(t, p.netns, p.ip+":7000", p.name)
	}
	checkTCP := func(from, to podDef) {
		t.Helper()
		if got := nstest.CheckTCP(t, from.netns, to.ip+":7000"); got != to.name {
			t.Errorf("tcp %s -> %s answered by %q", from.name, to.name, got)
		}
	}
	checkTCP(pods[0], pods[1])
	checkTCP(pods[0], pods[2])
	if code, _ := d.get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := d.get("/readyz"); code != 200 {
		t.Errorf("/readyz: %d", code)
	}
	m0 := d.scrape()
	if m0[`netreconcile_reconcile_runs_total{result="changed",trigger="start"}`] != 1 ||
		m0[`netreconcile_managed_objects{kind="netns"}`] != 3 || m0["netreconcile_watched_namespaces"] != 4 {
		t.Errorf("metrics at start: runs(start,changed)=%v netns=%v watched=%v",
			m0[`netreconcile_reconcile_runs_total{result="changed",trigger="start"}`],
			m0[`netreconcile_managed_objects{kind="netns"}`], m0["netreconcile_watched_namespaces"])
	}

	// --- drift: the host side of pod a, a node route, a route inside pod b
	hostA := drivers.HostIfName(w.node, "t/a")
	ip(t, w.nodeNS, "link", "del", hostA)
	lat := eventually(t, 10*time.Second, "host interface of pod a back", func() bool {
		return ipHas(w.nodeNS, "proto 154", "route", "show", "10.244.1.10/32")
	})
	t.Logf("drift repair: deleted host interface %s back with its route after %v", hostA, lat)
	ip(t, w.nodeNS, "route", "del", "10.244.1.11/32")
	lat = eventually(t, 10*time.Second, "node route to b back", func() bool {
		return ipHas(w.nodeNS, "proto 154", "route", "show", "10.244.1.11/32")
	})
	t.Logf("drift repair: deleted node route 10.244.1.11/32 back after %v", lat)
	ip(t, pods[1].netns, "route", "del", "default")
	lat = eventually(t, 10*time.Second, "default route in pod b back", func() bool {
		return ipHas(pods[1].netns, "169.254.1.1", "route", "show", "default")
	})
	t.Logf("drift repair: deleted default route inside pod b back after %v", lat)
	eventually(t, 10*time.Second, "converged after drift", func() bool { return w.planEmpty(w.file) })
	checkTCP(pods[0], pods[1])
	checkTCP(pods[1], pods[0])

	m1 := d.scrape()
	grew := func(name string, by float64) {
		t.Helper()
		if m1[name]-m0[name] < by {
			t.Errorf("%s: %v -> %v, want +%v at least", name, m0[name], m1[name], by)
		}
	}
	grew(`netreconcile_drift_repaired_total{kind="link"}`, 1)
	grew(`netreconcile_drift_repaired_total{kind="route"}`, 3) // a's /32 with its link, b's /32, b's default
	// Three passes that changed something (whatever else was pending
	// then, e.g. a kernel event of the start, names their trigger).
	if n := sumOf(m1, `netreconcile_reconcile_runs_total{result="changed"`) - sumOf(m0, `netreconcile_reconcile_runs_total{result="changed"`); n < 3 {
		t.Errorf("passes that changed something: +%v, want +3", n)
	}
	grew(`netreconcile_changes_applied_total{action="create",kind="link"}`, 1)
	grew(`netreconcile_kernel_events_total{kind="link"}`, 1)
	grew(`netreconcile_kernel_events_total{kind="route"}`, 2)
	grew(`netreconcile_drift_repair_seconds_count`, 3)
	grew(`netreconcile_last_success_timestamp_seconds`, 0.001)
	if m1[`netreconcile_errors_total{stage="reconcile"}`] != 0 {
		t.Errorf("reconcile errors: %v", m1[`netreconcile_errors_total{stage="reconcile"}`])
	}
	t.Logf("drift repair latency as the daemon measured it (event to repaired): mean %.1f ms over %v repairs",
		1000*(m1["netreconcile_drift_repair_seconds_sum"]-m0["netreconcile_drift_repair_seconds_sum"])/
			(m1["netreconcile_drift_repair_seconds_count"]-m0["netreconcile_drift_repair_seconds_count"]),
		m1["netreconcile_drift_repair_seconds_count"]-m0["netreconcile_drift_repair_seconds_count"])

	// --- a pod added to the file appears
	replaceFile(t, w.file, w.topo(pods))
	eventually(t, 10*time.Second, "pod d created", func() bool {
		return netnsExists(pods[3].netns) && ipHas(w.nodeNS, "proto 154", "route", "show", pods[3].ip+"/32")
	})
	eventually(t, 10*time.Second, "converged after adding d", func() bool { return w.planEmpty(w.file) })
	echoD := nstest.StartEchoTCP(t, pods[3].netns, pods[3].ip+":7000", "d")
	checkTCP(pods[0], pods[3])

	// --- an invalid file: refused, logged, last good state kept and still repaired
	good := w.topo(pods)
	goodCopy := WriteFile(t, "good.yaml", good)
	replaceFile(t, w.file, strings.Replace(good, "kind: Topology", "kind: Topology\ncolour: blue", 1))
	eventually(t, 10*time.Second, "invalid file logged", func() bool {
		return strings.Contains(d.logs(), "topology file is invalid; keeping the last good state")
	})
	if !d.alive() || !strings.Contains(d.logs(), "unknown field") {
		t.Fatalf("after an invalid file: alive=%v", d.alive())
	}
	if d.scrape()["netreconcile_config_last_reload_successful"] != 0 {
		t.Error("config_last_reload_successful is not 0 after an invalid file")
	}
	ip(t, w.nodeNS, "route", "del", pods[3].ip+"/32")
	eventually(t, 10*time.Second, "drift repaired while the file is invalid", func() bool {
		return ipHas(w.nodeNS, "proto 154", "route", "show", pods[3].ip+"/32")
	})
	if !w.planEmpty(goodCopy) {
		t.Error("the last good state was not kept")
	}
	replaceFile(t, w.file, good)
	eventually(t, 10*time.Second, "valid again", func() bool {
		return d.scrape()["netreconcile_config_last_reload_successful"] == 1
	})

	// --- the file deleted while running: state kept, waits for it
	if err := os.Remove(w.file); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "deleted file logged", func() bool {
		return strings.Contains(d.logs(), "topology file is gone; keeping the last good state until it is back")
	})
	time.Sleep(300 * time.Millisecond)
	if !d.alive() || !w.planEmpty(goodCopy) {
		t.Fatalf("after the file was deleted: alive=%v", d.alive())
	}
	// ... and returns with a change: d moves to another address.
	moved := append([]podDef(nil), pods...)
	moved[3].ip = "10.244.1.31"
	replaceFile(t, w.file, w.topo(moved))
	eventually(t, 10*time.Second, "file back, d moved", func() bool {
		return ipHas(w.nodeNS, "proto 154", "route", "show", "10.244.1.31/32")
	})

	// --- a flapping file converges to its last version, in few passes
	before := d.scrape()[`netreconcile_reconcile_runs_total{result="changed",trigger="file"}`]
	var last []podDef
	for i := range 20 {
		last = append([]podDef(nil), pods...)
		last[3].ip = fmt.Sprintf("10.244.1.%d", 40+i)
		replaceFile(t, w.file, w.topo(last))
		time.Sleep(10 * time.Millisecond)
	}
	eventually(t, 10*time.Second, "flapping file: last version applied", func() bool {
		return ipHas(w.nodeNS, "proto 154", "route", "show", "10.244.1.59/32") && w.planEmpty(w.file)
	})
	routes := ip(t, w.nodeNS, "route", "show", "proto", "154")
	for i := 40; i < 59; i++ {
		if strings.Contains(routes, fmt.Sprintf("10.244.1.%d ", i)) {
			t.Errorf("an intermediate version left its route:\n%s", routes)
		}
	}
	if n := d.scrape()[`netreconcile_reconcile_runs_total{result="changed",trigger="file"}`] - before; n > 3 {
		t.Errorf("20 writes in 200 ms made %v passes; the debounce should gather them", n)
	}

	// --- SIGHUP: RELOADING=1, then READY=1 again
	if err := syscall.Kill(d.pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if msg := d.waitNotify("RELOADING=1", 10*time.Second); !strings.Contains(msg, "MONOTONIC_USEC=") {
		t.Errorf("RELOADING without MONOTONIC_USEC: %q", msg)
	}
	if msg := d.waitNotify("READY=1", 10*time.Second); !strings.Contains(msg, "STATUS=converged; 4 pods") {
		t.Errorf("READY after reload: %q", msg)
	}
	d.waitNotify("WATCHDOG=1", 5*time.Second)

	// --- SIGTERM: exits 0, traffic keeps flowing, a connection survives
	conn, err := nstest.DialTCP(pods[0].netns, pods[1].ip+":7000", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	if banner, err := rd.ReadString('\n'); err != nil || banner != "b\n" {
		t.Fatalf("long-lived connection banner %q: %v", banner, err)
	}
	nodeIdx := ifindexes(t, w.nodeNS)
	podIdx := map[string]map[string]int{}
	for _, p := range last {
		podIdx[p.name] = ifindexes(t, p.netns)
	}
	if code := d.stop(); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	d.waitNotify("STOPPING=1", time.Second)
	checkTCP(pods[0], pods[1])
	checkTCP(pods[1], pods[2])
	checkTCP(pods[2], pods[0])
	if !w.planEmpty(w.file) {
		t.Error("the daemon's exit changed the node")
	}

	// --- restart from a ConfigMap-style directory: adopts, recreates nothing
	cm := t.TempDir()
	if err := os.Mkdir(filepath.Join(cm, "..v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cm, "..v1", "topology.yaml"), []byte(w.topo(last)), 0o644); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, "..v1", filepath.Join(cm, "..data"))
	mustSymlink(t, "..data/topology.yaml", filepath.Join(cm, "topology.yaml"))
	w.file = filepath.Join(cm, "topology.yaml")
	d2 := startWatch(t, w)
	if logs := d2.logs(); strings.Contains(logs, `"msg":"applied"`) {
		t.Errorf("restart applied changes:\n%s", logs)
	}
	m2 := d2.scrape()
	if m2[`netreconcile_reconcile_runs_total{result="unchanged",trigger="start"}`] != 1 {
		t.Errorf("restart: first pass was not a no-op")
	}
	for k, v := range m2 {
		if strings.HasPrefix(k, "netreconcile_changes_applied_total") && v != 0 {
			t.Errorf("restart: %s = %v", k, v)
		}
	}
	sameIdx := func(what string, before, after map[string]int) {
		for name, idx := range before {
			if after[name] != idx {
				t.Errorf("%s: link %s ifindex %d -> %d (recreated)", what, name, idx, after[name])
			}
		}
	}
	sameIdx("node", nodeIdx, ifindexes(t, w.nodeNS))
	for _, p := range last {
		sameIdx("pod "+p.name, podIdx[p.name], ifindexes(t, p.netns))
	}
	// The connection opened before the restart still carries data.
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Write([]byte("still there\n")); err != nil {
		t.Fatalf("long-lived connection after restart: %v", err)
	}
	if echo, err := rd.ReadString('\n'); err != nil || echo != "still there\n" {
		t.Fatalf("long-lived connection after restart: %q, %v", echo, err)
	}

	// The ConfigMap update: a new directory, ..data swapped atomically.
	// d leaves the file; nothing may hold its namespace then, the daemon's
	// subscription included (d's echo server would).
	echoD.Close()
	swapped := append([]podDef(nil), last...)
	swapped = swapped[:3] // d leaves the file
	if err := os.Mkdir(filepath.Join(cm, "..v2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cm, "..v2", "topology.yaml"), []byte(w.topo(swapped)), 0o644); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, "..v2", filepath.Join(cm, "..data_tmp"))
	if err := os.Rename(filepath.Join(cm, "..data_tmp"), filepath.Join(cm, "..data")); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(cm, "..v1"))
	lat = eventually(t, 10*time.Second, "ConfigMap swap followed: pod d removed", func() bool {
		return !netnsExists(pods[3].netns) && w.planEmpty(w.file)
	})
	t.Logf("ConfigMap swap applied after %v", lat)
	if strings.Contains(d2.logs(), "still held open") {
		t.Error("removing pod d waited for its namespace: something (the daemon's subscription?) held it")
	}
	checkTCP(pods[0], pods[2])
	if code := d2.stop(); code != 0 {
		t.Errorf("second daemon: exit %d", code)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// capNames maps the capability names the unit may use to their numbers.
var capNames = map[string]uint{"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_SYS_ADMIN": 21, "CAP_SYS_PTRACE": 19,
	"CAP_SYS_RESOURCE": 24, "CAP_DAC_OVERRIDE": 1, "CAP_PERFMON": 38, "CAP_BPF": 39}

func capMask(names []string) uint64 {
	var m uint64
	for _, n := range names {
		m |= 1 << capNames[n]
	}
	return m
}

func capEff(status string) uint64 {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			m, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return m
		}
	}
	return 0
}

// TestWatchLock: while the daemon holds a node, apply of the file it
// follows is handed to it through the control socket: it converges at
// once and apply reports what it did (a pod added is reached over TCP);
// apply of another file, or of the followed file made invalid, fails at
// once, naming why, and changes nothing. destroy fails at once with
// --lock-timeout 0, naming the daemon, and with a timeout waits (saying
// so) and runs once the daemon stops.
func TestWatchLock(t *testing.T) {
	id := UniqueName("l")
	pods := []podDef{{"a", "10.244.1.10", "veth", id + "-a"}, {"b", "10.244.1.11", "veth", id + "-b"}}
	w, dir := watchWorld(t, pods[:1])
	d := startWatch(t, w)
	pid := strconv.Itoa(d.pid())

	// apply of the followed file: the daemon converges it at once (the
	// file's quiet time is 200 ms; apply returns before it would end).
	replaceFile(t, w.file, w.topo(pods))
	start := time.Now()
	out, errOut, code := Run(t, w.bin, w.nodeArgs("apply", "--lock-timeout", "0")...)
	took := time.Since(start)
	if code != 0 || !strings.Contains(out, "applied") || !strings.Contains(out, "pid "+pid) {
		t.Fatalf("apply through the daemon: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("apply through the daemon took %v: %s", took.Round(time.Millisecond), strings.TrimSpace(out))
	if !netnsExists(pods[1].netns) {
		t.Fatalf("pod b's namespace is missing after apply said: %s", out)
	}
	nstest.StartEchoTCP(t, pods[1].netns, pods[1].ip+":7000", "b")
	if got := nstest.CheckTCP(t, pods[0].netns, pods[1].ip+":7000"); got != "b" {
		t.Errorf("tcp a -> b after apply through the daemon: answered by %q", got)
	}
	out, errOut, code = Run(t, w.bin, w.nodeArgs("apply")...)
	if code != 0 || !strings.Contains(out, "no changes") {
		t.Errorf("second apply through the daemon: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(d.logs(), `"trigger":"apply"`) {
		t.Errorf("the daemon's log names no apply pass:\n%s", d.logs())
	}

	// Another file, even with the same content: refused at once.
	other := filepath.Join(dir, "other.yaml")
	replaceFile(t, other, w.topo(pods[:1]))
	args := w.nodeArgs("apply")
	args[slices.Index(args, w.file)] = other
	_, errOut, code = Run(t, w.bin, args...)
	if code != 1 || !strings.Contains(errOut, "follows "+w.file) || !strings.Contains(errOut, "pid "+pid) {
		t.Errorf("apply of another file: exit %d\n%s", code, errOut)
	}
	// Standard input cannot be handed over: refused at once.
	args = w.nodeArgs("apply")
	args[slices.Index(args, w.file)] = "-"
	cmd := exec.Command(w.bin, args...)
	cmd.Stdin = strings.NewReader(w.topo(pods))
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "standard input cannot be handed") {
		t.Errorf("apply -f - while the daemon runs: %v\n%s", err, out)
	}
	// The followed file made invalid: its error, and nothing changes.
	replaceFile(t, w.file, "apiVersion: netreconcile/v1\nkind: Topology\npods: 3\n")
	_, errOut, code = Run(t, w.bin, w.nodeArgs("apply")...)
	if code != 1 || !strings.Contains(errOut, ":3:7: pods") {
		t.Errorf("apply of an invalid file: exit %d\n%s", code, errOut)
	}
	if !netnsExists(pods[1].netns) {
		t.Error("an invalid file removed pod b")
	}
	replaceFile(t, w.file, w.topo(pods))

	_, errOut, code = Run(t, w.bin, w.nodeArgs("destroy", "--lock-timeout", "0")...)
	if code != 1 || !strings.Contains(errOut, "locked") || !strings.Contains(errOut, "pid "+pid) ||
		!strings.Contains(errOut, "watch") || !netnsExists(pods[0].netns) {
		t.Fatalf("destroy while the daemon runs: exit %d\n%s", code, errOut)
	}

	ctx, cancel := context.WithTimeout(context.Background(), RunTimeout)
	defer cancel()
	destroy := exec.CommandContext(ctx, w.bin, w.nodeArgs("destroy", "--lock-timeout", "60s")...)
	var stdout strings.Builder
	stderr := &lockedBuffer{}
	destroy.Stdout, destroy.Stderr = &stdout, stderr
	start = time.Now()
	if err := destroy.Start(); err != nil {
		t.Fatal(err)
	}
	destroyed := make(chan error, 1)
	go func() { destroyed <- destroy.Wait() }()
	eventually(t, 10*time.Second, "destroy says it waits", func() bool {
		return strings.Contains(stderr.String(), "Waiting for node")
	})
	select {
	case err := <-destroyed:
		t.Fatalf("destroy ran while the daemon held the node: %v\n%s", err, stderr.String())
	case <-time.After(500 * time.Millisecond):
	}
	stopped := time.Now()
	if code := d.stop(); code != 0 {
		t.Fatalf("daemon exit %d", code)
	}
	if err := <-destroyed; err != nil {
		t.Fatalf("destroy after the daemon stopped: %v\n%s", err, stderr.String())
	}
	t.Logf("destroy waited %v, then ran %v after the daemon stopped", time.Since(start).Round(time.Millisecond),
		time.Since(stopped).Round(time.Millisecond))
	if netnsExists(pods[0].netns) || netnsExists(pods[1].netns) {
		t.Errorf("destroy after the daemon left pod namespaces: %s", stdout.String())
	}
	if _, err := os.Stat(filepath.Join(w.stateDir, w.node+".sock")); !os.IsNotExist(err) {
		t.Errorf("the daemon left its control socket: %v", err)
	}
	// With no daemon, apply takes the node itself.
	out, errOut, code = Run(t, w.bin, w.nodeArgs("apply")...)
	if code != 0 || strings.Contains(out, "daemon") || !netnsExists(pods[1].netns) {
		t.Errorf("apply without the daemon: exit %d\n%s%s", code, out, errOut)
	}
}

// lockedBuffer is a strings.Builder safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWatchBadStart: the daemon refuses to start, exit 1 with a clear
// message, on a missing file, an invalid file, a node not in the file,
// standard input, and a metrics address in use. Nothing is built.
func TestWatchBadStart(t *testing.T) {
	bin := BuildBinary(t)
	state := t.TempDir()
	node := UniqueName("b") + "n"
	good := fmt.Sprintf(`apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16}
nodes:
  - {name: %s, address: 172.31.1.2/24, uplink: eth0, podCIDR: 10.244.1.0/24}
`, node)
	goodFile := WriteFile(t, "good.yaml", good)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	invalid := WriteFile(t, "bad.yaml", good+"colour: blue\n")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"-f", missing, "--node", node}, "nope.yaml: no such file or directory"},
		{"invalid file", []string{"-f", invalid, "--node", node}, invalid + ":6:1"},
		{"node not in file", []string{"-f", goodFile, "--node", "other"}, `node "other" is not in`},
		{"stdin", []string{"-f", "-", "--node", node}, "standard input cannot be watched"},
		{"metrics address in use", []string{"-f", goodFile, "--node", node, "--metrics-addr", busy.Addr().String()}, "address already in use"},
	} {
		args := append([]string{"watch", "--state-dir", state, "--node-netns", "/nonexistent-" + node}, c.args...)
		out, errOut, code := Run(t, bin, args...)
		if code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, want 1 with %q\n%s%s", c.name, code, c.want, out, errOut)
		}
	}
}
