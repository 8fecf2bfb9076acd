package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/internal/attack"
	"github.com/netreconcile/netreconcile/internal/nstest"
)

// TestMonitor: a connection the policies deny shows in `monitor` within a
// second of the attempt, named after the file's pods with the policies
// that isolate the side that denied it; an allowed one (the control)
// shows nothing and gets through. A pod flooding denied datagrams does not
// silence it: afterwards a denied connection still shows, and the
// allowed one still gets through.
func TestMonitor(t *testing.T) {
	w := newWorld(t)
	pods := []podDef{{"a", "10.244.1.10", "veth", w.id + "-a"}, {"b", "10.244.1.11", "veth", w.id + "-b"},
		{"c", "10.244.1.12", "veth", w.id + "-c"}}
	w.file = WriteFile(t, w.id+".yaml", w.topo(pods)+`policies:
  - name: b-from-c
    namespace: t
    spec:
      podSelector: {matchLabels: {}}
      ingress: [{from: [{podSelector: {matchExpressions: [{key: never, operator: Exists}]}}]}]
`)
	t.Cleanup(func() {
		w.labDown(w.file)
		for _, p := range pods {
			_ = exec.Command("ip", "netns", "del", p.netns).Run()
		}
	})
	w.mustRun("lab", "up", "-f", w.file, "--state-dir", w.stateDir)

	mon := exec.Command(w.bin, w.nodeArgs("monitor", "-o", "json")...)
	var stderr lockedBuffer
	mon.Stderr = &stderr
	stdout, err := mon.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = mon.Process.Signal(syscall.SIGTERM)
		_ = mon.Wait()
	})
	lines := make(chan map[string]any, 1024)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
	}()
	time.Sleep(500 * time.Millisecond) // the monitor opens its gate

	nstest.StartEchoTCP(t, pods[1].netns, "10.244.1.11:7100", "b")
	start := time.Now()
	if _, err := nstest.TryTCP(pods[0].netns, "10.244.1.11:7100", 300*time.Millisecond); err == nil {
		t.Fatal("a -> b got through; the policy denies it")
	}
	select {
	case m := <-lines:
		if got := time.Since(start); got > time.Second+300*time.Millisecond {
			t.Errorf("event %v after the attempt", got)
		}
		if m["reason"] != "policy-ingress" || !strings.HasPrefix(m["from"].(string), "t/a ") ||
			!strings.HasPrefix(m["to"].(string), "t/b 10.244.1.11:7100") || m["protocol"] != "TCP" {
			t.Errorf("event %v", m)
		}
		if iso, _ := m["isolated_by"].([]any); len(iso) != 1 || iso[0] != "t/b-from-c" {
			t.Errorf("isolated_by %v", m["isolated_by"])
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no event for a denied connection within 2 s")
	}
	// Control: b reaching itself is allowed, and raises no event.
	for len(lines) > 0 {
		<-lines
	}
	if got, err := nstest.TryTCP(pods[1].netns, "10.244.1.11:7100", time.Second); got != "b" {
		t.Fatalf("b -> b: %q %v", got, err)
	}
	select {
	case m := <-lines:
		if strings.HasPrefix(m["from"].(string), "t/b ") {
			t.Errorf("an allowed connection raised %v", m)
		}
	case <-time.After(500 * time.Millisecond):
	}

	// The flood: a's denied datagrams to b as fast as one sender goes.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	sent, err := attack.Flood{Sources: netip.MustParsePrefix("10.244.1.10/32"),
		Targets: []netip.AddrPort{netip.MustParseAddrPort("10.244.1.11:7100")}, Protos: []uint8{attack.ProtoUDP}}.Run(ctx, pods[0].netns)
	cancel()
	if err != nil {
		t.Fatalf("flood: %v", err)
	}
	seen := 0
	for quiet := time.After(time.Second); ; {
		select {
		case <-lines:
			seen++
			quiet = time.After(time.Second)
			continue
		case <-quiet:
		}
		break
	}
	t.Logf("flood: %d datagrams sent, %d events read", sent, seen)
	if seen == 0 {
		t.Error("a flood of denied datagrams raised no event")
	}
	// What the ring could not hold is said, not hidden.
	if int64(seen) < sent/2 && !strings.Contains(stderr.String(), "drop events lost") {
		t.Errorf("%d of %d drops read and no loss reported:\n%s", seen, sent, stderr.String())
	}
	start = time.Now()
	if _, err := nstest.TryTCP(pods[0].netns, "10.244.1.11:7100", 300*time.Millisecond); err == nil {
		t.Fatal("a -> b got through after the flood")
	}
	deadline := time.After(2 * time.Second)
	for found := false; !found; {
		select {
		case m := <-lines:
			found = m["protocol"] == "TCP" && strings.HasPrefix(m["to"].(string), "t/b 10.244.1.11:7100")
		case <-deadline:
			t.Fatalf("no event for a denied connection within 2 s of the flood's end (alive: %v)", mon.ProcessState == nil)
		}
	}
	if got, err := nstest.TryTCP(pods[1].netns, "10.244.1.11:7100", time.Second); got != "b" {
		t.Errorf("b -> b after the flood: %q %v", got, err)
	}
}
