// Package probe measures which pods can reach which, with real traffic, in
// a lab or on a node whose pods' network namespaces are on this machine,
// and compares the result with what the policies say (package policy).
//
// For every port to probe it starts a short-lived listener in every pod
// (TCP: accept and close; UDP: echo), or uses one that is already bound
// there, then tries every ordered pair of pods at once, a bounded number in
// parallel: TCP counts as reached when the handshake completes (or the
// destination refuses: the packets crossed both ways), UDP when the echo
// (or an ICMP port unreachable) comes back. A denied connection is
// dropped, so it costs the whole timeout; cells that look denied are tried
// again (Options.Retries) before they count, so that a slow machine makes
// a probe slower, not wrong. A connection that got through is proof.
package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"

	"github.com/netreconcile/netreconcile/internal/natsort"
	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/policy"
	"github.com/netreconcile/netreconcile/spec"
)

// Target is a port and protocol to probe.
type Target struct {
	Port  int    `json:"port"`
	Proto string `json:"protocol"` // TCP or UDP
}

func (t Target) String() string { return fmt.Sprintf("%d/%s", t.Port, t.Proto) }

// Options tune a probe. The zero value probes every declared TCP and UDP
// port of every pod found here, 1 s per attempt, one retry, 64 at once.
type Options struct {
	// Targets to probe; empty: the union of the pods' declared TCP and
	// UDP ports.
	Targets []Target
	// Timeout of one attempt (default 1 s).
	Timeout time.Duration
	// Retries for cells that look denied (default 1; negative: none).
	Retries int
	// Parallel bounds the attempts in flight (default 64).
	Parallel int
	// Nodes, when set, keeps the pods of these nodes only (a lab of a
	// few nodes of a cluster-sized file), and the services whose every
	// backend is on them.
	Nodes []string
}

// Matrix is the outcome for one target over Result.Pods.
type Matrix struct {
	Target
	Expected [][]bool `json:"-"`
	Observed [][]bool `json:"-"`
	// Disagreements lists the cells where Observed differs from Expected.
	Disagreements []policy.Disagreement `json:"-"`
}

// Result is a whole probe.
type Result struct {
	// Pods are the rows and columns, in natural order of their keys.
	Pods     []string
	Matrices []Matrix
	// Services: every pod to every service port through its clusterIP
	// (nil when no target was given on the command line... see Run).
	Services *ServiceMatrix
	// Notes say what was skipped or borrowed (pods whose namespace is not
	// here, SCTP ports, ports already bound by another server).
	Notes []string
}

// Agree reports whether every observed matrix is the expected one.
func (r *Result) Agree() bool {
	for _, m := range r.Matrices {
		if len(m.Disagreements) > 0 {
			return false
		}
	}
	return r.Services == nil || len(r.Services.Disagreements) == 0
}

// Errors matched with errors.Is.
var (
	// ErrNoPods: none of the file's pods has its namespace here.
	ErrNoPods = errors.New("no pod of the file has its network namespace on this machine")
	// ErrNoTargets: nothing to probe (no declared TCP or UDP port).
	ErrNoTargets = errors.New("no TCP or UDP port to probe")
)

// pod is a pod found here, with its namespace open.
type pod struct {
	key string
	ip  string
	ns  netns.NsHandle
}

// Run probes r's pods and compares with policy.Matrix.
func Run(ctx context.Context, r *spec.Resolved, o Options) (*Result, error) {
	o = o.withDefaults()
	res := &Result{}
	pods := openPods(r, res, o.Nodes)
	defer func() {
		for _, p := range pods {
			p.ns.Close()
		}
	}()
	if len(pods) == 0 {
		return nil, fmt.Errorf("probe: %w", ErrNoPods)
	}
	targets := o.Targets
	if len(targets) == 0 {
		// The default: every port the file names (pods, services'
		// targets, policies), and every service through its clusterIP.
		svcs, backendPorts := serviceTargets(r, res, o.Nodes)
		targets = declared(r, res, backendPorts)
		if len(svcs) > 0 {
			res.Services = &ServiceMatrix{Targets: svcs}
		}
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("probe: %w (declare pods[].ports or give ports)", ErrNoTargets)
	}

	stop, notes, err := listen(pods, targets)
	defer stop()
	if err != nil {
		return nil, err
	}
	res.Notes = append(res.Notes, notes...)

	for _, t := range targets {
		m := Matrix{Target: t, Expected: policy.Matrix(r, res.Pods, t.Port, t.Proto), Observed: grid(len(pods))}
		res.Matrices = append(res.Matrices, m)
	}
	if err := observe(ctx, pods, targets, o, res); err != nil {
		return nil, err
	}
	if res.Services != nil {
		if err := expectServices(r, pods, res.Services); err != nil {
			return nil, err
		}
		if err := observeServices(ctx, pods, res.Services, o); err != nil {
			return nil, err
		}
	}
	for i := range res.Matrices {
		m := &res.Matrices[i]
		d, err := policy.Compare(res.Pods, m.Expected, m.Observed)
		if err != nil {
			return nil, err
		}
		m.Disagreements = d
	}
	return res, nil
}

// withDefaults fills in the zero fields of o.
func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.Retries == 0 {
		o.Retries = 1
	}
	if o.Parallel <= 0 {
		o.Parallel = 64
	}
	return o
}

// openPods opens the namespace of every IPv4 pod of r found here (on
// nodes, when given), adding them to res.Pods and a note to res for each
// pod skipped.
func openPods(r *spec.Resolved, res *Result, nodes []string) []*pod {
	var pods []*pod
	var order []spec.ResolvedPod
	for _, p := range r.Pods {
		if len(nodes) == 0 || slices.Contains(nodes, p.Node) {
			order = append(order, p)
		}
	}
	slices.SortFunc(order, func(a, b spec.ResolvedPod) int { return natsort.Compare(a.Key, b.Key) })
	for _, p := range order {
		if !p.IP.Is4() {
			res.Notes = append(res.Notes, fmt.Sprintf("pod %s skipped: %s is not IPv4", p.Key, p.IP))
			continue
		}
		h, err := nsutil.Open(p.Netns)
		if err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("pod %s skipped: netns %s is not here", p.Key, p.Netns))
			continue
		}
		pods = append(pods, &pod{key: p.Key, ip: p.IP.String(), ns: h})
		res.Pods = append(res.Pods, p.Key)
	}
	return pods
}

// cell is one attempt: target t from pods[i] to pods[j].
type cell struct{ t, i, j int }

// observe tries every cell, and again those that failed, up to
// o.Retries times, marking what got through in res's Observed matrices.
func observe(ctx context.Context, pods []*pod, targets []Target, o Options, res *Result) error {
	var todo []cell
	for ti := range targets {
		for i := range pods {
			for j := range pods {
				todo = append(todo, cell{ti, i, j})
			}
		}
	}
	for attempt := 0; attempt <= max(o.Retries, 0) && len(todo) > 0; attempt++ {
		failed := tryCells(ctx, pods, targets, todo, o, res)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		todo = failed
	}
	return nil
}

// tryCells tries the cells of todo, o.Parallel at once, until done or ctx
// ends, and returns those that did not get through.
func tryCells(ctx context.Context, pods []*pod, targets []Target, todo []cell, o Options, res *Result) []cell {
	work := make(chan cell)
	var mu sync.Mutex
	var failed []cell
	var wg sync.WaitGroup
	for range min(o.Parallel, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				ok := try(pods[c.i], pods[c.j], targets[c.t], o.Timeout)
				mu.Lock()
				if ok {
					res.Matrices[c.t].Observed[c.i][c.j] = true
				} else {
					failed = append(failed, c)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, c := range todo {
		select {
		case work <- c:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	return failed
}

func grid(n int) [][]bool {
	m := make([][]bool, n)
	for i := range m {
		m[i] = make([]bool, n)
	}
	return m
}

// declared is the union of the TCP and UDP ports the file names (the
// pods', extra, and the policies' numbered ports), sorted.
func declared(r *spec.Resolved, res *Result, extra []Target) []Target {
	seen := map[Target]bool{}
	for _, t := range extra {
		seen[t] = true
	}
	for _, pol := range r.Policies {
		for _, t := range policyPorts(pol.Spec) {
			seen[t] = true
		}
	}
	sctp := false
	for _, p := range r.Pods {
		for _, cp := range p.Ports {
			proto := cp.Protocol
			if proto == "" {
				proto = spec.ProtocolTCP
			}
			if proto == spec.ProtocolSCTP {
				sctp = true
				continue
			}
			seen[Target{cp.Port, proto}] = true
		}
	}
	if sctp {
		res.Notes = append(res.Notes, "SCTP ports are not probed")
	}
	out := make([]Target, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Target) int {
		if a.Port != b.Port {
			return a.Port - b.Port
		}
		return strings.Compare(a.Proto, b.Proto)
	})
	return out
}

// listen starts a listener for every target in every pod; stop closes
// them all.
func listen(pods []*pod, targets []Target) (stop func(), notes []string, err error) {
	var closers []io.Closer
	stop = func() {
		for _, c := range closers {
			c.Close()
		}
	}
	for _, p := range pods {
		for _, t := range targets {
			addr := net.JoinHostPort(p.ip, fmt.Sprint(t.Port))
			var c io.Closer
			err := nsutil.DoHandle(p.ns, func() error {
				if t.Proto == spec.ProtocolUDP {
					pc, err := net.ListenPacket("udp4", addr)
					if err == nil {
						go echo(pc)
						c = pc
					}
					return err
				}
				l, err := net.Listen("tcp4", addr)
				if err == nil {
					go accept(l)
					c = l
				}
				return err
			})
			switch {
			case errors.Is(err, syscall.EADDRINUSE):
				msg := fmt.Sprintf("%s %s: already bound there; probing the server that holds it", p.key, t)
				if t.Proto == spec.ProtocolUDP {
					msg += " (it must answer datagrams, or its cells read as denied)"
				}
				notes = append(notes, msg)
			case err != nil:
				return stop, notes, fmt.Errorf("probe: listen on %s in pod %s: %w", t, p.key, err)
			default:
				closers = append(closers, c)
			}
		}
	}
	return stop, notes, nil
}

func accept(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		c.Close()
	}
}

func echo(pc net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err == nil {
			pc.WriteTo(buf[:n], from)
		}
	}
}

// udpResend is how often a UDP attempt repeats its datagram.
const udpResend = 100 * time.Millisecond

// try makes one attempt from src to dst on t.
func try(src, dst *pod, t Target, timeout time.Duration) bool {
	addr := net.JoinHostPort(dst.ip, fmt.Sprint(t.Port))
	var c net.Conn
	network := "tcp4"
	if t.Proto == spec.ProtocolUDP {
		network = "udp4"
	}
	err := nsutil.DoHandle(src.ns, func() (err error) {
		d := net.Dialer{Timeout: timeout}
		c, err = d.Dial(network, addr)
		return err
	})
	if network == "tcp4" {
		if err == nil {
			c.Close()
		}
		return err == nil || errors.Is(err, syscall.ECONNREFUSED)
	}
	if err != nil {
		return false
	}
	defer c.Close()
	payload := []byte("netreconcile-probe " + src.key + " " + addr)
	buf := make([]byte, 1500)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := c.Write(payload); err != nil {
			return errors.Is(err, syscall.ECONNREFUSED)
		}
		round := time.Now().Add(udpResend)
		if round.After(deadline) {
			round = deadline
		}
		c.SetReadDeadline(round)
		for {
			n, err := c.Read(buf)
			if err != nil {
				if errors.Is(err, syscall.ECONNREFUSED) {
					return true
				}
				break // timeout of this round: send again
			}
			if string(buf[:n]) == string(payload) {
				return true
			}
		}
	}
	return false
}

// policyPorts are the numbered TCP and UDP ports a policy's rules name
// (the first of a range).
func policyPorts(ps spec.PolicySpec) []Target {
	var out []Target
	add := func(ports []spec.PolicyPort) {
		for _, pp := range ports {
			proto := pp.Protocol
			if proto == "" {
				proto = spec.ProtocolTCP
			}
			if pp.Port != nil && !pp.Port.IsString && proto != spec.ProtocolSCTP {
				out = append(out, Target{pp.Port.IntVal, proto})
			}
		}
	}
	for _, r := range ps.Ingress {
		add(r.Ports)
	}
	for _, r := range ps.Egress {
		add(r.Ports)
	}
	return out
}
