package e2e

import (
	"fmt"
	"net/netip"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/datapath"
)

// TestWatchCacheAndFullPass: the daemon keeps what it read between passes.
// A file change is applied without reading the datapath's maps again
// (it writes its own changes through), so a service entry deleted by hand
// meanwhile is not noticed by that pass; the full pass that SIGHUP (or
// --resync) runs reads everything and puts it back.
func TestWatchCacheAndFullPass(t *testing.T) {
	id := UniqueName("k")
	pods := []podDef{{"a", "10.244.1.10", "veth", id + "-a"}}
	w, _ := watchWorld(t, pods)
	withServices := func(n int) string {
		s := w.topo(pods) + "services:\n"
		for i := range n {
			s += fmt.Sprintf("  - {name: s%d, namespace: t, clusterIP: 10.96.0.%d, selector: {app: x}, ports: [{port: 80}]}\n", i, i+1)
		}
		return s
	}
	replaceFile(t, w.file, withServices(1))
	d := startWatch(t, w)
	pinDir := datapath.DefaultPinDir(w.node)
	has := func(ip string) bool {
		t.Helper()
		dp, _, err := datapath.Inspect(pinDir)
		if err != nil || dp == nil {
			t.Fatalf("inspect %s: %v", pinDir, err)
		}
		defer dp.Close()
		svcs, err := dp.Services()
		if err != nil {
			t.Fatal(err)
		}
		_, ok := svcs[datapath.ServiceKey{IP: netip.MustParseAddr(ip), Port: 80, Proto: datapath.ProtoTCP}]
		return ok
	}
	eventually(t, 10*time.Second, "service s0 programmed at start", func() bool { return has("10.96.0.1") })

	// By hand, behind the daemon's back: no event tells it.
	dp, err := datapath.Open(pinDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := dp.DeleteService(datapath.ServiceKey{IP: netip.MustParseAddr("10.96.0.1"), Port: 80, Proto: datapath.ProtoTCP}); err != nil {
		t.Fatal(err)
	}
	dp.Close()

	replaceFile(t, w.file, withServices(2))
	eventually(t, 10*time.Second, "service s1 programmed after the file change", func() bool { return has("10.96.0.2") })
	if has("10.96.0.1") {
		t.Fatal("the file-change pass read the service map again; it should have trusted what it wrote")
	}
	if err := syscall.Kill(d.pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "service s0 put back by the full pass", func() bool { return has("10.96.0.1") })
	if !w.planEmpty(w.file) {
		t.Fatal("plan not empty after the full pass")
	}
}

// TestWatchRepairsClsactFilter: by default (--attach-mode auto) a pod's
// programs are clsact filters; a filter's deletion raises no link event,
// but the daemon hears the tc notification and puts the program back
// without waiting for a full pass.
func TestWatchRepairsClsactFilter(t *testing.T) {
	id := UniqueName("f")
	pods := []podDef{{"a", "10.244.1.10", "veth", id + "-a"}}
	w, _ := watchWorld(t, pods)
	replaceFile(t, w.file, w.topo(pods)+"services:\n  - {name: s0, namespace: t, clusterIP: 10.96.0.1, selector: {app: x}, ports: [{port: 80}]}\n")
	startWatch(t, w)
	pinDir := datapath.DefaultPinDir(w.node)
	attachments := func() []datapath.Attachment {
		t.Helper()
		dp, _, err := datapath.Inspect(pinDir)
		if err != nil || dp == nil {
			t.Fatalf("inspect %s: %v", pinDir, err)
		}
		defer dp.Close()
		atts, err := dp.Attachments(nil)
		if err != nil {
			t.Fatal(err)
		}
		return atts
	}
	// The pod's host-side hooks, as clsact filters, each running the current program.
	podFilters := func() (ifname string, ok bool) {
		n := 0
		for _, a := range attachments() {
			if a.Direction.OfPod() && a.Mode == datapath.ModeTC && a.Current && !a.Defunct {
				ifname = a.IfName
				n++
			}
		}
		return ifname, n == 2
	}
	var host string
	eventually(t, 10*time.Second, "the pod's two programs attached as clsact filters", func() bool {
		var ok bool
		host, ok = podFilters()
		return ok
	})
	for _, a := range attachments() {
		if !a.Direction.OfPod() && a.Mode != datapath.ModeTCX {
			t.Errorf("node hook %s attached as %s, want a tcx link", a.Name, a.Mode)
		}
	}
	// By hand: the qdisc goes, with both filters.
	if out, err := exec.Command("ip", "netns", "exec", w.nodeNS, "tc", "qdisc", "del", "dev", host, "clsact").CombinedOutput(); err != nil {
		t.Fatalf("tc qdisc del: %v: %s", err, out)
	}
	if _, ok := podFilters(); ok {
		t.Fatal("filters still reported after their qdisc was deleted")
	}
	// Far sooner than --resync (5m): the tc event triggers the pass.
	eventually(t, 10*time.Second, "the pod's filters put back", func() bool { _, ok := podFilters(); return ok })
	if !w.planEmpty(w.file) {
		t.Fatal("plan not empty after the repair")
	}
}
