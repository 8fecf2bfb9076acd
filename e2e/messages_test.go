package e2e

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The wording of every mistake a user can make, kept in one table so that
// it stays good: each reaches the user as one line on standard error,
// "error: " and a message naming the file position or the kernel object,
// with exit 1, nothing on standard output and nothing changed on the node
// (links, addresses, routes, neighbours, FDB, pins, records, namespaces).
// Messages are golden: a row's want is an exact substring of the line,
// with {file}, {dir}, {node}, {nodeNS} and {tmp} standing for the row's
// file, the directory of the files, node a's name and namespace and a
// temporary directory.

// msgRow is one mistake.
type msgRow struct {
	name string
	// file is the topology: "" for the lab's good one, "{lab...}" for one
	// of the lab's (see labFiles), "{lab...}|old|new" for one edited, or
	// text of its own.
	file string
	// cmds are the commands that must all fail the same way; default plan
	// and apply.
	cmds [][]string
	// args follow the node flags (-f, --node, --node-netns, --state-dir,
	// --bpffs): a later flag overrides an earlier one. noNode drops the
	// node flags altogether.
	args   []string
	noNode bool
	// setup makes the node state the mistake needs (a foreign object in
	// the way) and returns its undo.
	setup func(t *testing.T, l *svcLab) func()
	want  string
}

// specBase is a small valid file for the file rows; each row breaks one
// thing, so its one error has a fixed position.
const specBase = `apiVersion: netreconcile/v1
kind: Topology
cluster:
  podCIDR: 10.244.0.0/16
  serviceCIDR: 10.96.0.0/16
nodes:
  - {name: {node}, address: 172.31.1.2/24, uplink: eth0, podCIDR: 10.244.1.0/24}
pods:
  - {name: a1, namespace: t, node: {node}, ip: 10.244.1.10, mode: veth}
`

func messageRows() []msgRow {
	edit := func(old, new string) string { return strings.Replace(specBase, old, new, 1) }
	foreign := func(cmds ...string) func(t *testing.T, l *svcLab) func() {
		return func(t *testing.T, l *svcLab) func() {
			ns := l.nodeNS("a")
			for _, c := range cmds {
				ip(t, ns, strings.Fields(c)...)
			}
			return func() { _ = exec.Command("ip", "-n", ns, "link", "del", strings.Fields(cmds[0])[2]).Run() }
		}
	}
	return []msgRow{
		// The file.
		{name: "file: not YAML", file: "apiVersion: netreconcile/v1\ncluster: {podCIDR: 10.244.0.0/16\n",
			want: "{file}:2:10: not valid YAML: did not find expected ',' or '}' — a mapping opened with { is not closed with }"},
		{name: "file: empty", file: "\n",
			want: "{file}: file holds no YAML document"},
		{name: "file: missing", args: []string{"-f", "{dir}/missing.yaml"},
			want: "load topology: stat {dir}/missing.yaml: no such file or directory"},
		{name: "file: unknown field", file: edit("  serviceCIDR: 10.96.0.0/16\n", "  serviceCIDR: 10.96.0.0/16\n  colour: blue\n"),
			want: `{file}:6:3: cluster.colour: unknown field "colour"; valid fields: datapath, egress, mode, mtu, nodePortRange, podCIDR, routing, serviceCIDR`},
		{name: "file: wrong type", file: edit("podCIDR: 10.244.0.0/16", "podCIDR: [10.244.0.0/16]"),
			want: "{file}:4:12: cluster.podCIDR: expected a string, got a sequence"},
		{name: "file: bad CIDR", file: edit("podCIDR: 10.244.0.0/16", "podCIDR: 10.244.0.0/33"),
			want: `{file}:4:12: cluster.podCIDR: invalid CIDR "10.244.0.0/33": prefix length out of range`},
		{name: "file: pod IP outside the node's podCIDR", file: edit("ip: 10.244.1.10", "ip: 10.245.1.10"),
			want: `pods[0].ip: 10.245.1.10 is outside node "{node}"'s podCIDR 10.244.1.0/24`},
		{name: "file: unknown mode", file: edit("mode: veth", "mode: tunnel"),
			want: `pods[0].mode: unknown mode "tunnel" (valid: veth, bridge, macvlan, ipvlan)`},
		{name: "file: pod on an unknown node", file: edit("node: {node}, ip", "node: nowhere, ip"),
			want: `pods[0].node: unknown node "nowhere" (nodes: {node})`},
		{name: "file: duplicate pod", file: specBase + "  - {name: a1, namespace: t, node: {node}, ip: 10.244.1.11}\n",
			want: `{file}:10:12: pods[1].name: duplicate pod "t/a1" (first at pods[0])`},
		{name: "file: service port out of range", file: specBase + "services:\n  - {name: s, namespace: t, clusterIP: 10.96.0.10, ports: [{port: 70000}]}\n",
			want: "{file}:11:67: services[0].ports[0].port: port must be between 1 and 65535, got 70000"},
		{name: "file: services without serviceCIDR", file: strings.Replace(specBase, "  serviceCIDR: 10.96.0.0/16\n", "", 1) +
			"services:\n  - {name: s, namespace: t, clusterIP: 10.96.0.10, ports: [{port: 80}]}\n",
			want: "cluster.serviceCIDR: required when services are defined"},
		{name: "file: unknown policy type", file: specBase + "policies:\n  - {name: p, namespace: t, spec: {podSelector: {}, policyTypes: [Sideways]}}\n",
			want: `{file}:11:67: policies[0].spec.policyTypes[0]: unknown policy type "Sideways" (valid: Ingress, Egress)`},

		// The node, as the file describes it.
		{name: "unknown node", args: []string{"--node", "nope"},
			cmds: [][]string{{"plan"}, {"apply"}, {"destroy"}},
			want: `node "nope" is not in the file`},
		{name: "missing uplink", file: "{lab}|uplink: eth0, podCIDR: 10.244.1.0/24|uplink: eth9, podCIDR: 10.244.1.0/24",
			want: `node "{node}": uplink "eth9" not found in the node namespace`},
		{name: "uplink without the node address", file: "{lab}|address: 172.31.1.2/24|address: 172.31.1.9/24",
			want: `node "{node}": uplink "eth0" does not carry the node address 172.31.1.9/24 (has [172.31.1.2/24])`},

		// Foreign objects in the way.
		{name: "clash: foreign link", file: "{lab+bridge}",
			setup: foreign("link add nrbr0 type veth peer name nrbr0p"),
			want:  "clash with an object netreconcile does not own: link nrbr0 in node (veth) exists"},
		{name: "clash: foreign route", file: "{lab+veth}",
			setup: foreign("link add fz0 type veth peer name fz1", "link set fz0 up", "route add 10.244.1.12/32 dev fz0 proto static"),
			want:  "clash with an object netreconcile does not own: route 10.244.1.12/32 in node exists with protocol 4"},
		{name: "clash: foreign address", file: "{lab+bridge}",
			setup: foreign("link add fz0 type veth peer name fz1", "addr add 10.244.1.1/32 dev fz0"),
			want:  "clash with an object netreconcile does not own: address 10.244.1.1 is on link node/fz0"},
		{name: "clash: foreign VXLAN device", file: "{lab}|vni: 1|vni: 2",
			setup: foreign("link add fvx0 type vxlan id 2 dstport 4789 dev eth0"),
			want:  "node/fvx0 already uses VNI 2 and UDP port 4789"},
		{name: "ipvlan unavailable", file: "{lab+ipvlan}",
			want: "ipvlan is not available in this kernel: pod t/a5"},

		// Flags.
		{name: "--observed: not JSON", cmds: [][]string{{"plan", "--observed", "{dir}/garbage.json"}},
			want: "observed state {dir}/garbage.json: invalid character 'g' looking for beginning of value"},
		{name: "--observed: not show's output", cmds: [][]string{{"plan", "--observed", "{dir}/other.json"}},
			want: `observed state {dir}/other.json: no "owned" objects: not the output of show -o json`},
		{name: "--observed: missing", cmds: [][]string{{"plan", "--observed", "{dir}/missing.json"}},
			want: "read observed state: open {dir}/missing.json: no such file or directory"},
		{name: "--bpffs not on bpffs", args: []string{"--bpffs", "{tmp}/pins"},
			want: "datapath pin directory (--bpffs): {tmp}/pins is not on a bpf filesystem: ebpf datapath unavailable"},
		{name: "-o: bad value", cmds: [][]string{{"plan", "-o", "yml"}},
			want: `-o "yml": want text, json or yaml`},
		{name: "show -o: bad value", cmds: [][]string{{"show", "-o", "yml"}}, noNode: true,
			args: []string{"--node", "{node}", "--node-netns", "{nodeNS}"},
			want: `-o "yml": want text, json or yaml`},
		{name: "--node-netns: no such namespace", args: []string{"--node-netns", "nrnosuch-ns"},
			cmds: [][]string{{"plan"}, {"apply"}, {"destroy"}},
			want: `open netns "nrnosuch-ns": not a network namespace`},
		{name: "--node-netns: not a namespace", args: []string{"--node-netns", "{dir}/garbage.json"},
			want: `open netns "{dir}/garbage.json": not a network namespace`},
		{name: "--log-format: bad value", args: []string{"--log-format", "xml"},
			want: `--log-format "xml": want console or json`},
		{name: "--attach-mode: bad value", args: []string{"--attach-mode", "xdp"},
			want: `--attach-mode "xdp": want auto, tcx or tc`},
		{name: "-f missing", noNode: true, cmds: [][]string{{"plan"}, {"destroy"}},
			want: `required flag(s) "file" not set`},
		{name: "-f and a saved plan missing", noNode: true, cmds: [][]string{{"apply"}},
			want: `apply needs -f FILE, or a saved plan (plan --out PLAN, then apply PLAN)`},
		{name: "unknown flag", args: []string{"--colour", "blue"},
			want: "unknown flag: --colour"},
	}
}

// TestUserErrorMessages runs every row of messageRows against a live lab
// (node a with veth pods and a service, so the datapath is pinned; node c
// on another subnet, so node a has a VXLAN device).
func TestUserErrorMessages(t *testing.T) {
	l := newSvcLab(t, "um")
	l.nodes = []svcNode{{"a", "172.31.1.2/24", "10.244.1.0/24"}, {"c", "172.31.2.2/24", "10.244.3.0/24"}}
	web := map[string]string{"app": "web"}
	l.pods = []svcPod{
		{name: "a1", node: "a", ip: "10.244.1.10", mode: "veth", labels: web},
		{name: "a2", node: "a", ip: "10.244.1.11", mode: "veth"},
	}
	l.services = []svcService{{name: "web", ip: "10.96.0.10", selector: web, ports: []string{"{port: 80, targetPort: 8080}"}}}
	l.up()
	good := l.file
	goodText := l.topo()
	l.requireNoChanges("after lab up")
	withPod := func(p svcPod) string {
		saved := l.pods
		l.pods = append(append([]svcPod(nil), saved...), p)
		defer func() { l.pods = saved }()
		return l.topo()
	}
	labFiles := map[string]string{
		"{lab}":        goodText,
		"{lab+bridge}": withPod(svcPod{name: "a3", node: "a", ip: "10.244.1.20", mode: "bridge"}),
		"{lab+veth}":   withPod(svcPod{name: "a4", node: "a", ip: "10.244.1.12", mode: "veth"}),
		"{lab+ipvlan}": withPod(svcPod{name: "a5", node: "a", ip: "10.244.1.40", mode: "ipvlan"}),
	}
	dir := t.TempDir()
	tmp := t.TempDir()
	for name, content := range map[string]string{"garbage.json": "garbage\n", "other.json": `{"node": "x"}` + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ipvlan := kernelHasIPvlan(t)
	nsA := l.nodeNS("a")
	expand := func(s, file string) string {
		return strings.NewReplacer("{file}", file, "{dir}", dir, "{tmp}", tmp, "{node}", l.node("a"),
			"{nodeNS}", nsA).Replace(s)
	}

	for _, row := range messageRows() {
		t.Run(row.name, func(t *testing.T) {
			if row.name == "ipvlan unavailable" && ipvlan {
				t.Skip("this kernel has ipvlan")
			}
			file := good
			if row.file != "" {
				text := row.file
				if parts := strings.Split(text, "|"); len(parts) == 3 {
					text = strings.Replace(labFiles[parts[0]], parts[1], parts[2], 1)
				} else if lab, ok := labFiles[text]; ok {
					text = lab
				}
				file = filepath.Join(dir, strings.Map(func(r rune) rune {
					if r == ' ' || r == ':' || r == '/' || r == '\'' {
						return '-'
					}
					return r
				}, row.name)+".yaml")
				if err := os.WriteFile(file, []byte(expand(text, file)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if row.setup != nil {
				undo := row.setup(t, l)
				t.Cleanup(undo)
			}
			want := expand(row.want, file)
			cmds := row.cmds
			if cmds == nil {
				cmds = [][]string{{"plan"}, {"apply"}}
			}
			before := nodeState(t, l)
			for _, cmd := range cmds {
				args := append([]string(nil), cmd...)
				if !row.noNode {
					if !slices.Contains(row.args, "-f") { // a row's own file replaces the lab's
						args = append(args, "-f", file)
					}
					args = append(args, "--node", l.node("a"), "--node-netns", nsA,
						"--state-dir", l.stateDir, "--bpffs", l.pinDir("a"))
				}
				for _, a := range row.args {
					args = append(args, expand(a, file))
				}
				for j := range args {
					args[j] = expand(args[j], file)
				}
				out, errOut, code := Run(t, l.bin, args...)
				line := strings.TrimSuffix(errOut, "\n")
				switch {
				case code != 1:
					t.Errorf("%s: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", cmd[0], code, out, errOut)
				case out != "":
					t.Errorf("%s: wrote to standard output:\n%s\nstderr:\n%s", cmd[0], out, errOut)
				case strings.Contains(line, "\n") || !strings.HasPrefix(line, "error: "):
					t.Errorf("%s: want one line \"error: ...\" on standard error, got:\n%s", cmd[0], errOut)
				case !strings.Contains(line, want):
					t.Errorf("%s: message\n  %s\nwant it to contain\n  %s", cmd[0], line, want)
				}
			}
			if after := nodeState(t, l); after != before {
				t.Errorf("the node changed:\n%s", lineDiff(before, after))
			}
		})
	}
	l.file = good
	l.requireNoChanges("after the bad input")
	if _, err := os.Stat(filepath.Join(tmp, "pins")); !os.IsNotExist(err) {
		t.Errorf("a pin directory not on bpffs was created: %v", err)
	}
}

// nodeState is everything of node a that a failed run must leave as it
// was: its kernel state (see snapshot), the pins and records below the
// lab's directories, and the names of the namespaces that exist.
func nodeState(t *testing.T, l *svcLab) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(kernelSnapshot(t, l.nodeNS("a")))
	b.WriteString("--- pins\n" + strings.Join(pinsBelow(l.pinRoot), "\n") + "\n--- records\n")
	filepath.WalkDir(l.stateDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".lock") {
			content, _ := os.ReadFile(p)
			b.WriteString(strings.TrimPrefix(p, l.stateDir) + ": " + string(content))
		}
		return nil
	})
	ents, _ := os.ReadDir("/var/run/netns")
	var names []string
	for _, e := range ents {
		if strings.Contains(e.Name(), l.id) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	b.WriteString("--- netns\n" + strings.Join(names, "\n") + "\n")
	return b.String()
}

// kernelSnapshot is snapshot (links, IPv4 addresses and routes of every table,
// permanent and proxy neighbours, FDB) from standard output alone: ip
// prints "Peer netns reference is invalid" on standard error when another
// process deletes a namespace while it resolves link-netns names.
func kernelSnapshot(t *testing.T, ns string) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{
		{"ip", "-n", ns, "-o", "link", "show"},
		{"ip", "-n", ns, "-o", "-4", "addr", "show"},
		{"ip", "-n", ns, "-4", "route", "show", "table", "all"},
		{"ip", "-n", ns, "neigh", "show", "nud", "permanent"},
		{"ip", "-n", ns, "neigh", "show", "proxy"},
		{"bridge", "-n", ns, "fdb", "show"},
	} {
		out, err := exec.Command(args[0], args[1:]...).Output()
		if err != nil {
			t.Fatalf("%s: %v", strings.Join(args, " "), err)
		}
		b.Write(out)
	}
	return b.String()
}

// lineDiff shows the lines only in before (-) and only in after (+).
func lineDiff(before, after string) string {
	in := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[l]++
		}
		return m
	}
	b, a := in(before), in(after)
	var out []string
	for _, l := range strings.Split(before, "\n") {
		if a[l] < b[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(after, "\n") {
		if b[l] < a[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}
