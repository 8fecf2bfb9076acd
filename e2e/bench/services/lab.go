package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/netreconcile/netreconcile/e2e/bench/internal/benchnode"
)

// pod is one pod of a bench lab.
type pod struct {
	name, node, ip, mode string
	labels               map[string]string
}

// service is one clusterIP service with one TCP port.
type service struct {
	name, ip         string
	port, targetPort int
	selector         map[string]string
}

// lab is one `netreconcile lab` of the bench: its nodes (suffixes of the
// run's id), pods and services, written to a file in the run's temporary
// directory. Pins go below pinRoot/<node> (lab --bpffs).
type lab struct {
	name     string // for messages
	id, bin  string
	dir      string // temporary directory: files and state
	pinRoot  string
	nodes    []node
	pods     []pod
	services []service
	file     string
	labDown  func() // nil until up
}

type node struct{ suffix, addr, cidr string }

func (l *lab) node(s string) string   { return l.id + s }
func (l *lab) nodeNS(s string) string { return "nrlab-" + l.node(s) }
func (l *lab) netns(p pod) string     { return l.id + "-" + p.name }
func (l *lab) pinDir(s string) string { return filepath.Join(l.pinRoot, l.node(s)) }

func (l *lab) pod(name string) pod {
	for _, p := range l.pods {
		if p.name == name {
			return p
		}
	}
	panic("no pod " + name)
}

func flowMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + m[k]
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// write writes the lab's current topology to a new file and makes it the
// current one.
func (l *lab) write() error {
	var b strings.Builder
	b.WriteString("apiVersion: netreconcile/v1\nkind: Topology\n")
	b.WriteString("cluster: {podCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/16, routing: {mode: auto}}\nnodes:\n")
	for _, n := range l.nodes {
		fmt.Fprintf(&b, "  - {name: %s, address: %s, podCIDR: %s}\n", l.node(n.suffix), n.addr, n.cidr)
	}
	b.WriteString("pods:\n")
	for _, p := range l.pods {
		fmt.Fprintf(&b, "  - {name: %s, namespace: bench, node: %s, ip: %s, mode: %s, netns: %s", p.name, l.node(p.node), p.ip, p.mode, l.netns(p))
		if len(p.labels) > 0 {
			fmt.Fprintf(&b, ", labels: %s", flowMap(p.labels))
		}
		b.WriteString("}\n")
	}
	if len(l.services) > 0 {
		b.WriteString("services:\n")
	}
	for _, s := range l.services {
		fmt.Fprintf(&b, "  - {name: %s, namespace: bench, clusterIP: %s, selector: %s, ports: [{port: %d, targetPort: %d}]}\n",
			s.name, s.ip, flowMap(s.selector), s.port, s.targetPort)
	}
	l.file = filepath.Join(l.dir, fmt.Sprintf("%s-%d.yaml", l.name, time.Now().UnixNano()))
	return os.WriteFile(l.file, []byte(b.String()), 0o644)
}

func (l *lab) stateDir() string { return filepath.Join(l.dir, "state-"+l.name) }

// up writes the topology and brings the lab up.
func (l *lab) up(ctx context.Context) error {
	if err := l.write(); err != nil {
		return err
	}
	down, err := benchnode.LabUp(ctx, l.bin, l.file, "--state-dir", l.stateDir(), "--bpffs", l.pinRoot)
	l.labDown = down // down is attempted even after a failed up
	if err != nil {
		return fmt.Errorf("%s: %w", l.name, err)
	}
	return nil
}

// down takes the lab down with a fresh context (the run's may be
// cancelled) and deletes the pod namespaces in case lab down could not.
func (l *lab) down() {
	if l.labDown == nil {
		return
	}
	l.labDown()
	for _, p := range l.pods {
		if _, err := os.Stat(filepath.Join("/var/run/netns", l.netns(p))); err == nil {
			_ = exec.Command("ip", "netns", "del", l.netns(p)).Run()
		}
	}
	l.labDown = nil
}

// apply writes the topology and applies it on node s; it returns the
// command's wall time.
func (l *lab) apply(ctx context.Context, s string) (time.Duration, error) {
	if err := l.write(); err != nil {
		return 0, err
	}
	start := time.Now()
	out, err := exec.CommandContext(ctx, l.bin, "apply", "-f", l.file, "--node", l.node(s), "--node-netns", l.nodeNS(s),
		"--state-dir", l.stateDir(), "--bpffs", l.pinDir(s), "--log-format", "json").CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return took, fmt.Errorf("%s apply: %w\n%s", l.name, err, benchnode.Tail(string(out), 15))
	}
	return took, nil
}

// nsExec runs argv inside the network namespace ns (never the caller's:
// an empty ns is refused), with stdin as standard input.
func nsExec(ctx context.Context, ns, stdin string, argv ...string) ([]byte, error) {
	if ns == "" {
		return nil, fmt.Errorf("nsExec %v: no namespace given", argv)
	}
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("in netns %s: %s: %w\n%s", ns, strings.Join(argv, " "), err, benchnode.Tail(string(out), 15))
	}
	return out, nil
}
