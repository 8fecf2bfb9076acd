package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/internal/nstest"
)

// Local state is trusted only when root alone can write it: a state
// directory others may write into, or a symbolic link, is refused by
// every verb that reads or writes it, and the offline verbs never look
// at it.

const localTopo = `apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16, mode: veth}
nodes:
  - {name: n1, address: 172.31.1.2/24, uplink: eth0, podCIDR: 10.244.1.0/24}
pods:
  - {name: a, namespace: t, node: n1, ip: 10.244.1.10}
  - {name: b, namespace: t, node: n1, ip: 10.244.1.11}
`

func TestStateDirectoryTrust(t *testing.T) {
	bin := BuildBinary(t)
	file := WriteFile(t, "topo.yaml", localTopo)
	observed := WriteFile(t, "observed.json", `{"node": "n1", "uplink": {"name": "eth0", "found": true, "mtu": 1500, `+
		`"addresses": ["172.31.1.2/24"]}, "owned": {}}`)
	root := t.TempDir()
	open := filepath.Join(root, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	link := filepath.Join(root, "link")
	if err := os.Symlink(t.TempDir(), link); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(root, "missing")

	// The offline verbs succeed whatever is at --state-dir, and leave it
	// as it was.
	offline := [][]string{
		{"validate", "-f", file},
		{"plan", "-f", file, "--node", "n1", "--observed", observed},
		{"explain", "-f", file, "t/a", "t/b", "80"},
	}
	for _, dir := range []string{open, link, missing} {
		for _, args := range offline {
			if out, errOut, code := Run(t, bin, append(args, "--state-dir", dir)...); code != 0 {
				t.Fatalf("%s with --state-dir %s: exit %d\n%s%s", args[0], dir, code, out, errOut)
			}
		}
	}
	if ents, err := os.ReadDir(open); err != nil || len(ents) > 0 {
		t.Fatalf("the offline verbs wrote into the state directory: %v %v", ents, err)
	}
	if _, err := os.Lstat(missing); !os.IsNotExist(err) {
		t.Fatalf("the offline verbs made the state directory: %v", err)
	}

	// Every verb that uses it refuses it, naming it, what was found and
	// the fix, before anything else.
	node := nstest.TempNetns(t, "nrsd")
	for _, v := range []string{"plan", "apply", "destroy", "show", "watch"} {
		args := []string{v, "-f", file, "--node", "n1", "--node-netns", node}
		if v == "show" {
			args = []string{v, "--node", "n1", "--node-netns", node}
		}
		_, errOut, code := Run(t, bin, append(args, "--state-dir", open)...)
		if want := "unsafe state directory " + open + ": owned by uid 0 with mode 0777; it must be owned by uid 0"; code != 1 ||
			!strings.Contains(errOut, want) || !strings.Contains(errOut, "chmod 0700 "+open) {
			t.Errorf("%s, group and world writable: exit %d, want %q in\n%s", v, code, want, errOut)
		}
		_, errOut, code = Run(t, bin, append(args, "--state-dir", link)...)
		if want := "unsafe state directory " + link + ": a symbolic link (to "; code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("%s, a symbolic link: exit %d, want %q in\n%s", v, code, want, errOut)
		}
	}

	// A command that changes the node makes the directory, private.
	if out, errOut, code := Run(t, bin, "destroy", "-f", file, "--node", "n1", "--node-netns", node, "--state-dir", missing); code != 0 {
		t.Fatalf("destroy: exit %d\n%s%s", code, out, errOut)
	}
	st, err := os.Lstat(missing)
	if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Fatalf("state directory made as %v (%v), want a directory of mode 0700", st.Mode(), err)
	}
}

// A record naming a namespace netreconcile did not make (planted beside
// its own) never gets that namespace deleted: apply of a file without it
// and destroy leave it, and say why; netreconcile's own pod namespace is
// still deleted.
func TestForgedRecordDeletesNothing(t *testing.T) {
	w := newWorld(t)
	pods := []podDef{{"a", "10.244.1.10", "veth", w.id + "-a"}}
	victim := w.id + "-v"
	w.write(pods)
	t.Cleanup(func() {
		w.labDown(w.file)
		for _, ns := range []string{pods[0].netns, victim} {
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	w.mustRun("lab", "up", "-f", w.file, "--state-dir", w.stateDir)
	w.mustRun(w.nodeArgs("apply")...)
	if out, err := exec.Command("ip", "netns", "add", victim).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	rec := filepath.Join(w.stateDir, w.node, "netns", victim)
	if err := os.WriteFile(rec, []byte("pod/t/v\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	warning := "ignored the record of namespace " + victim + " (pod/t/v): the namespace carries no mark of netreconcile's"

	w.write(nil) // a file without any pod: a's namespace goes
	for _, verb := range []string{"apply", "destroy"} {
		out, errOut, code := Run(t, w.bin, w.nodeArgs(verb)...)
		if code != 0 || !strings.Contains(errOut, warning) {
			t.Fatalf("%s: exit %d, want %q in the log\n%s%s", verb, code, warning, out, errOut)
		}
		if !netnsExists(victim) {
			t.Fatalf("%s deleted the namespace %s it did not make", verb, victim)
		}
		if netnsExists(pods[0].netns) {
			t.Fatalf("%s left netreconcile's own namespace %s", verb, pods[0].netns)
		}
	}
}
