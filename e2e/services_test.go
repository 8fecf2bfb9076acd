package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/internal/nstest"
)

// The service datapath end to end: the binary programs it, real TCP and UDP
// traffic goes through clusterIPs in every pod mode, to backends on the
// same node, on a node of the same subnet (direct routes) and on a node
// behind a router (VXLAN). Helpers are in services_lab_test.go.

var svcModes = []string{"veth", "bridge", "macvlan"}

// svcLocations are where backends live relative to the clients (node a).
var svcLocations = []struct{ name, node string }{{"local", "a"}, {"direct", "b"}, {"vxlan", "c"}}

// threeNodes: a and b share 172.31.1.0/24 (direct routes), c sits in
// 172.31.2.0/24 behind the lab's router (VXLAN).
func threeNodes() []svcNode {
	return []svcNode{
		{"a", "172.31.1.2/24", "10.244.1.0/24"},
		{"b", "172.31.1.3/24", "10.244.2.0/24"},
		{"c", "172.31.2.2/24", "10.244.3.0/24"},
	}
}

// TestServices walks every service semantic for clients in each mode
// against backends of each mode in each location: TCP and UDP, several
// ports per service, port != targetPort, a named targetPort resolved per
// pod, random choice reaching every backend, sessionAffinity ClientIP
// pinning one backend, the client's own address seen by the backend, the
// clusterIP seen by the client, hairpin, and prompt refusal by a service
// whose selector matches nothing. One lab of three nodes and 21 pods holds
// it all; plan is empty on every node afterwards.
func TestServices(t *testing.T) {
	l := newSvcLab(t, "sv")
	l.nodes = threeNodes()
	nodeIdx := map[string]int{"a": 1, "b": 2, "c": 3}
	modeBase := map[string]int{"veth": 10, "bridge": 20, "macvlan": 30}

	// Clients on a, one per mode; each is also its own hairpin service's
	// only backend.
	clients := map[string]svcPod{}
	for _, m := range svcModes {
		p := svcPod{name: "c" + m[:1], node: "a", ip: fmt.Sprintf("10.244.1.%d", modeBase[m]), mode: m,
			labels: map[string]string{"hp": m}}
		clients[m] = p
		l.pods = append(l.pods, p)
	}
	// Two backends per (mode, location): "web" is 8081 on the first and
	// 8082 on the second.
	group := func(m, loc string) string { return m + "-" + loc }
	backends := map[string][]svcPod{}
	for mi, m := range svcModes {
		for li, loc := range svcLocations {
			g := group(m, loc.name)
			for i := 1; i <= 2; i++ {
				p := svcPod{name: fmt.Sprintf("%s%s%d", m[:1], loc.name[:1], i), node: loc.node,
					ip:     fmt.Sprintf("10.244.%d.%d", nodeIdx[loc.node], modeBase[m]+i),
					mode:   m,
					labels: map[string]string{"grp": g}, web: 8080 + i}
				backends[g] = append(backends[g], p)
				l.pods = append(l.pods, p)
			}
			l.services = append(l.services,
				svcService{name: "s-" + g, ip: fmt.Sprintf("10.96.%d.%d", mi+1, li+1), selector: map[string]string{"grp": g},
					ports: []string{
						"{name: http, port: 80, targetPort: 8080}",
						"{name: dns, port: 53, targetPort: 5353, protocol: UDP}",
						"{name: alt, port: 81, targetPort: web}",
						"{name: direct, port: 8080}",
					}},
				svcService{name: "a-" + g, ip: fmt.Sprintf("10.96.%d.%d", mi+1, li+11), selector: map[string]string{"grp": g},
					ports: []string{
						"{name: http, port: 80, targetPort: 8080}",
						"{name: dns, port: 53, targetPort: 5353, protocol: UDP}",
					}, affinity: true})
		}
		l.services = append(l.services, svcService{name: "hp-" + m, ip: fmt.Sprintf("10.96.10.%d", mi+1),
			selector: map[string]string{"hp": m},
			ports:    []string{"{name: http, port: 80, targetPort: 8080}", "{name: dns, port: 53, targetPort: 5353, protocol: UDP}"}})
	}
	l.services = append(l.services, svcService{name: "none", ip: "10.96.0.10", selector: map[string]string{"app": "nothing"},
		ports: []string{"{name: http, port: 80, protocol: TCP}", "{name: dns, port: 53, protocol: UDP}"}})

	start := time.Now()
	l.up()
	t.Logf("lab of %d nodes, %d pods, %d services up in %v", len(l.nodes), len(l.pods), len(l.services), time.Since(start))
	l.requireNoChanges("after lab up")
	// The locations are what they claim: b is reached directly, c over VXLAN.
	if r := ip(t, l.nodeNS("a"), "route", "show", "10.244.2.0/24"); !strings.Contains(r, "via 172.31.1.3 dev eth0") {
		t.Errorf("a -> b must be a direct route: %q", r)
	}
	if r := ip(t, l.nodeNS("a"), "route", "show", "10.244.3.0/24"); !strings.Contains(r, "dev nrvxlan0") {
		t.Errorf("a -> c must go over VXLAN: %q", r)
	}
	for _, p := range l.pods {
		l.serve(p)
	}

	for mi, m := range svcModes {
		for li, loc := range svcLocations {
			g := group(m, loc.name)
			svc := fmt.Sprintf("10.96.%d.%d", mi+1, li+1)
			aff := fmt.Sprintf("10.96.%d.%d", mi+1, li+11)
			on8080, onWeb := map[string]int{}, map[string]int{}
			for _, b := range backends[g] {
				on8080[b.name], onWeb[b.name] = 8080, b.web
			}
			for _, cm := range svcModes {
				c := clients[cm]
				ns := l.netns(c.name)
				t.Run(fmt.Sprintf("client=%s/backends=%s-%s", cm, m, loc.name), func(t *testing.T) {
					spread(t, "tcp "+svc+":80", 40, on8080, c.ip, func() (svcHit, error) { return tcpHit(ns, svc+":80") })
					spread(t, "udp "+svc+":53", 40, map[string]int{backends[g][0].name: 5353, backends[g][1].name: 5353}, c.ip,
						func() (svcHit, error) { return udpHit(ns, svc+":53") })
					spread(t, "tcp "+svc+":81 (named targetPort)", 40, onWeb, c.ip, func() (svcHit, error) { return tcpHit(ns, svc+":81") })
					spread(t, "tcp "+svc+":8080 (port = targetPort)", 40, on8080, c.ip, func() (svcHit, error) { return tcpHit(ns, svc+":8080") })
					if from, err := udpReplySource(ns, c.ip, svc+":53"); err != nil || from.String() != svc+":53" {
						t.Errorf("udp reply to an unconnected socket came from %v (%v), want the service %s:53", from, err, svc)
					}
					// Affinity: every connection and every flow of this
					// client goes to one backend.
					tcpSeen := map[string]int{}
					udpSeen := map[string]int{}
					for range 12 {
						h, err := tcpHit(ns, aff+":80")
						if err != nil {
							t.Fatalf("affinity tcp: %v", err)
						}
						tcpSeen[h.pod]++
						h, err = udpHit(ns, aff+":53")
						if err != nil {
							t.Fatalf("affinity udp: %v", err)
						}
						udpSeen[h.pod]++
					}
					if len(tcpSeen) != 1 || len(udpSeen) != 1 {
						t.Errorf("sessionAffinity ClientIP: tcp went to %v, udp to %v; want one backend each", tcpSeen, udpSeen)
					}
				})
			}
		}
	}

	for mi, m := range svcModes {
		c := clients[m]
		ns := l.netns(c.name)
		hp := fmt.Sprintf("10.96.10.%d", mi+1)
		t.Run("hairpin/"+m, func(t *testing.T) {
			// The pod is its service's only backend: it reaches itself,
			// seeing the hairpin address as the client.
			for _, try := range []func() (svcHit, error){
				func() (svcHit, error) { return tcpHit(ns, hp+":80") },
				func() (svcHit, error) { return udpHit(ns, hp+":53") },
			} {
				h, err := try()
				if err != nil {
					t.Fatalf("pod %s through its own service %s: %v", c.name, hp, err)
				}
				if h.pod != c.name || h.peer.String() != "169.254.42.1" {
					t.Errorf("hairpin: answered by %s, want %s seeing 169.254.42.1", h, c.name)
				}
			}
			// Another client reaching the same service is not hairpinned.
			other := clients[svcModes[(mi+1)%len(svcModes)]]
			h, err := tcpHit(l.netns(other.name), hp+":80")
			if err != nil || h.pod != c.name || h.peer.String() != other.ip {
				t.Errorf("%s -> %s: %v, %v; want %s seeing %s", other.name, hp, h, err, c.name, other.ip)
			}
		})
		t.Run("no endpoints/"+m, func(t *testing.T) {
			start := time.Now()
			_, err := nstest.TryTCP(ns, "10.96.0.10:80", 5*time.Second)
			if took := time.Since(start); !nstest.IsRefused(err) || took > 500*time.Millisecond {
				t.Errorf("tcp to a service without endpoints: %v after %v, want connection refused at once", err, took)
			}
			start = time.Now()
			_, err = nstest.TryUDP(ns, "10.96.0.10:53", 5*time.Second)
			if took := time.Since(start); !nstest.IsRefused(err) || took > time.Second {
				t.Errorf("udp to a service without endpoints: %v after %v, want ICMP port unreachable at once", err, took)
			}
		})
	}
	l.requireNoChanges("after the traffic")
}

// TestServiceConnectionSurvives keeps six TCP connections busy through two
// clusterIPs (clients in every mode on node a; backends on a, and on b
// through direct routes) while the file changes under them: a re-apply; an
// endpoint added and another (not theirs) removed, with apply killed by
// SIGKILL after each possible number of changes and run again; and the
// change undone. Not one round trip may fail, and new connections go to the
// current endpoints only.
func TestServiceConnectionSurvives(t *testing.T) {
	l := newSvcLab(t, "sl")
	l.nodes = threeNodes()[:2]
	near := map[string]string{"grp": "near"}
	far := map[string]string{"grp": "far"}
	l.pods = []svcPod{
		{name: "cv", node: "a", ip: "10.244.1.10", mode: "veth"},
		{name: "cb", node: "a", ip: "10.244.1.20", mode: "bridge"},
		{name: "cm", node: "a", ip: "10.244.1.30", mode: "macvlan"},
		{name: "keep", node: "a", ip: "10.244.1.11", mode: "veth", labels: near},
		{name: "gone", node: "a", ip: "10.244.1.21", mode: "bridge", labels: near},
		{name: "fkeep", node: "b", ip: "10.244.2.11", mode: "veth", labels: far},
		{name: "fgone", node: "b", ip: "10.244.2.31", mode: "macvlan", labels: far},
	}
	l.services = []svcService{
		{name: "near", ip: "10.96.0.10", selector: near, ports: []string{"{port: 80, targetPort: 8080}"}},
		{name: "far", ip: "10.96.0.11", selector: far, ports: []string{"{port: 80, targetPort: 8080}"}},
	}
	l.up()
	before := l.file
	for _, p := range l.pods {
		l.serve(p)
	}
	var pumps []*pump
	for _, c := range l.pods[:3] {
		pumps = append(pumps,
			startPump(t, c.name+"->near", l.netns(c.name), "10.96.0.10:80", "keep"),
			startPump(t, c.name+"->far", l.netns(c.name), "10.96.0.11:80", "fkeep"))
	}
	checkAll := func(when string) {
		t.Helper()
		for _, p := range pumps {
			p.check(t, when)
		}
	}
	checkAll("before any change")

	// A plain re-apply changes nothing.
	for _, n := range l.nodes {
		if out := l.mustRun(n.name, "apply"); !strings.Contains(out, "no changes") {
			t.Errorf("re-apply on %s: %s", n.name, out)
		}
	}
	checkAll("after a re-apply")

	// The change: gone and fgone leave the services (labels dropped), new
	// (macvlan, on a) and fnew (bridge, on b) join.
	l.pods[4].labels, l.pods[6].labels = nil, nil
	l.pods = append(l.pods,
		svcPod{name: "new", node: "a", ip: "10.244.1.31", mode: "macvlan", labels: near},
		svcPod{name: "fnew", node: "b", ip: "10.244.2.21", mode: "bridge", labels: far})
	after := l.write()
	l.mustRun("b", "apply") // fnew exists before a's services point at it
	plan := l.mustRun("a", "plan")
	for _, want := range []string{"~ backends: +10.244.1.31:8080 -10.244.1.21:8080", "~ backends: +10.244.2.21:8080 -10.244.2.31:8080"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan on a lacks %q:\n%s", want, plan)
		}
	}
	total := countChanges(t, plan)
	for k := 1; k <= total; k++ {
		l.file = after
		cmd := exec.Command(l.bin, l.nodeArgs("a", "apply")...)
		cmd.Env = append(os.Environ(), "NETRECONCILE_CRASH_AFTER="+strconv.Itoa(k))
		out, _ := cmd.CombinedOutput()
		if ws := cmd.ProcessState; ws == nil || ws.ExitCode() != -1 {
			t.Fatalf("k=%d: apply was not killed (%v)\n%s", k, ws, out)
		}
		checkAll(fmt.Sprintf("after apply was killed after %d of %d changes", k, total))
		l.mustRun("a", "apply") // restarted: converges
		checkAll(fmt.Sprintf("after the restarted apply (k=%d)", k))
		if k < total {
			l.file = before // undo, so that the next k has the same plan
			l.mustRun("a", "apply")
			checkAll(fmt.Sprintf("after undoing the change (k=%d)", k))
		}
	}
	l.requireNoChanges("after the change")

	// New connections go to the current endpoints only, all of them.
	l.serve(l.pod("new"))
	l.serve(l.pod("fnew"))
	for _, c := range l.pods[:3] {
		ns := l.netns(c.name)
		spread(t, c.name+" -> near", 40, map[string]int{"keep": 8080, "new": 8080}, c.ip,
			func() (svcHit, error) { return tcpHit(ns, "10.96.0.10:80") })
		spread(t, c.name+" -> far", 40, map[string]int{"fkeep": 8080, "fnew": 8080}, c.ip,
			func() (svcHit, error) { return tcpHit(ns, "10.96.0.11:80") })
	}
	checkAll("before the daemon")

	// The watch daemon adopts the datapath, is stopped with SIGTERM and
	// started again: the connections never notice.
	for round := 1; round <= 2; round++ {
		cmd := exec.Command(l.bin, l.nodeArgs("a", "watch", "-v", "--metrics-addr", "")...)
		logFile := filepath.Join(t.TempDir(), "watch.log")
		f, err := os.Create(logFile)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		logs := func() string { b, _ := os.ReadFile(logFile); return string(b) }
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(logs(), `"msg":"reconciled"`) {
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("watch did not reconcile in 30 s:\n%s", logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
		checkAll(fmt.Sprintf("with the daemon running (start %d)", round))
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("watch exit after SIGTERM: %v\n%s", err, logs())
		}
		if strings.Contains(logs(), `"action":"create"`) || strings.Contains(logs(), `"action":"replace"`) {
			t.Errorf("watch start %d recreated objects:\n%s", round, logs())
		}
		checkAll(fmt.Sprintf("after the daemon stopped (start %d)", round))
	}
	l.requireNoChanges("after the daemon restarts")
	checkAll("at the end")
	for _, p := range pumps {
		n, rtt, _ := p.state()
		t.Logf("connection %s: %d round trips, slowest %v, %d retransmissions", p.name, n, rtt.Round(time.Millisecond), p.retransmits())
	}
}

// countChanges reads the "Plan: N to add, M to change, K to destroy." line.
func countChanges(t *testing.T, plan string) int {
	t.Helper()
	var add, change, destroy int
	for _, line := range strings.Split(plan, "\n") {
		if _, err := fmt.Sscanf(line, "Plan: %d to add, %d to change, %d to destroy.", &add, &change, &destroy); err == nil {
			return add + change + destroy
		}
	}
	t.Fatalf("no summary line in the plan:\n%s", plan)
	return 0
}

// TestServicePlanAndDestroy: plan after apply is empty; adding a backend
// pod shows as "~ backends: +…"; removing every service takes the whole
// datapath away (programs, links, pins) while the pods keep talking;
// bringing services back works; destroy leaves no link, program or pin.
func TestServicePlanAndDestroy(t *testing.T) {
	l := newSvcLab(t, "sp")
	l.nodes = threeNodes()[:1]
	web := map[string]string{"app": "web"}
	l.pods = []svcPod{
		{name: "cl", node: "a", ip: "10.244.1.10", mode: "veth"},
		{name: "b1", node: "a", ip: "10.244.1.11", mode: "veth", labels: web},
		{name: "b2", node: "a", ip: "10.244.1.21", mode: "bridge", labels: web},
		{name: "b3", node: "a", ip: "10.244.1.31", mode: "macvlan", labels: web},
	}
	services := []svcService{{name: "web", ip: "10.96.0.10", selector: web,
		ports: []string{"{name: http, port: 80, targetPort: 8080}", "{name: dns, port: 53, targetPort: 5353, protocol: UDP}"}}}
	l.services = services
	l.up()
	nodeNS, pinDir := l.nodeNS("a"), l.pinDir("a")
	l.requireNoChanges("after lab up")
	for _, p := range l.pods {
		l.serve(p)
	}
	cl := l.netns("cl")
	want := map[string]int{"b1": 8080, "b2": 8080, "b3": 8080}
	spread(t, "tcp", 40, want, "10.244.1.10", func() (svcHit, error) { return tcpHit(cl, "10.96.0.10:80") })

	// One more backend: the plan names it, apply serves it.
	l.pods = append(l.pods, svcPod{name: "b4", node: "a", ip: "10.244.1.12", mode: "veth", labels: web})
	l.write()
	out, errOut, code := l.run("a", "plan", "--detailed-exitcode")
	if code != 2 {
		t.Fatalf("plan after adding a backend pod: exit %d, want 2\n%s%s", code, out, errOut)
	}
	for _, line := range []string{"~   service 10.96.0.10:80/TCP", "~ backends: +10.244.1.12:8080",
		"~   service 10.96.0.10:53/UDP", "~ backends: +10.244.1.12:5353"} {
		if !strings.Contains(out, line) {
			t.Errorf("plan lacks %q:\n%s", line, out)
		}
	}
	l.mustRun("a", "apply")
	l.requireNoChanges("after adding a backend")
	l.serve(l.pod("b4"))
	want["b4"] = 8080
	spread(t, "tcp with b4", 60, want, "10.244.1.10", func() (svcHit, error) { return tcpHit(cl, "10.96.0.10:80") })

	// b1 moves to another netns: its veth is made anew (another ifindex),
	// and the fast path, the programs and the service follow.
	oldNS := l.netns("b1")
	for i := range l.pods {
		if l.pods[i].name == "b1" {
			l.pods[i].netns = l.id + "-b1moved"
		}
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", l.id+"-b1moved").Run() })
	l.write()
	l.mustRun("a", "apply")
	l.requireNoChanges("after moving b1")
	if netnsExists(oldNS) {
		t.Errorf("b1's old netns %s is still there", oldNS)
	}
	l.serve(l.pod("b1"))
	spread(t, "tcp after moving b1", 60, want, "10.244.1.10", func() (svcHit, error) { return tcpHit(cl, "10.96.0.10:80") })
	if h, err := tcpHit(cl, "10.244.1.11:8080"); err != nil || h.pod != "b1" {
		t.Errorf("pod IP of the moved b1: %v, %v", h, err)
	}

	// The datapath as the kernel holds it (--attach-mode auto): a clsact
	// filter on both hooks of every veth and bridge pod's host side, and
	// in the macvlan pod; and the node's own as pinned tcx links: at the
	// service device's egress and on the uplink.
	links, progs := pinnedIDs(t, pinDir)
	nodeProgs := 1 + len(datapath.UplinkDirections)
	if len(links) != nodeProgs {
		t.Errorf("%d pinned links, want %d (the node's)", len(links), nodeProgs)
	}
	if n := sum(tcxPrograms(t, nodeNS)) + sum(tcxPrograms(t, l.netns("b3"))); n != nodeProgs {
		t.Errorf("%d tcx programs on the node's and b3's interfaces, want %d", n, nodeProgs)
	}
	if n := bpfFilters(t, nodeNS) + bpfFilters(t, l.netns("b3")); n != 2*len(l.pods) {
		t.Errorf("%d bpf filters on the node's and b3's interfaces, want %d (two per pod)", n, 2*len(l.pods))
	}

	// Without services (and policies) there is no datapath at all.
	l.services = nil
	l.write()
	plan := l.mustRun("a", "plan")
	if !strings.Contains(plan, "-   datapath "+pinDir) {
		t.Errorf("plan without services does not remove the datapath:\n%s", plan)
	}
	// The entries are named after the service (from the services record).
	if !strings.Contains(plan, "# service t/web (removed from the file)\n") {
		t.Errorf("plan without services does not name the entries' service:\n%s", plan)
	}
	l.mustRun("a", "apply")
	l.requireNoChanges("after removing the services")
	if _, err := os.Stat(pinDir); !os.IsNotExist(err) {
		t.Errorf("pin dir after removing every service: %v (left: %v)", err, pinsBelow(pinDir))
	}
	requireGone(t, "after removing every service", links, progs)
	for _, ns := range []string{nodeNS, l.netns("b3")} {
		if m := tcxPrograms(t, ns); sum(m) != 0 {
			t.Errorf("tcx programs left in %s: %v", ns, m)
		}
	}
	for _, p := range l.pods[1:] {
		if h, err := tcpHit(cl, p.ip+":8080"); err != nil || h.pod != p.name {
			t.Errorf("pod to pod %s without a datapath: %v, %v", p.name, h, err)
		}
	}

	// Services again, first with a pin directory that is not on a bpf
	// filesystem: a clear error, and no program attached anywhere.
	l.services = services
	l.write()
	notBPF := t.TempDir() + "/pins"
	out, errOut, code = Run(t, l.bin, append(l.nodeArgs("a", "apply"), "--bpffs", notBPF)...)
	if code != 1 || !strings.Contains(errOut, "not on a bpf filesystem") {
		t.Errorf("apply with --bpffs %s: exit %d, want 1 saying it is not on a bpf filesystem\n%s%s", notBPF, code, out, errOut)
	}
	if m := tcxPrograms(t, nodeNS); sum(m) != 0 || len(pinsBelow(notBPF)) != 0 {
		t.Errorf("a failed datapath left programs %v or files %v", m, pinsBelow(notBPF))
	}
	// Then on bpffs: the datapath comes back.
	l.mustRun("a", "apply")
	l.requireNoChanges("after restoring the services")
	spread(t, "tcp after restoring", 60, want, "10.244.1.10", func() (svcHit, error) { return tcpHit(cl, "10.96.0.10:80") })

	// Maps of another layout found pinned (an older build): the plan says
	// the datapath is replaced and why, apply replaces it, traffic flows.
	fakeLayout(t, pinDir, 99)
	plan = l.mustRun("a", "plan")
	if !strings.Contains(plan, "-/+ datapath "+pinDir) || !strings.Contains(plan, "layout: incompatible -> current") {
		t.Errorf("plan with an incompatible pinned layout:\n%s", plan)
	}
	l.mustRun("a", "apply")
	l.requireNoChanges("after replacing an incompatible datapath")
	spread(t, "tcp after the replacement", 60, want, "10.244.1.10", func() (svcHit, error) { return tcpHit(cl, "10.96.0.10:80") })
	links, progs = pinnedIDs(t, pinDir)

	// destroy: no link, program or pin of ours is left, nor the record
	// of the services' entries.
	record := filepath.Join(l.stateDir, l.node("a"), "services")
	if b, err := os.ReadFile(record); err != nil || !strings.Contains(string(b), "10.96.0.10:80/TCP service/t/web\n") {
		t.Errorf("services record before destroy: %q, %v", b, err)
	}
	l.mustRun("a", "destroy")
	if _, err := os.Lstat(record); !os.IsNotExist(err) {
		t.Errorf("services record after destroy: %v", err)
	}
	if _, err := os.Stat(pinDir); !os.IsNotExist(err) {
		t.Errorf("pin dir after destroy: %v (left: %v)", err, pinsBelow(pinDir))
	}
	requireGone(t, "after destroy", links, progs)
	if m := tcxPrograms(t, nodeNS); sum(m) != 0 {
		t.Errorf("tcx programs left on the node after destroy: %v", m)
	}
	if out := l.mustRun("a", "destroy"); !strings.Contains(out, "no changes") {
		t.Errorf("second destroy: %s", out)
	}
}

// TestServiceBadInput: on a live lab with a working service, files whose
// services clash (a clusterIP that is a pod's or a node's address or in the
// link-local range pods use, two ports with the same number and protocol,
// two services on one clusterIP) fail plan and apply with exit 1 and a
// positioned error, and change nothing: links, routes, the pinned
// datapath's contents and the traffic stay as they were.
func TestServiceBadInput(t *testing.T) {
	l := newSvcLab(t, "sb")
	l.nodes = threeNodes()[:1]
	l.pods = []svcPod{
		{name: "cl", node: "a", ip: "10.244.1.10", mode: "veth"},
		{name: "b1", node: "a", ip: "10.244.1.11", mode: "veth", labels: map[string]string{"app": "web"}},
	}
	good := []svcService{{name: "web", ip: "10.96.0.10", selector: map[string]string{"app": "web"},
		ports: []string{"{port: 80, targetPort: 8080}"}}}
	l.services = good
	l.up()
	goodFile := l.file
	for _, p := range l.pods {
		l.serve(p)
	}
	snap := func() string {
		show, _, _ := l.run("a", "show", "-o", "json")
		return snapshot(t, l.nodeNS("a")) + withoutCounters(t, show) + strings.Join(pinsBelow(l.pinDir("a")), "\n")
	}
	before := snap()

	bad := []struct {
		name  string
		edit  func(l *svcLab)
		want  string
		plain bool // the file is written by hand: not from l
	}{
		{name: "clusterIP is a pod's address", edit: func(l *svcLab) { l.services[0].ip = "10.244.1.11" },
			want: "services[0].clusterIP: 10.244.1.11 is outside cluster.serviceCIDR"},
		{name: "clusterIP is the node's address", edit: func(l *svcLab) { l.services[0].ip = "172.31.1.2" },
			want: "services[0].clusterIP: 172.31.1.2 is outside cluster.serviceCIDR"},
		{name: "ports clash", edit: func(l *svcLab) {
			l.services[0].ports = []string{"{name: a, port: 80, targetPort: 8080}", "{name: b, port: 80, targetPort: 8081}"}
		}, want: "services[0].ports[1].port: duplicate port 80/TCP"},
		{name: "clusterIP used twice", edit: func(l *svcLab) {
			l.services = append(l.services, svcService{name: "web2", ip: "10.96.0.10", ports: []string{"{port: 81}"}})
		}, want: "services[1].clusterIP: clusterIP 10.96.0.10 is already used by services[0]"},
		{name: "serviceCIDR in the pods' link-local range", plain: true, want: "cluster.serviceCIDR: 169.254.0.0/16 overlaps 169.254.0.0/16"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			l.services = append([]svcService(nil), good...)
			l.services[0].ports = append([]string(nil), good[0].ports...)
			var file string
			if b.plain {
				text := strings.Replace(l.topo(), "serviceCIDR: 10.96.0.0/16", "serviceCIDR: 169.254.0.0/16", 1)
				text = strings.Replace(text, "clusterIP: 10.96.0.10", "clusterIP: 169.254.1.1", 1)
				file = WriteFile(t, "linklocal.yaml", text)
			} else {
				b.edit(l)
				file = l.write()
			}
			l.file = file
			for _, cmd := range []string{"plan", "apply"} {
				out, errOut, code := l.run("a", cmd)
				if code != 1 || !strings.Contains(errOut, b.want) || !strings.Contains(errOut, file+":") {
					t.Errorf("%s: exit %d, want 1 with a positioned %q\n%s%s", cmd, code, b.want, out, errOut)
				}
			}
			l.file = goodFile
			if after := snap(); after != before {
				t.Errorf("a bad file changed the node:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if h, err := tcpHit(l.netns("cl"), "10.96.0.10:80"); err != nil || h.pod != "b1" {
				t.Errorf("the service after a bad file: %v, %v", h, err)
			}
		})
	}
	l.services = good
	l.file = goodFile
	l.requireNoChanges("after the bad files")
}

// TestServiceThenDirect: a client that reached a backend through a
// clusterIP from some source port, and later reaches the same backend
// port directly (pod IP) from the same source port, gets the backend's
// own answers. The conntrack of the service connection must not rewrite
// the direct connection's replies as coming from the service (Linux hands
// out the same ephemeral port again for another destination). TCP and
// UDP, veth and macvlan clients, backends on the same node and on another.
func TestServiceThenDirect(t *testing.T) {
	l := newSvcLab(t, "sd")
	l.nodes = threeNodes()[:2]
	l.pods = []svcPod{
		{name: "cv", node: "a", ip: "10.244.1.10", mode: "veth"},
		{name: "cm", node: "a", ip: "10.244.1.30", mode: "macvlan"},
		{name: "near", node: "a", ip: "10.244.1.11", mode: "veth", labels: map[string]string{"app": "near"}},
		{name: "far", node: "b", ip: "10.244.2.21", mode: "bridge", labels: map[string]string{"app": "far"}},
	}
	ports := []string{"{name: http, port: 80, targetPort: 8080}", "{name: dns, port: 53, targetPort: 5353, protocol: UDP}"}
	l.services = []svcService{
		{name: "near", ip: "10.96.0.10", selector: map[string]string{"app": "near"}, ports: ports},
		{name: "far", ip: "10.96.0.11", selector: map[string]string{"app": "far"}, ports: ports},
	}
	l.up()
	for _, p := range l.pods {
		l.serve(p)
	}
	src := 40000
	for _, c := range l.pods[:2] {
		for _, s := range l.services {
			b := l.pod(s.name)
			ns := l.netns(c.name)
			t.Run(c.mode+"-client/"+s.name, func(t *testing.T) {
				src++
				from := fmt.Sprintf("%s:%d", c.ip, src)
				if h, err := tcpFrom(ns, from, s.ip+":80"); err != nil || h.pod != b.name {
					t.Fatalf("tcp through the service: %v, %v", h, err)
				}
				if h, err := tcpFrom(ns, from, b.ip+":8080"); err != nil || h.pod != b.name {
					t.Errorf("tcp to the pod IP from the same source port: %v, %v", h, err)
				}
				if h, err := udpFrom(ns, from, s.ip+":53"); err != nil || h.pod != b.name {
					t.Fatalf("udp through the service: %v, %v", h, err)
				}
				if h, err := udpFrom(ns, from, b.ip+":5353"); err != nil || h.pod != b.name {
					t.Errorf("udp to the pod IP from the same source port: %v, %v", h, err)
				}
			})
		}
	}
}

// withoutCounters drops what traffic moves from show's JSON (the datapath's
// drop and conntrack counters), keeping what a file's apply would change.
func withoutCounters(t *testing.T, showJSON string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(showJSON), &m); err != nil {
		t.Fatalf("show -o json: %v\n%s", err, showJSON)
	}
	delete(m, "defences")
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
