package nsutil

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestCreateBesideIproute2: namespaces made here and by `ip netns add`
// share the directory of names, in whichever order the first of each is
// made after boot, and both can be deleted (a namespace mounted on the
// plain directory before iproute2 binds it over itself never can).
func TestCreateBesideIproute2(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	mine, theirs := "nrnsutil-mine", "nrnsutil-ip"
	if err := Create(mine); err != nil {
		t.Fatal(err)
	}
	defer Delete(mine)
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(info), " /run/netns /run/netns ") && !strings.Contains(string(info), " / /run/netns ") {
		t.Errorf("%s is not a mount point after Create:\n%s", Dir, info)
	}
	if out, err := exec.Command("ip", "netns", "add", theirs).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	if out, err := exec.Command("ip", "netns", "del", theirs).CombinedOutput(); err != nil {
		t.Fatalf("ip netns del: %v %s", err, out)
	}
	if err := Delete(mine); err != nil {
		t.Fatalf("delete after iproute2 used the directory: %v", err)
	}
	if Exists(mine) {
		t.Fatalf("%s still exists", mine)
	}
}
