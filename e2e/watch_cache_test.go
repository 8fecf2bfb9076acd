package e2e

import (
	"fmt"
	"net/netip"
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
