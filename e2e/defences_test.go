package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/internal/nstest"
)

// The defences lab: one node, veth pods in namespace t.
//
//	v  victim: ingress only from role=allowed on TCP 80 (echo server there)
//	a  allowed: not isolated
//	m  attacker: not isolated, no policy lets it reach v
//	e  egress-isolated: may only reach role=victim on TCP 80
//	b  bystander: not isolated
var defPods = []struct{ name, ip, labels string }{
	{"v", "10.244.1.10", "{role: victim}"},
	{"a", "10.244.1.11", "{role: allowed}"},
	{"m", "10.244.1.12", "{role: attacker}"},
	{"e", "10.244.1.13", "{role: egress}"},
	{"b", "10.244.1.14", "{role: bystander}"},
}

const defPolicies = `policies:
  - name: victim-from-allowed
    namespace: t
    spec:
      podSelector: {matchLabels: {role: victim}}
      policyTypes: [Ingress]
      ingress:
        - from: [{podSelector: {matchLabels: {role: allowed}}}]
          ports: [{port: 80, protocol: TCP}]
  - name: egress-to-victim
    namespace: t
    spec:
      podSelector: {matchLabels: {role: egress}}
      policyTypes: [Egress]
      egress:
        - to: [{podSelector: {matchLabels: {role: victim}}}]
          ports: [{port: 80, protocol: TCP}]
`

type defLab struct {
	*world
}

func (l *defLab) ns(pod string) string { return l.id + "-" + pod }

func (l *defLab) ip(pod string) netip.Addr {
	for _, p := range defPods {
		if p.name == pod {
			return netip.MustParseAddr(p.ip)
		}
	}
	panic("no defences-lab pod " + pod)
}

func (l *defLab) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: netreconcile/v1
kind: Topology
cluster:
  podCIDR: 10.244.0.0/16
  serviceCIDR: 10.96.0.0/16
nodes:
  - {name: %s, address: 172.31.1.2/24, uplink: eth0, podCIDR: 10.244.1.0/24}
pods:
`, l.node)
	for _, p := range defPods {
		fmt.Fprintf(&b, "  - {name: %s, namespace: t, node: %s, ip: %s, mode: veth, netns: %s, labels: %s}\n",
			p.name, l.node, p.ip, l.ns(p.name), p.labels)
	}
	b.WriteString(defPolicies)
	return b.String()
}

// newDefLab brings the lab up through the binary, with an echo server on
// v:80 and b:80.
func newDefLab(t *testing.T) *defLab {
	l := &defLab{newWorld(t)}
	l.file = WriteFile(t, l.id+".yaml", l.yaml())
	t.Cleanup(func() {
		if t.Failed() {
			DumpState(t, l.nodeNS)
		}
		if _, errOut, code := l.run("lab", "down", "-f", l.file); code != 0 {
			t.Errorf("lab down: exit %d\n%s", code, errOut)
		}
		for _, p := range defPods {
			_ = exec.Command("ip", "netns", "del", l.ns(p.name)).Run()
		}
	})
	l.mustRun("lab", "up", "-f", l.file, "--state-dir", l.stateDir)
	for _, p := range []string{"v", "b"} {
		nstest.StartEchoTCP(t, l.ns(p), netip.AddrPortFrom(l.ip(p), 80).String(), p)
	}
	return l
}

// deniedSYN tries a TCP connection from one pod to another's port 80
// that the policies deny: the SYN (and its retransmission) must be
// dropped.
func (l *defLab) deniedSYN(t *testing.T, from, to string) {
	t.Helper()
	c, err := nstest.DialTCP(l.ns(from), netip.AddrPortFrom(l.ip(to), 80).String(), 1500*time.Millisecond)
	if err == nil {
		c.Close()
		t.Fatalf("%s -> %s:80/TCP connected; the policies deny it", from, to)
	}
}

type showDefences struct {
	Defences *struct {
		Pods []struct {
			Pod, Address, MAC string
			Drops             map[string]uint64
			Conntrack         struct{ Service, Policy uint32 }
		}
		Collector struct{ Runs uint64 } `json:"conntrack_gc"`
	}
}

func (l *defLab) show(t *testing.T) showDefences {
	t.Helper()
	out := l.mustRun(l.nodeArgs("show", "-o", "json")...)
	var s showDefences
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("show -o json: %v\n%s", err, out)
	}
	if s.Defences == nil {
		t.Fatalf("show -o json has no defences:\n%s", out)
	}
	return s
}

// drops returns the drops show reports for pod (namespace/name).
func (s showDefences) drops(pod string) map[string]uint64 {
	for _, p := range s.Defences.Pods {
		if p.Pod == pod {
			return p.Drops
		}
	}
	return nil
}

// TestDatapathDefencesVisible: a denied connection attempt is counted as a
// policy drop of the pod that denied it, and show (text and JSON) and the
// watch daemon's metrics report it.
func TestDatapathDefencesVisible(t *testing.T) {
	l := newDefLab(t)
	t.Run("show", l.testShow)
	t.Run("metrics", l.testMetrics)
}

func (l *defLab) testShow(t *testing.T) {
	if got := nstest.CheckTCP(t, l.ns("a"), netip.AddrPortFrom(l.ip("v"), 80).String()); got != "v" {
		t.Fatalf("control: a -> v:80 reached %q, want v", got)
	}
	before := l.show(t)
	l.deniedSYN(t, "m", "v")
	l.deniedSYN(t, "e", "b") // e's own egress denies it
	after := l.show(t)
	if n, was := after.drops("t/v")["policy-ingress"], before.drops("t/v")["policy-ingress"]; n <= was {
		t.Errorf("show: t/v policy-ingress drops %d after m's SYN to v, %d before; want more", n, was)
	}
	if n := after.drops("t/e")["policy-egress"]; n == 0 {
		t.Errorf("show: t/e has no policy-egress drop after its SYN to b: %v", after.drops("t/e"))
	}
	for _, pod := range []string{"t/m", "t/a"} {
		if d := after.drops(pod); d["policy-ingress"]+d["policy-egress"] != 0 {
			t.Errorf("show: %s has policy drops %v; they belong to v and e", pod, d)
		}
	}
	bound := map[string]bool{}
	for _, p := range after.Defences.Pods {
		if p.MAC != "" {
			bound[p.Pod] = true
			if l.ip(strings.TrimPrefix(p.Pod, "t/")).String() != p.Address {
				t.Errorf("show: pod %s has address %s", p.Pod, p.Address)
			}
		}
	}
	for _, p := range defPods {
		if !bound["t/"+p.name] {
			t.Errorf("show: pod t/%s has no bound source (MAC); pods: %+v", p.name, after.Defences.Pods)
		}
	}
	text := l.mustRun(l.nodeArgs("show")...)
	if !strings.Contains(text, "datapath defences\n") ||
		!strings.Contains(text, "  pod t/v 10.244.1.10 mac=") || !strings.Contains(text, "policy-ingress=") {
		t.Errorf("show (text) lacks v's defences:\n%s", text)
	}
}

// testMetrics: the watch daemon's /metrics reads the drop counters at
// scrape time, labelled with the pod that denied the packet.
func (l *defLab) testMetrics(t *testing.T) {
	p := startWatch(t, l.world)
	const vIngress = `netreconcile_datapath_drops_total{pod="t/v",reason="policy-ingress"}`
	const eEgress = `netreconcile_datapath_drops_total{pod="t/e",reason="policy-egress"}`
	before := p.scrape()
	for _, k := range []string{`netreconcile_datapath_conntrack_entries{table="service"}`,
		`netreconcile_datapath_conntrack_entries{table="policy"}`, "netreconcile_datapath_conntrack_gc_runs_total"} {
		if _, ok := before[k]; !ok {
			t.Errorf("/metrics lacks %s", k)
		}
	}
	l.deniedSYN(t, "m", "v")
	l.deniedSYN(t, "e", "b")
	after := p.scrape()
	if after[vIngress] <= before[vIngress] {
		t.Errorf("%s = %v after m's SYN to v, %v before; want more", vIngress, after[vIngress], before[vIngress])
	}
	if after[eEgress] <= before[eEgress] {
		t.Errorf("%s = %v after e's SYN to b, %v before; want more", eEgress, after[eEgress], before[eEgress])
	}
	for k, v := range after {
		if strings.HasPrefix(k, "netreconcile_datapath_drops_total{") && strings.Contains(k, "reason=\"policy-") &&
			k != vIngress && k != eEgress && v > 0 {
			t.Errorf("/metrics: %s = %v; only v and e denied anything", k, v)
		}
	}
}
