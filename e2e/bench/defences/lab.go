package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/e2e/bench/internal/benchnode"
)

// release is one netreconcile binary with its own state directory and
// pin directory, so that neither ever reads what the other wrote.
type release struct {
	name     string // "without" | "with"
	about    string // for the table: the commit or the tree
	bin      string
	stateDir string
	pinDir   string
	// share, when not 0, is written as the datapath's per-source
	// conntrack share after apply (a diagnostic: the defences without
	// the share as the limit).
	share uint32
}

// lab is the one node both releases are applied to in turn: its node
// namespace (from lab up, kept for the whole run) and the file.
type lab struct {
	id       string
	dir      string // temporary files
	labBin   string // the binary that brings the node up and down
	labFile  string // the node alone
	file     string // node, pods, service, policy
	stateDir string // lab up's
	pinRoot  string // every pin directory of the run lives below it
}

// Addresses and ports of the file.
var (
	clientIP  = netip.MustParseAddr("10.244.1.10")
	serverIP  = netip.MustParseAddr("10.244.1.20")
	clusterIP = netip.MustParseAddr("10.96.0.10")
)

// Every measurement has a server port of its own: a connection to the
// clusterIP never meets the TIME_WAIT of one to the pod IP.
const (
	portIperfPod = 5201 // iperf3 to the pod IP
	portIperfSvc = 5202 // iperf3 through the clusterIP (service port 80)
	portConnPod  = 5300 // new connections to the pod IP
	portConnSvc  = 5301 // new connections through the clusterIP (service port 81)
)

func (l *lab) node() string                   { return l.id + "n" }
func (l *lab) nodeNS() string                 { return "nrlab-" + l.node() }
func (l *lab) netns(pod string) string        { return l.id + "-" + pod }
func (l *lab) svc(port uint16) netip.AddrPort { return netip.AddrPortFrom(clusterIP, port) }

// writeFiles writes the lab's file (the node alone: pods are made and
// removed by each release's apply and destroy) and the topology.
func (l *lab) writeFiles() error {
	head := fmt.Sprintf(`apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/16, routing: {mode: direct}}
nodes:
  - {name: %s, address: %s, podCIDR: 10.244.1.0/24}
`, l.node(), benchnode.NodeAddr)
	l.labFile = filepath.Join(l.dir, "lab.yaml")
	if err := os.WriteFile(l.labFile, []byte(head+"pods: []\n"), 0o644); err != nil {
		return err
	}
	topo := head + fmt.Sprintf(`pods:
  - {name: client, namespace: bench, node: %[1]s, ip: %[2]s, mode: veth, netns: %[3]s, labels: {role: client}}
  - {name: server, namespace: bench, node: %[1]s, ip: %[4]s, mode: veth, netns: %[5]s, labels: {role: server}}
services:
  - name: server
    namespace: bench
    clusterIP: %[6]s
    selector: {role: server}
    ports: [{name: iperf, port: 80, targetPort: %[8]d}, {name: conn, port: 81, targetPort: %[10]d}]
policies:
  - name: server-from-client
    namespace: bench
    spec:
      podSelector: {matchLabels: {role: server}}
      policyTypes: [Ingress]
      ingress:
        - from: [{podSelector: {matchLabels: {role: client}}}]
          ports: [{port: %[7]d}, {port: %[8]d}, {port: %[9]d}, {port: %[10]d}]
`, l.node(), clientIP, l.netns("client"), serverIP, l.netns("server"), clusterIP,
		portIperfPod, portIperfSvc, portConnPod, portConnSvc)
	l.file = filepath.Join(l.dir, "topology.yaml")
	return os.WriteFile(l.file, []byte(topo), 0o644)
}

// run runs bin with args and a bounded time.
func run(ctx context.Context, limit time.Duration, bin string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, benchnode.Tail(string(out), 15))
	}
	return nil
}

func (l *lab) up(ctx context.Context) error {
	return run(ctx, 2*time.Minute, l.labBin, "lab", "up", "-f", l.labFile, "--state-dir", l.stateDir,
		"--bpffs", filepath.Join(l.pinRoot, "lab"))
}

// down takes the node away; it runs on every exit path, so it has a
// context of its own.
func (l *lab) down() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := run(ctx, 2*time.Minute, l.labBin, "lab", "down", "-f", l.labFile, "--state-dir", l.stateDir,
		"--bpffs", filepath.Join(l.pinRoot, "lab"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab down:", err)
	}
}

func (l *lab) nodeArgs(verb string, r *release) []string {
	return []string{verb, "-f", l.file, "--node", l.node(), "--node-netns", l.nodeNS(),
		"--state-dir", r.stateDir, "--bpffs", r.pinDir}
}

// apply converges the node to the file with release r.
func (l *lab) apply(ctx context.Context, r *release) error {
	if err := run(ctx, 2*time.Minute, r.bin, l.nodeArgs("apply", r)...); err != nil {
		return fmt.Errorf("apply (%s defences): %w", r.name, err)
	}
	return nil
}

// raiseShare writes r.share into the datapath r applied.
func raiseShare(r *release) error {
	d, err := datapath.Open(r.pinDir)
	if err != nil {
		return err
	}
	defer d.Close()
	c, err := d.Config()
	if err == nil {
		c.ConntrackPerSource = r.share
		err = d.SetConfig(c)
	}
	if err != nil {
		return fmt.Errorf("raise the conntrack share in %s: %w", r.pinDir, err)
	}
	return nil
}

// destroy removes what r applied, and checks that its pods' namespaces
// and its pins went with it: the next release starts from the same bare
// node.
func (l *lab) destroy(ctx context.Context, r *release) error {
	if err := run(ctx, 2*time.Minute, r.bin, l.nodeArgs("destroy", r)...); err != nil {
		return fmt.Errorf("destroy (%s defences): %w", r.name, err)
	}
	for _, pod := range []string{"client", "server"} {
		if _, err := os.Stat(filepath.Join("/var/run/netns", l.netns(pod))); err == nil {
			return fmt.Errorf("destroy (%s defences) left namespace %s", r.name, l.netns(pod))
		}
	}
	if left, _ := os.ReadDir(r.pinDir); len(left) > 0 {
		return fmt.Errorf("destroy (%s defences) left pins in %s: %v", r.name, r.pinDir, names(left))
	}
	return nil
}

func names(es []os.DirEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// drops reads the drop counters of the datapath r pinned (only a release
// with the defences has them), as "reason=packets" sorted by reason.
func drops(r *release) (map[string]uint64, error) {
	d, reason, err := datapath.Inspect(r.pinDir)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, fmt.Errorf("no datapath of this build in %s: %s", r.pinDir, reason)
	}
	defer d.Close()
	ds, err := d.Drops()
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, dr := range ds {
		out[dr.Reason.String()] += dr.Packets
	}
	return out, nil
}

func formatDrops(m map[string]uint64) string {
	if len(m) == 0 {
		return "no drops"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	slices.Sort(parts)
	return "drops: " + strings.Join(parts, ", ")
}

// Build.

// oldCommit is the release before the defences.
const oldCommit = "020c136"

// repoRoot is the top of the git clone the bench runs from.
func repoRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "", fmt.Errorf("not in a git clone (run from the repository, a clone with history): %w", err)
	}
	root := strings.TrimSpace(string(out))
	if err := exec.CommandContext(ctx, "git", "-C", root, "cat-file", "-e", oldCommit+"^{commit}").Run(); err != nil {
		return "", fmt.Errorf("commit %s (the release before the defences) is not in the history of %s: "+
			"run from a clone with history (git fetch --unshallow)", oldCommit, root)
	}
	return root, nil
}

// buildTree builds the binary of the working tree at root into dst.
func buildTree(ctx context.Context, root, dst string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dst, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build netreconcile in %s: %w\n%s", root, err, benchnode.Tail(string(out), 15))
	}
	return nil
}

// buildCommit builds the binary of commit into dst from a copy of its
// tree (git archive into src; the clone and its worktrees are untouched).
func buildCommit(ctx context.Context, root, commit, src, dst string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	// git archive | tar -x, through a pipe we close on our side so that
	// either end sees the other exit.
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	archive := exec.CommandContext(ctx, "git", "-C", root, "archive", "--format=tar", commit)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", src)
	var errs strings.Builder
	archive.Stdout, archive.Stderr = w, &errs
	untar.Stdin, untar.Stderr = r, &errs
	errA := archive.Start()
	errU := untar.Start()
	r.Close()
	w.Close()
	if errA == nil {
		errA = archive.Wait()
	}
	if errU == nil {
		errU = untar.Wait()
	}
	if err := errors.Join(errA, errU); err != nil {
		return fmt.Errorf("extract %s into %s: %w\n%s", commit, src, err, errs.String())
	}
	return buildTree(ctx, src, dst)
}
