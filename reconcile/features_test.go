package reconcile

import (
	"os/exec"
	"testing"

	"github.com/netreconcile/netreconcile/internal/nstest"
)

func TestLinkTypeAvailable(t *testing.T) {
	nstest.RequireRoot(t)
	if ok, err := linkTypeAvailable("macvlan"); err != nil || !ok {
		t.Errorf("macvlan: %v, %v (this machine kind has it)", ok, err)
	}
	// Compare with what iproute2 says in a throwaway namespace.
	ns := nstest.TempNetns(t, "nrcheck")
	if out, err := exec.Command("ip", "-n", ns, "link", "add", "p0", "type", "veth", "peer", "name", "p1").CombinedOutput(); err != nil {
		t.Fatalf("veth: %v %s", err, out)
	}
	has := exec.Command("ip", "-n", ns, "link", "add", "iv0", "link", "p0", "type", "ipvlan", "mode", "l2").Run() == nil
	if ok, err := linkTypeAvailable("ipvlan"); err != nil || ok != has {
		t.Errorf("ipvlan: the check says %v (%v), iproute2 says %v", ok, err, has)
	}
	if _, err := linkTypeAvailable("geneve"); err == nil {
		t.Error("a type without a check must be an error")
	}
}
