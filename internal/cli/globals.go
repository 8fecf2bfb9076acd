package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/internal/nodelock"
	"github.com/netreconcile/netreconcile/internal/statedir"
	"github.com/netreconcile/netreconcile/lab"
	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/spec/etcd"
)

// globals are the flags every command shares, and what the root command
// makes of them before a verb runs.
type globals struct {
	nodeNetns string
	bpffs     string
	stateDir  string
	logFormat string
	attach    string
	verbose   int
	// maxFileSize is --max-file-size: each topology file and the set.
	maxFileSize byteSize
	log         logr.Logger
	// version is the binary's (saved plans record it).
	version string
	// noState is set for the offline verbs: they read no state directory
	// (not even the parse cache).
	noState bool
	// prefix is --prefix: the lab's namespaces, pin directories and state
	// carry it (see lab.Names).
	prefix string
	// etcdTLS is --etcd-ca, --etcd-cert and --etcd-key, for the etcds://
	// sources.
	etcdTLS etcd.TLSFiles
}

// labNames names the namespaces of the lab --prefix selects.
func (g *globals) labNames() lab.Names { return lab.Names{Prefix: g.prefix} }

// addFlags adds the global flags to the root command.
func (g *globals) addFlags(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.StringVar(&g.nodeNetns, "node-netns", "", "the node's host network namespace (name or path; default: the current one)")
	pf.StringVar(&g.bpffs, "bpffs", "", "BPF pin directory (default /sys/fs/bpf/netreconcile/<node>)")
	pf.StringVar(&g.stateDir, "state-dir", reconcile.DefaultStateDir, "directory of records (created namespaces, changed sysctls)")
	pf.StringVar(&g.logFormat, "log-format", "", "console or json (default: console on a terminal, json otherwise)")
	pf.CountVarP(&g.verbose, "verbose", "v", "more logs (repeat for more)")
	pf.StringVar(&g.prefix, "prefix", "", "lab prefix: the lab's namespaces (nodes' and pods'), pin directories and state carry it, so labs of files with equal names coexist")
	g.maxFileSize = spec.DefaultMaxFileSize
	pf.Var(&g.maxFileSize, "max-file-size", "largest topology file, and set of files, read (suffix Ki, Mi, Gi)")
	pf.StringVar(&g.etcdTLS.CA, "etcd-ca", "", "PEM file of the CA etcds:// servers' certificates are checked against (default: the system's roots)")
	pf.StringVar(&g.etcdTLS.Cert, "etcd-cert", "", "PEM file of the client certificate offered to etcds:// servers (with --etcd-key)")
	pf.StringVar(&g.etcdTLS.Key, "etcd-key", "", "PEM file of the key of --etcd-cert")
	pf.StringVar(&g.attach, "attach-mode", datapath.ModeAuto, "how datapath programs attach: auto (pods' hooks as clsact filters, "+
		"the node's own as tcx links), tcx (links everywhere; an RCU wait each, about 10 ms) or tc (clsact filters everywhere)")
}

// setUp checks the global flags, makes the logger and checks the state
// directory for cmd, in that order (the first error wins).
func (g *globals) setUp(cmd *cobra.Command) error {
	if g.attach != datapath.ModeAuto && g.attach != datapath.ModeTCX && g.attach != datapath.ModeTC {
		return fmt.Errorf("--attach-mode %q: want auto, tcx or tc", g.attach)
	}
	if err := lab.CheckPrefix(g.prefix); err != nil {
		return fmt.Errorf("--prefix: %w", err)
	}
	// A daemon's log is its output; a one-shot command says what it did
	// in its summary, and logs only when asked (-v, or a --log-format for
	// a machine to read).
	quiet := cmd.Name() != "watch" && g.verbose == 0 && g.logFormat == ""
	l, p, err := newLogger(g.logFormat, g.verbose, quiet, cmd.ErrOrStderr())
	g.log = l
	if err != nil {
		return err
	}
	if p != nil {
		cmd.SetOut(clearing{w: cmd.OutOrStdout(), p: p})
		cobra.OnFinalize(p.clear)
	}
	return g.checkState(cmd)
}

func (g *globals) engine(node string) *reconcile.Engine {
	bpffs := g.bpffs
	if bpffs == "" {
		pin := node
		if g.prefix != "" {
			pin = g.prefix + "-" + node
		}
		bpffs = filepath.Join("/sys/fs/bpf/netreconcile", pin)
	}
	stateDir := g.stateDir
	if g.prefix != "" {
		stateDir = g.stateDirectory()
	}
	return &reconcile.Engine{
		Cfg: &reconcile.Config{Node: node, NodeNetns: g.nodeNetns, StateDir: stateDir, BPFFS: bpffs, Drivers: reconcile.AllDrivers(),
			AttachMode: g.attach},
		Log: g.log.WithValues("node", node),
	}
}

// openSet opens the -f arguments: paths, and etcd://HOST:PORT/PREFIX
// key prefixes (etcds:// with the --etcd-* files). Close it when done.
func (g *globals) openSet(files []string) (spec.Set, error) {
	return spec.OpenSet(files, etcd.Openers(g.etcdTLS))
}

// sources reads the topology's -f set within --max-file-size.
func (g *globals) sources(files []string) ([]spec.Source, error) {
	set, err := g.openSet(files)
	if err != nil {
		return nil, err
	}
	defer set.Close()
	return set.Sources(int64(g.maxFileSize))
}

// loadOffline reads and resolves the -f set without the parse cache (the
// offline verbs read no state directory).
func (g *globals) loadOffline(files []string) (*spec.Resolved, *spec.Positions, error) {
	srcs, err := g.sources(files)
	if err != nil {
		return nil, nil, err
	}
	return spec.Load(srcs)
}

// loadLab is loadOffline for the lab's verbs (lab, probe): the pods'
// namespaces carry --prefix, as the lab made them.
func (g *globals) loadLab(files []string) (*spec.Resolved, error) {
	r, _, err := g.loadOffline(files)
	return g.labNames().Pods(r), err
}

// load reads the topology's -f set through the parse cache in the state
// directory. With store, commit records the model after a miss: call it
// once the command succeeded (plan never stores: it changes nothing).
func (g *globals) load(files []string, store bool) (r *spec.Resolved, commit func(), err error) {
	start := time.Now()
	srcs, err := g.sources(files)
	if err != nil {
		return nil, func() {}, err
	}
	c := spec.ParseCache{Path: filepath.Join(g.stateDirectory(), "parsed.cache"), Store: store, MaxSize: int64(g.maxFileSize)}
	if g.noState {
		c = spec.ParseCache{}
	}
	c.Miss = func(reason string) { g.log.V(1).Info("parse cache not used", "path", c.Path, "reason", reason) }
	r, found, save, err := c.Load(srcs)
	r = g.labNames().Pods(r)
	if err == nil {
		g.log.V(1).Info("loaded", "files", files, "sources", len(srcs), "cached", string(found), "took", time.Since(start))
	}
	return r, func() {
		if err := save(); err != nil {
			g.log.V(1).Info("parse cache not written", "path", c.Path, "error", err.Error())
		}
	}, err
}

// checkState checks the state directory before a command uses it (see
// internal/statedir): the commands that change the node make it when it
// is missing; plan, show, apply --dry-run and destroy --dry-run read it
// when it exists; the
// offline verbs (validate, plan --observed, explain, probe, version) do
// not touch it.
func (g *globals) checkState(cmd *cobra.Command) error {
	flag := func(name string) bool {
		f := cmd.Flags().Lookup(name)
		return f != nil && f.Changed
	}
	switch cmd.CommandPath() {
	case "netreconcile watch", "netreconcile lab up", "netreconcile lab down":
		return statedir.Ensure(g.stateDirectory())
	case "netreconcile apply", "netreconcile destroy":
		if !flag("dry-run") {
			return statedir.Ensure(g.stateDirectory())
		}
	case "netreconcile plan":
		if flag("observed") {
			g.noState = true
			return nil
		}
	case "netreconcile show":
	default:
		g.noState = true
		return nil
	}
	_, err := statedir.Check(g.stateDirectory())
	return err
}

// stateDirectory is --state-dir, or the default when it was set empty;
// a lab with --prefix P keeps its state in P below it.
func (g *globals) stateDirectory() string {
	d := g.stateDir
	if d == "" {
		d = reconcile.DefaultStateDir
	}
	if g.prefix != "" {
		d = filepath.Join(d, g.prefix)
	}
	return d
}

// lockNode takes the node's lock (see internal/nodelock) for the rest of
// the command, waiting up to --lock-timeout with a message.
func (g *globals) lockNode(cmd *cobra.Command, node string) (release func(), err error) {
	timeout, _ := cmd.Flags().GetDuration("lock-timeout")
	self := "netreconcile " + strings.Join(os.Args[1:], " ")
	l, err := nodelock.Acquire(cmd.Context(), g.stateDirectory(), node, self, timeout, func(h nodelock.Holder) {
		fmt.Fprintf(cmd.ErrOrStderr(), "Waiting for node %q: it is locked by %s (waiting up to %v, --lock-timeout)\n", node, h, timeout)
	})
	if err != nil {
		return func() {}, err
	}
	return func() { _ = l.Release() }, nil
}

// controlPath is the watch daemon's control socket for node, beside the
// node's lock (see daemon/control.go).
func (g *globals) controlPath(node string) string {
	return filepath.Join(g.stateDirectory(), node+".sock")
}
