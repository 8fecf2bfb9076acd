package cli

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/daemon"
)

// TestFlagDefaults pins each verb's flags, their short forms and defaults:
// scripts and units call them by these names.
func TestFlagDefaults(t *testing.T) {
	host, _ := os.Hostname()
	want := map[string]map[string]string{
		"": {"node-netns": "", "bpffs": "", "state-dir": "/run/netreconcile", "log-format": "",
			"verbose": "-v 0", "attach-mode": "auto", "prefix": "", "max-file-size": "64Mi",
			"etcd-ca": "", "etcd-cert": "", "etcd-key": ""},
		"validate": {"file": "-f []", "output": "-o text"},
		"plan": {"file": "-f []", "node": host, "output": "-o text", "detailed-exitcode": "false",
			"observed": "", "all-nodes": "false", "out": ""},
		"apply":    {"file": "-f []", "node": host, "dry-run": "false", "lock-timeout": "30s"},
		"destroy":  {"file": "-f []", "node": host, "lock-timeout": "30s", "dry-run": "false"},
		"show":     {"file": "-f []", "node": host, "output": "-o text"},
		"watch":    {"file": "-f []", "node": host, "lock-timeout": "30s", "metrics-addr": "127.0.0.1:9403", "resync": "5m0s", "debounce": "200ms", "drift-debounce": "20ms"},
		"lab up":   {"file": "-f []", "nodes": "[]"},
		"lab down": {"file": "-f []", "nodes": "[]"},
		"explain":  {"file": "-f []", "output": "-o text"},
		"probe":    {"file": "-f []", "output": "-o text", "port": "-p []", "timeout": "1s", "retries": "1", "parallel": "64", "nodes": "[]"},
		"version":  {"output": "-o text"},
		"graph":    {"file": "-f []", "output": "-o dot"},
		"schema":   {},
		"monitor":  {"file": "-f []", "node": host, "output": "-o text"},
		"status":   {"file": "-f []", "node": host, "output": "-o text", "lab": "false", "detailed-exitcode": "false"},
	}
	root := NewRoot("test")
	for path, flags := range want {
		cmd, _, err := root.Find(strings.Fields(path))
		if err != nil {
			t.Fatalf("%q: %v", path, err)
		}
		fs := cmd.LocalNonPersistentFlags()
		if path == "" {
			fs = root.PersistentFlags()
		}
		// One line of usage per flag, help aside: no flag beyond these.
		lines := strings.Count(fs.FlagUsages(), "\n")
		if fs.Lookup("help") != nil {
			lines--
		}
		if lines != len(flags) {
			t.Errorf("%q flags:\n%swant %d flags", path, fs.FlagUsages(), len(flags))
		}
		for name, v := range flags {
			f := fs.Lookup(name)
			if f == nil {
				t.Errorf("%q: no --%s", path, name)
				continue
			}
			got := f.DefValue
			if f.Shorthand != "" {
				got = "-" + f.Shorthand + " " + got
			}
			if got != v {
				t.Errorf("%q --%s: %q, want %q", path, name, got, v)
			}
		}
	}
}

// TestRequiredFileFlags: -f is required wherever a file is the input, and
// optional for show and for apply (which takes a saved plan instead: see
// TestSavedPlanFile for its errors).
func TestRequiredFileFlags(t *testing.T) {
	root := NewRoot("test")
	for _, path := range []string{"validate", "plan", "apply", "destroy", "watch", "lab up", "lab down", "explain", "probe", "show"} {
		cmd, _, _ := root.Find(strings.Fields(path))
		_, required := cmd.Flags().Lookup("file").Annotations["cobra_annotation_bash_completion_one_required_flag"]
		if required != (path != "show" && path != "apply") {
			t.Errorf("%s: -f required %v", path, required)
		}
	}
}

// TestNodeHelp: --node's help gives its default once.
func TestNodeHelp(t *testing.T) {
	out, code, msg := run(t, "plan", "--help")
	if code != 0 {
		t.Fatalf("plan --help: exit %d %s", code, msg)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "--node ") {
			if n := strings.Count(line, "default"); n != 1 {
				t.Errorf("--node help says default %d times: %q", n, line)
			}
			return
		}
	}
	t.Errorf("no --node in plan --help:\n%s", out)
}

// TestLabNode: each lab node gets its own namespace and, under --bpffs,
// its own pin directory.
func TestLabNode(t *testing.T) {
	g := &globals{bpffs: "/sys/fs/bpf/lab", nodeNetns: "host", stateDir: "/run/x"}
	lg := labNode(g, "n2")
	if lg.bpffs != "/sys/fs/bpf/lab/n2" || lg.nodeNetns == "host" || lg.stateDir != "/run/x" {
		t.Errorf("labNode: %+v", lg)
	}
	if g.bpffs != "/sys/fs/bpf/lab" || g.nodeNetns != "host" {
		t.Errorf("labNode changed the globals: %+v", g)
	}
	if lg := labNode(&globals{}, "n2"); lg.bpffs != "" {
		t.Errorf("labNode without --bpffs: %q, want the engine's default", lg.bpffs)
	}
}

// TestReadObserved: a file that is not show -o json is refused, naming it.
func TestReadObserved(t *testing.T) {
	for content, want := range map[string]string{
		"garbage\n":       "observed state {path}: invalid character 'g' looking for beginning of value",
		`{"node": "x"}`:   `observed state {path}: no "owned" objects: not the output of show -o json`,
		emptyNode + "\n ": "",
	} {
		path := writeFile(t, "observed.json", content)
		obs, err := readObserved(path)
		want = strings.ReplaceAll(want, "{path}", path)
		if (err == nil) != (want == "") || err != nil && err.Error() != want {
			t.Errorf("readObserved(%q): %v, want %q", content, err, want)
		}
		if err == nil && (obs.Node != "n1" || !obs.Uplink.Found) {
			t.Errorf("readObserved: %+v", obs)
		}
	}
}

// TestPrintDelegated: apply handed to the watch daemon says so, and fails
// as the daemon did.
func TestPrintDelegated(t *testing.T) {
	for _, c := range []struct {
		rep      daemon.ControlReply
		out, err string
	}{
		{daemon.ControlReply{PID: 7, File: "/f"}, "Node n1: no changes (by the watch daemon, pid 7).\n", ""},
		{daemon.ControlReply{PID: 7, File: "/f", Applied: 3, Add: 2, Destroy: 1},
			"Node n1: applied 3 changes (2 added, 0 changed, 1 destroyed; by the watch daemon, pid 7).\n", ""},
		{daemon.ControlReply{PID: 7, File: "/f", Applied: 1, Error: "boom"},
			"Node n1: applied 1 changes, then failed (by the watch daemon, pid 7).\n", "watch daemon (pid 7, following /f): boom"},
		{daemon.ControlReply{PID: 7, File: "/f", Error: "other file"}, "", "watch daemon (pid 7, following /f): other file"},
	} {
		var b bytes.Buffer
		err := printDelegated(&b, "n1", c.rep)
		if b.String() != c.out || (err == nil) != (c.err == "") || err != nil && err.Error() != c.err {
			t.Errorf("printDelegated(%+v): %q, %v; want %q, %q", c.rep, b.String(), err, c.out, c.err)
		}
	}
}
