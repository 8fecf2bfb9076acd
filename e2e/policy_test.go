package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/internal/nstest"
	"github.com/netreconcile/netreconcile/internal/policymodel"
	"github.com/netreconcile/netreconcile/policy"
	"github.com/netreconcile/netreconcile/spec"
)

// The policy tests run the standard model of the Kubernetes network-policy
// e2e tests (internal/policymodel: namespaces x, y, z, pods a, b, c,
// serving TCP and UDP on 80 and 81) on a lab of two nodes, pods of every
// mode on both, plus a service in front of y/b. One lab serves every
// scenario: each is applied to the live lab (so the tests also show that
// policy changes converge and the traffic follows), then probed.
//
// Expected matrices come from policy.Matrix, the evaluator that explain
// uses and that package policy tests against hand-written tables; the
// enforcement (policy/compile and bpf/policy.h) shares no code with it.

// polLab is the lab of the policy tests.
type polLab struct {
	t        *testing.T
	bin, id  string
	stateDir string
	dir      string // files: the whole test's, so that cleanup finds the last one
	nodes    [2]string
	file     string
	res      *spec.Resolved
}

const (
	polClusterIP = "10.96.0.10"
	polSvcPort   = 8080 // -> y/b:80
	polTimeout   = 300 * time.Millisecond
)

func (l *polLab) netns(key string) string { return l.id + "-" + strings.ReplaceAll(key, "/", "") }

// polModes spreads the attachment modes over the pods: each node gets veth,
// bridge and macvlan pods.
var polModes = map[string]string{
	"x/a": "veth", "x/b": "veth", "x/c": "bridge", "y/a": "bridge", "y/b": "macvlan",
	"y/c": "macvlan", "z/a": "veth", "z/b": "bridge", "z/c": "bridge",
}

func (l *polLab) yaml(sc policymodel.Scenario) string {
	return policymodel.YAML(sc, policymodel.Options{
		Nodes:       l.nodes,
		Netns:       l.netns,
		Mode:        func(key string) string { return polModes[key] },
		ServiceCIDR: "10.96.0.0/16",
		Extra: fmt.Sprintf(`services:
  - {name: web, namespace: y, clusterIP: %s, selector: {pod: b}, ports: [{port: %d, targetPort: 80}]}
`, polClusterIP, polSvcPort),
	})
}

// write writes the scenario's file and makes it the lab's current one.
func (l *polLab) write(sc policymodel.Scenario) {
	l.t.Helper()
	src := l.yaml(sc)
	r, err := spec.LoadBytes("scenario.yaml", []byte(src))
	if err != nil {
		l.t.Fatalf("scenario %q: %v\n%s", sc.Name, err, src)
	}
	l.file = filepath.Join(l.dir, fmt.Sprintf("%s-%d.yaml", l.id, time.Now().UnixNano()))
	if err := os.WriteFile(l.file, []byte(src), 0o644); err != nil {
		l.t.Fatal(err)
	}
	l.res = r
}

func newPolLab(t *testing.T) *polLab {
	nstest.RequireRoot(t)
	l := &polLab{t: t, bin: BuildBinary(t), id: UniqueName("np"), stateDir: t.TempDir(), dir: t.TempDir()}
	l.nodes = [2]string{l.id + "a", l.id + "b"}
	l.write(policymodel.Scenario{})
	t.Cleanup(func() {
		if t.Failed() {
			DumpState(t, "nrlab-"+l.nodes[0], "nrlab-"+l.nodes[1])
		}
		if _, errOut, code := Run(t, l.bin, "lab", "down", "-f", l.file, "--state-dir", l.stateDir); code != 0 {
			t.Errorf("lab down: exit %d\n%s", code, errOut)
		}
		for _, key := range policymodel.Pods {
			_ = exec.Command("ip", "netns", "del", l.netns(key)).Run()
		}
	})
	if out, errOut, code := Run(t, l.bin, "lab", "up", "-f", l.file, "--state-dir", l.stateDir); code != 0 {
		t.Fatalf("lab up: exit %d\n%s%s", code, out, errOut)
	}
	return l
}

func (l *polLab) nodeArgs(i int, args ...string) []string {
	return append(args, "-f", l.file, "--node", l.nodes[i], "--node-netns", "nrlab-"+l.nodes[i], "--state-dir", l.stateDir)
}

// apply applies the current file on both nodes and checks that a plan
// right after finds nothing to do.
func (l *polLab) apply() {
	l.t.Helper()
	for i := range l.nodes {
		if out, errOut, code := Run(l.t, l.bin, l.nodeArgs(i, "apply")...); code != 0 {
			l.t.Fatalf("apply on %s: exit %d\n%s%s", l.nodes[i], code, out, errOut)
		}
	}
	for i := range l.nodes {
		if out, errOut, code := Run(l.t, l.bin, l.nodeArgs(i, "plan", "--detailed-exitcode")...); code != 0 {
			l.t.Errorf("plan on %s after apply: exit %d\n%s%s", l.nodes[i], code, out, errOut)
		}
	}
}

// probeJSON is probe -o json.
type probeJSON struct {
	Pods     []string
	Matrices []struct {
		Port          int
		Protocol      string
		Expected      []string
		Observed      []string
		Disagreements []string
	}
	Agree bool
	Notes []string
}

// probe runs `netreconcile probe` on the checks' ports and compares what
// it observed with policy.Matrix, computed here too.
func (l *polLab) probe(checks []policymodel.Check) {
	l.t.Helper()
	args := []string{"probe", "-f", l.file, "-o", "json", "--timeout", polTimeout.String(), "--retries", "2"}
	for _, c := range checks {
		args = append(args, "-p", fmt.Sprintf("%d/%s", c.Port, c.Proto))
	}
	out, errOut, code := Run(l.t, l.bin, args...)
	var res probeJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		l.t.Fatalf("probe: exit %d, output is not JSON: %v\n%s%s", code, err, out, errOut)
	}
	if strings.Join(res.Pods, " ") != strings.Join(policymodel.Pods, " ") {
		l.t.Fatalf("probe covered pods %v, want %v (notes: %v)", res.Pods, policymodel.Pods, res.Notes)
	}
	if len(res.Matrices) != len(checks) {
		l.t.Fatalf("probe returned %d matrices for %d checks", len(res.Matrices), len(checks))
	}
	for k, c := range checks {
		m := res.Matrices[k]
		want := policy.Matrix(l.res, policymodel.Pods, c.Port, c.Proto)
		observed := make([][]bool, len(m.Observed))
		for i, row := range m.Observed {
			observed[i] = make([]bool, len(row))
			for j := range row {
				observed[i][j] = row[j] == '.'
			}
		}
		text, diffs, err := policy.FormatDiff(policymodel.Pods, want, observed)
		if err != nil {
			l.t.Fatal(err)
		}
		if len(diffs) > 0 || len(m.Disagreements) > 0 || code != 0 {
			l.t.Errorf("%d/%s: observed (cells) vs policy.Matrix (expected), probe exit %d:\n%s", c.Port, c.Proto, code, text)
		}
	}
}

// probeService tries every pod -> the service (backend y/b:80) and
// compares with the evaluator's verdict for the backend.
func (l *polLab) probeService() {
	l.t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	addr := net.JoinHostPort(polClusterIP, fmt.Sprint(polSvcPort))
	for _, key := range policymodel.Pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := policy.Evaluate(l.res, policy.PodEndpoint(key), policy.PodEndpoint("y/b"), 80, "TCP").Allowed
			got := false
			for range 3 {
				if _, err := nstest.TryTCP(l.netns(key), addr, polTimeout); err == nil {
					got = true
					break
				}
			}
			if got != want {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%s -> service %s (backend y/b:80): reached=%v, expected %v", key, addr, got, want))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, b := range bad {
		l.t.Error(b)
	}
}

// TestPolicyScenarios applies every scenario of the standard model to one
// live two-node lab and probes the full 9x9 matrix on the scenario's ports
// (TCP and UDP), and every pod's connection to a service whose backend is
// y/b, against the evaluator.
func TestPolicyScenarios(t *testing.T) {
	l := newPolLab(t)
	// y/b serves TCP 80 for the service checks; the probe uses this
	// server for y/b's 80/TCP cells.
	nstest.StartEchoTCP(t, l.netns("y/b"), policymodel.Placement["y/b"].IP+":80", "y/b")
	passed := 0
	for _, sc := range policymodel.Scenarios {
		ok := t.Run(sc.Name, func(t *testing.T) {
			l.t = t
			defer func() { l.t = nil }()
			l.write(sc)
			l.apply()
			l.probe(sc.Checks)
			l.probeService()
		})
		if ok {
			passed++
		}
	}
	l.t = t
	t.Logf("%d of %d scenarios agree with the evaluator on every probed cell", passed, len(policymodel.Scenarios))
}

// polService is the service scenario of the issue: x's pods may send only
// to y/b, which serves behind the clusterIP; egress is judged after the
// clusterIP is translated, so the service is reachable exactly where y/b
// is.
var polService = policymodel.Scenario{
	Name: "egress to a service's backend",
	Policies: `
  - name: to-y-b-only
    namespace: x
    spec:
      podSelector: {}
      policyTypes: [Egress]
      egress: [{to: [{namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: b}}}], ports: [{port: 80}]}]
  - name: b-from-x-a
    namespace: y
    spec:
      podSelector: {matchLabels: {pod: b}}
      ingress: [{from: [{namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: a}}}]}]
`,
	Checks: []policymodel.Check{{Port: 80, Proto: "TCP"}},
}

// polAllowFromY lets y into x (and nothing else into x).
var polAllowFromY = `
  - name: from-y
    namespace: x
    spec:
      podSelector: {}
      ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]
`

// TestPolicyLiveChanges: the service scenario; established connections
// (one across nodes, one on one node, one through the service) survive
// policy updates that still allow them, and are cut by one that does not,
// like new connections; and bad input changes nothing.
func TestPolicyLiveChanges(t *testing.T) {
	l := newPolLab(t)
	for _, key := range []string{"x/a", "x/c", "y/b"} {
		nstest.StartEchoTCP(t, l.netns(key), policymodel.Placement[key].IP+":80", key)
	}

	t.Run("service", func(t *testing.T) {
		l.t = t
		l.write(polService)
		l.apply()
		l.probe(polService.Checks)
		l.probeService()
	})
	l.t = t

	l.write(policymodel.Scenario{Policies: polAllowFromY})
	l.apply()
	type flow struct{ from, to, addr string }
	flows := []flow{
		{"y/a", "x/a", policymodel.Placement["x/a"].IP + ":80"}, // node b -> node a
		{"y/b", "x/c", policymodel.Placement["x/c"].IP + ":80"}, // on node a
		{"x/b", "y/b", net.JoinHostPort(polClusterIP, fmt.Sprint(polSvcPort))},
	}
	conns := make([]net.Conn, len(flows))
	for i, f := range flows {
		c, err := nstest.DialTCP(l.netns(f.from), f.addr, 3*time.Second)
		if err != nil {
			t.Fatalf("%s -> %s: %v", f.from, f.to, err)
		}
		defer c.Close()
		conns[i] = c
	}
	echo := func(i int) error {
		c := conns[i]
		c.SetDeadline(time.Now().Add(time.Second))
		defer c.SetDeadline(time.Time{})
		msg := fmt.Sprintf("ping %d %d\n", i, time.Now().UnixNano())
		if _, err := c.Write([]byte(msg)); err != nil {
			return err
		}
		buf := make([]byte, 0, 256)
		tmp := make([]byte, 256)
		for !strings.Contains(string(buf), msg) {
			n, err := c.Read(tmp)
			if err != nil {
				return err
			}
			buf = append(buf, tmp[:n]...)
		}
		return nil
	}
	for i, f := range flows {
		if err := echo(i); err != nil {
			t.Fatalf("%s -> %s before any change: %v", f.from, f.to, err)
		}
	}

	// Updates that still allow the three connections: more policies,
	// other rules, x/a and y/b isolated in new ways.
	updates := []string{
		polAllowFromY + `
  - name: z-egress
    namespace: z
    spec: {podSelector: {}, policyTypes: [Egress]}
  - name: a-also-from-z
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress: [{from: [{namespaceSelector: {matchLabels: {ns: z}}}], ports: [{port: 81}]}]
`,
		`
  - name: from-y-80
    namespace: x
    spec:
      podSelector: {}
      ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}], ports: [{port: 80}]}]
  - name: b-from-x
    namespace: y
    spec:
      podSelector: {matchLabels: {pod: b}}
      policyTypes: [Ingress, Egress]
      ingress: [{from: [{namespaceSelector: {}}], ports: [{port: serve-80-tcp}]}]
      egress: [{to: [{ipBlock: {cidr: 10.244.0.0/16}}]}]
`,
	}
	for k, pols := range updates {
		l.write(policymodel.Scenario{Policies: pols})
		l.apply()
		for i, f := range flows {
			if err := echo(i); err != nil {
				t.Errorf("update %d: established %s -> %s broke: %v", k, f.from, f.to, err)
			}
		}
		l.probe([]policymodel.Check{{Port: 80, Proto: "TCP"}})
	}

	// An update that stops allowing them: new connections and established
	// ones alike are dropped.
	l.write(policymodel.Scenario{Policies: `
  - name: deny-x
    namespace: x
    spec: {podSelector: {}}
  - name: deny-y
    namespace: y
    spec: {podSelector: {}}
`})
	l.apply()
	for i, f := range flows {
		if err := echo(i); err == nil {
			t.Errorf("%s -> %s still carries data after the policies stopped allowing it", f.from, f.to)
		}
		if _, err := nstest.TryTCP(l.netns(f.from), f.addr, polTimeout); !nstest.IsTimeout(err) {
			t.Errorf("new %s -> %s: %v, want dropped", f.from, f.to, err)
		}
	}

	// What no policy can deny: a pod reaching itself through its own
	// service, and a pod's own node; another node is outside the cluster's
	// pods and denied like any address.
	svc := net.JoinHostPort(polClusterIP, fmt.Sprint(polSvcPort))
	if _, err := nstest.TryTCP(l.netns("y/b"), svc, 2*time.Second); err != nil {
		t.Errorf("y/b -> its own service under deny-all: %v", err)
	}
	xa := policymodel.Placement["x/a"].IP + ":80" // on node a
	if _, err := nstest.TryTCP("nrlab-"+l.nodes[0], xa, 2*time.Second); err != nil {
		t.Errorf("node a -> x/a under deny-all: %v", err)
	}
	if _, err := nstest.TryTCP("nrlab-"+l.nodes[1], xa, polTimeout); !nstest.IsTimeout(err) {
		t.Errorf("node b -> x/a under deny-all: %v, want dropped", err)
	}
	for _, c := range []struct {
		from, to string
		want     bool
	}{{"172.31.1.2", "x/a", true}, {"172.31.1.3", "x/a", false}} {
		v := policy.Evaluate(l.res, policy.AddrEndpoint(netip.MustParseAddr(c.from)), policy.PodEndpoint(c.to), 80, "TCP")
		if v.Allowed != c.want {
			t.Errorf("evaluator: %s -> %s allowed=%v, the datapath check above assumed %v", c.from, c.to, v.Allowed, c.want)
		}
	}

	t.Run("bad input changes nothing", func(t *testing.T) {
		l.t = t
		good := l.file
		bad := l.yaml(policymodel.Scenario{Policies: `
  - name: bad
    namespace: x
    spec:
      podSelector: {}
      ingress:
        - from: [{ipBlock: {cidr: 10.244.1.0}}, {ipBlock: {cidr: 10.244.0.0/16, except: [10.245.0.0/24]}}]
          ports: [{port: 90, endPort: 80}, {port: no-such-port}]
        - from: [{podSelector: {matchLabels: {pod: nobody}}}]
`})
		badFile := WriteFile(t, l.id+"-bad.yaml", bad)
		for i := range l.nodes {
			out, errOut, code := Run(t, l.bin, "apply", "-f", badFile, "--node", l.nodes[i],
				"--node-netns", "nrlab-"+l.nodes[i], "--state-dir", l.stateDir)
			if code != 1 {
				t.Errorf("apply of a bad file on %s: exit %d, want 1\n%s%s", l.nodes[i], code, out, errOut)
			}
			for _, want := range []string{
				`ipBlock.cidr: invalid CIDR "10.244.1.0"`,
				"10.245.0.0/24 is not strictly inside ipBlock.cidr 10.244.0.0/16",
				"endPort 80 is less than port 90",
			} {
				if !strings.Contains(errOut, want) {
					t.Errorf("apply of a bad file: error lacks %q:\n%s", want, errOut)
				}
			}
			if strings.Contains(errOut, "no-such-port") || strings.Contains(errOut, "nobody") {
				t.Errorf("a named port nobody declares and a selector matching nothing are valid, but:\n%s", errOut)
			}
		}
		l.file = good
		for i := range l.nodes {
			if out, errOut, code := Run(t, l.bin, l.nodeArgs(i, "plan", "--detailed-exitcode")...); code != 0 {
				t.Errorf("after the bad apply, plan with the last good file on %s: exit %d\n%s%s", l.nodes[i], code, out, errOut)
			}
		}
	})
}
