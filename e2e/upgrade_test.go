package e2e

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/internal/nstest"
	"github.com/netreconcile/netreconcile/internal/nsutil"
)

// Upgrades: state that an earlier release left on a node (its marks, its
// records, its pinned datapath) is adopted, or migrated with a log line,
// by this build's apply, which converges and never crashes. The fixtures
// are in testdata/upgrade (see its README.md): the node's kernel objects
// and records as release b7fc0a9 made them (v1/node.txt), and pinned
// datapaths (datapath-*.json) built from that release's eBPF object.
//
// What counts as a layout change (and makes this build replace a pinned
// datapath, services and connection tracking starting empty):
//   - a pinned map whose type, key size, value size, max entries or flags
//     differ from this build's (cilium/ebpf's MapSpec.Compatible);
//   - a change of what a key or value means, even at the same size: bump
//     NR_LAYOUT_VERSION in bpf/datapath.c, which nr_config carries;
//   - a map of this build missing from the pins, unless it is listed in
//     datapath's addedMaps (those are added, empty, beside the others).
//
// Not layout changes: new maps listed in addedMaps, and new program code
// alone (pinned links are switched to the new programs in place, so
// connections carry on).

// upgradeFixture is one datapath-*.json.
type upgradeFixture struct {
	About  string `json:"about"`
	Object string `json:"object"` // eBPF object of the earlier release
	// LayoutVersion stamped into nr_config: a number, or "next" (this
	// build's plus one).
	LayoutVersion string `json:"layoutVersion"`
	// Maps overrides map specs of the object (an earlier layout).
	Maps map[string]struct {
		KeySize    uint32 `json:"keySize"`
		ValueSize  uint32 `json:"valueSize"`
		MaxEntries uint32 `json:"maxEntries"`
	} `json:"maps"`
	Programs bool     `json:"programs"` // attach the object's programs to the pods
	Entries  bool     `json:"entries"`  // program the service and the endpoints
	Log      []string `json:"log"`      // notes apply must log
	// KeepsConnections: a connection through the service made before the
	// upgrade carries on after it.
	KeepsConnections bool `json:"keepsConnections"`
}

// TestUpgradeFromEarlierRelease runs every datapath fixture on a node
// with the marks of release b7fc0a9.
func TestUpgradeFromEarlierRelease(t *testing.T) {
	nstest.RequireRoot(t)
	fixtures, err := filepath.Glob("testdata/upgrade/datapath-*.json")
	if err != nil || len(fixtures) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, path := range fixtures {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "datapath-"), ".json")
		t.Run(name, func(t *testing.T) {
			var fx upgradeFixture
			b, err := os.ReadFile(path)
			if err == nil {
				err = json.Unmarshal(b, &fx)
			}
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			testUpgrade(t, fx)
		})
	}
}

// upgradeLab is one node built by lab up (with no pods), then filled with
// an earlier release's state.
type upgradeLab struct {
	t        *testing.T
	bin      string
	id       string
	stateDir string
	pinRoot  string
	vars     map[string]string // the fixtures' {placeholders}
	file     string            // topology.yaml, filled in
}

func (u *upgradeLab) fill(s string) string {
	for k, v := range u.vars {
		s = strings.ReplaceAll(s, "{"+k+"}", v)
	}
	return s
}

func (u *upgradeLab) nodeArgs(args ...string) []string {
	return append(args, "-f", u.file, "--node", u.vars["node"], "--node-netns", u.vars["node_ns"],
		"--state-dir", u.stateDir, "--bpffs", u.vars["pinDir"])
}

func testUpgrade(t *testing.T, fx upgradeFixture) {
	id := UniqueName("up")
	node := id + "n"
	u := &upgradeLab{t: t, bin: BuildBinary(t), id: id, stateDir: t.TempDir(), pinRoot: "/sys/fs/bpf/nrupgrade-" + id}
	u.vars = map[string]string{
		"node": node, "node_ns": "nrlab-" + node, "ns_a": id + "-a", "ns_b": id + "-b",
		"host_a": drivers.HostIfName(node, "t/a"), "host_b": drivers.HostIfName(node, "t/b"),
		"pinDir":  filepath.Join(u.pinRoot, node),
		"current": strconv.Itoa(int(datapath.LayoutVersion)), "next": strconv.Itoa(int(datapath.LayoutVersion) + 1),
	}
	topo, err := os.ReadFile("testdata/upgrade/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	u.file = WriteFile(t, "topology.yaml", u.fill(string(topo)))
	// The lab: the node alone (its pods are the fixture's).
	labText := u.fill(string(topo))
	labText = labText[:strings.Index(labText, "pods:")] + "pods: []\n"
	labFile := WriteFile(t, "lab.yaml", labText)
	t.Cleanup(func() {
		if t.Failed() {
			DumpState(t, u.vars["node_ns"], u.vars["ns_a"], u.vars["ns_b"])
		}
		out, errOut, code := Run(t, u.bin, "lab", "down", "-f", u.file, "--state-dir", u.stateDir, "--bpffs", u.pinRoot)
		if code != 0 {
			t.Errorf("lab down: exit %d\n%s%s", code, out, errOut)
		}
		for _, ns := range []string{u.vars["ns_a"], u.vars["ns_b"]} {
			_ = nsutil.Delete(ns)
		}
		if left := pinsBelow(u.pinRoot); len(left) > 0 {
			t.Errorf("pins left after lab down: %v", left)
		}
		os.RemoveAll(u.pinRoot)
	})
	if out, errOut, code := Run(t, u.bin, "lab", "up", "-f", labFile, "--state-dir", u.stateDir, "--bpffs", u.pinRoot); code != 0 {
		t.Fatalf("lab up: exit %d\n%s%s", code, out, errOut)
	}

	// The earlier release's state.
	u.runNodeScript("testdata/upgrade/v1/node.txt")
	replaced := u.pinDatapath(fx)
	svcServeTCP(t, u.vars["ns_a"], "10.244.1.10", 8080, "a")
	svcServeTCP(t, u.vars["ns_b"], "10.244.1.20", 8080, "b")
	var p *pump
	if fx.KeepsConnections && !replaced {
		p = startPump(t, "a->web", u.vars["ns_a"], "10.96.0.10:80", "b")
		p.check(t, "before the upgrade")
	}
	before := ifindexes(t, u.vars["node_ns"])

	// plan: adoption means no object but datapath ones changes, besides
	// the node's service device and its routes, which earlier releases
	// did not make.
	plan := mustOut(t, u.bin, u.nodeArgs("plan", "-o", "json")...)
	var pj planJSON
	if err := json.Unmarshal([]byte(plan), &pj); err != nil {
		t.Fatalf("plan json: %v\n%s", err, plan)
	}
	for _, c := range pj.Changes {
		// New since the fixtures (issue 17): the node's service device and
		// its routes, and egress masquerade: created, never changed or removed.
		newDevice := c.Action == "create" && c.Owner == "node" && (c.Key == "node/nrsvc0" || c.Kind == "route")
		switch {
		case newDevice:
		case c.Kind == "masquerade":
			if c.Action != "create" {
				t.Errorf("masquerade %s: %s, want create", c.Key, c.Action)
			}
		case slices.Contains([]string{"datapath", "service", "endpoint", "program", "policy-identity", "pod-policy", "policy-revision"}, c.Kind):
		default:
			t.Errorf("the earlier release's %s %s is not adopted: %s", c.Kind, c.Key, c.Action)
		}
	}

	// apply: the notes, once each; then nothing left to do.
	out, errOut, code := Run(t, u.bin, u.nodeArgs("apply", "--log-format", "json")...)
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	notes := datapathNotes(t, errOut)
	want := fx.Log
	if replaced && fx.Entries {
		// This build changed the layout since the fixture was made: what
		// was adopted is now replaced.
		want = []string{"removed the datapath pinned in {pinDir} by a build with another map layout ("}
	}
	for _, w := range want {
		w = u.fill(w)
		found := 0
		for _, n := range notes {
			if strings.Contains(n, w) {
				found++
			}
		}
		if found != 1 {
			t.Errorf("apply logged %q %d times, want once; notes:\n%s", w, found, strings.Join(notes, "\n"))
		}
	}
	if out, errOut, code := Run(t, u.bin, u.nodeArgs("plan", "--detailed-exitcode")...); code != 0 {
		t.Fatalf("plan after the upgrade: exit %d\n%s%s", code, out, errOut)
	}
	after := ifindexes(t, u.vars["node_ns"])
	for name, idx := range before {
		if after[name] != idx {
			t.Errorf("link %s: ifindex %d -> %d (recreated, not adopted)", name, idx, after[name])
		}
	}
	if p != nil {
		p.check(t, "after the upgrade")
	}
	for _, backend := range []string{"a", "b"} {
		startPump(t, "new->"+backend, u.vars["ns_a"], "10.96.0.10:80", backend).check(t, "a new connection after the upgrade")
	}
	if out := mustOut(t, u.bin, u.nodeArgs("apply")...); !strings.Contains(out, "no changes") {
		t.Errorf("second apply: %s", out)
	}
}

// runNodeScript runs a node.txt fixture: ip commands, "sysctl NS KEY
// VALUE" and "record PATH CONTENT".
func (u *upgradeLab) runNodeScript(path string) {
	t := u.t
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(u.fill(string(b))))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		switch f[0] {
		case "ip":
			if out, err := exec.Command("ip", f[1:]...).CombinedOutput(); err != nil {
				t.Fatalf("%s:%d: %s: %v\n%s", path, n, line, err, out)
			}
		case "sysctl":
			if len(f) != 4 {
				t.Fatalf("%s:%d: want sysctl NS KEY VALUE", path, n)
			}
			if err := nsutil.WriteSysctl(f[1], f[2], f[3]); err != nil {
				t.Fatalf("%s:%d: %v", path, n, err)
			}
		case "record":
			if len(f) != 3 {
				t.Fatalf("%s:%d: want record PATH CONTENT", path, n)
			}
			p := filepath.Join(u.stateDir, f[1])
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(f[2]+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("%s:%d: unknown command %q", path, n, f[0])
		}
	}
}

// pinDatapath pins the fixture's datapath in the node's pin directory as
// the earlier release did, and reports whether this build will replace it
// (its layout version is not this build's, or a map spec differs).
func (u *upgradeLab) pinDatapath(fx upgradeFixture) (replaced bool) {
	t := u.t
	pinDir := u.vars["pinDir"]
	spec, err := ebpf.LoadCollectionSpec(filepath.Join("testdata/upgrade", fx.Object))
	if err != nil {
		t.Fatal(err)
	}
	for name, o := range fx.Maps {
		ms, ok := spec.Maps[name]
		if !ok {
			t.Fatalf("fixture overrides map %s, which %s lacks", name, fx.Object)
		}
		if o.KeySize != 0 {
			ms.KeySize = o.KeySize
		}
		if o.ValueSize != 0 {
			ms.ValueSize = o.ValueSize
		}
		if o.MaxEntries != 0 {
			ms.MaxEntries = o.MaxEntries
		}
		replaced = true
	}
	if err := os.MkdirAll(filepath.Join(pinDir, "links"), 0o700); err != nil {
		t.Fatal(err)
	}
	opts := ebpf.MapOptions{PinPath: pinDir}
	maps := map[string]*ebpf.Map{}
	var progs map[string]*ebpf.Program
	if fx.Programs {
		coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{Maps: opts})
		if err != nil {
			t.Fatalf("load %s: %v", fx.Object, err)
		}
		defer coll.Close()
		maps, progs = coll.Maps, coll.Programs
	} else {
		for name, ms := range spec.Maps {
			m, err := ebpf.NewMapWithOptions(ms, opts)
			if err != nil {
				t.Fatalf("map %s: %v", name, err)
			}
			defer m.Close()
			maps[name] = m
		}
	}

	// nr_config as release b7fc0a9 wrote it: {layout version, hairpin
	// address (big endian), flags (1: fast path), pad}.
	version := uint32(1)
	switch v := fx.LayoutVersion; v {
	case "next":
		version = datapath.LayoutVersion + 1
	default:
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("layoutVersion %q", v)
		}
		version = uint32(n)
	}
	if version != datapath.LayoutVersion {
		replaced = true
	}
	cfg := make([]byte, 16)
	binary.LittleEndian.PutUint32(cfg[0:], version)
	copy(cfg[4:], []byte{169, 254, 42, 1})
	binary.LittleEndian.PutUint32(cfg[8:], 1)
	if err := maps["nr_config"].Put(uint32(0), cfg); err != nil {
		t.Fatalf("nr_config: %v", err)
	}

	hosts := map[string]string{"10.244.1.10": u.vars["host_a"], "10.244.1.20": u.vars["host_b"]}
	index := func(host string) int {
		var idx int
		err := nsutil.Do(u.vars["node_ns"], func() error {
			iface, err := net.InterfaceByName(host)
			if err == nil {
				idx = iface.Index
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return idx
	}
	if fx.Entries && !replaced {
		// The entries' encoding is what layout version 1 means: this
		// build's, on the pinned maps alone.
		d, reason, err := datapath.Inspect(pinDir)
		if err != nil || d == nil {
			t.Fatalf("inspect the fixture's maps: %v %s", err, reason)
		}
		svc := datapath.Service{Key: datapath.ServiceKey{IP: netip.MustParseAddr("10.96.0.10"), Port: 80, Proto: datapath.ProtoTCP}}
		for ip := range hosts {
			svc.Backends = append(svc.Backends, datapath.Backend{IP: netip.MustParseAddr(ip), Port: 8080})
		}
		err = d.SetService(svc)
		for ip, host := range hosts {
			if err == nil {
				err = d.SetEndpoint(netip.MustParseAddr(ip), datapath.Endpoint{IfIndex: index(host)})
			}
		}
		d.Close()
		if err != nil {
			t.Fatalf("program the fixture's service: %v", err)
		}
	}
	if fx.Programs {
		for _, host := range hosts {
			for dir, prog := range map[datapath.Direction]string{datapath.HostIngress: "nr_from_pod", datapath.HostEgress: "nr_to_pod"} {
				at := ebpf.AttachTCXIngress
				if dir == datapath.HostEgress {
					at = ebpf.AttachTCXEgress
				}
				name, err := datapath.AttachmentName(u.vars["node_ns"], host, dir)
				if err != nil {
					t.Fatal(err)
				}
				err = nsutil.Do(u.vars["node_ns"], func() error {
					iface, err := net.InterfaceByName(host)
					if err != nil {
						return err
					}
					l, err := link.AttachTCX(link.TCXOptions{Interface: iface.Index, Program: progs[prog], Attach: at})
					if err != nil {
						return err
					}
					defer l.Close()
					return l.Pin(filepath.Join(pinDir, "links", name))
				})
				if err != nil {
					t.Fatalf("attach %s to %s: %v", prog, host, err)
				}
			}
		}
	}
	return replaced
}

// datapathNotes returns the "note" of every "datapath" log line in a JSON
// log.
func datapathNotes(t *testing.T, log string) []string {
	var notes []string
	for _, line := range strings.Split(log, "\n") {
		var e struct{ Msg, Note string }
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "datapath" {
			notes = append(notes, e.Note)
		}
	}
	t.Logf("datapath notes:\n%s", fmt.Sprint(strings.Join(notes, "\n")))
	return notes
}
