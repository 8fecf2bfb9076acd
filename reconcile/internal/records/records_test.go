package records

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func writeRecords(t *testing.T, dir string, recs map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range recs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// Records netreconcile could not have written are left out, each with a
// warning naming it; a symbolic link among them is not followed.
func TestRecordsNetreconcileDidNotWriteAreIgnored(t *testing.T) {
	d := For(t.TempDir(), "n1")
	netns := filepath.Join(string(d), "netns")
	writeRecords(t, netns, map[string]string{
		"x-a":    "pod/x/a\n",
		"x-b":    "node\n",                       // not a pod's
		"x-c":    strings.Repeat("p", 5000),      // too large
		"x\x1bd": "pod/x/d\n",                    // a control character
		"..x":    "pod/x/e\n",                    // an odd but plain name: kept
		"x-f":    "pod/x/f/../../etc/passwd\n",   // not a pod key
		"x-g":    "pod/x/g\n" + "pod/x/h\n" + "", // two lines
	})
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(target, []byte("pod/t/a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(netns, "victim")); err != nil {
		t.Fatal(err)
	}
	got, warns, err := d.OwnedNetns()
	if err != nil {
		t.Fatal(err)
	}
	// Owners are checked against namespaces that exist (merge).
	want := map[string]string{"x-a": "pod/x/a", "..x": "pod/x/e", "x-b": "node", "x-f": "pod/x/f/../../etc/passwd",
		"x-g": "pod/x/g\npod/x/h"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("netns records = %q, want %q", got, want)
	}
	if len(warns) != 3 {
		t.Errorf("warnings: %q", warns)
	}
	if PodOwner("node") || PodOwner("pod/x/f/../..") || !PodOwner("pod/x/a") {
		t.Error("podOwner")
	}
	for _, name := range []string{"x-c", "x\x1bd", "victim"} {
		found := false
		for _, w := range warns {
			found = found || strings.Contains(w, "ignored state record "+filepath.Join(netns, name)+":")
		}
		if !found {
			t.Errorf("no warning for %q in %q", name, warns)
		}
	}

	writeRecords(t, filepath.Join(string(d), "sysctl"), map[string]string{
		"net.ipv4.ip_forward":   "0\n",
		"kernel.core_pattern":   "|/tmp/evil\n",
		"net.ipv4.conf.all.x":   "1\x00\n",
		"vm.overcommit_memory":  "1\n",
		"net.ipv6.conf.lo.mtu":  "65536\n",
		"net.core.somaxconn..x": "1\n",
	})
	sys, warns, err := d.RecordedSysctls()
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"net/ipv4/ip_forward": "0", "net/ipv6/conf/lo/mtu": "65536"}; !reflect.DeepEqual(sys, want) {
		t.Errorf("sysctl records = %v, want %v", sys, want)
	}
	if len(warns) != 4 {
		t.Errorf("warnings: %q", warns)
	}

	// The directory itself as a link is refused.
	if err := os.Rename(netns, netns+".real"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(netns+".real", netns); err != nil {
		t.Fatal(err)
	}
	if got, _, err := d.OwnedNetns(); !errors.Is(err, unix.ENOTDIR) { // O_DIRECTORY|O_NOFOLLOW on a link
		t.Fatalf("a records directory that is a symlink: %v, %v", got, err)
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "pod/t/a\n" {
		t.Fatalf("the link's target changed: %q %v", b, err)
	}
}
