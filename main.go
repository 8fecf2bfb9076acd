// Command netreconcile makes Linux container networking declarative: it
// observes a node's kernel state, diffs it against a topology file and
// converges it. See DESIGN.md in the shared docs for the contract.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"github.com/netreconcile/netreconcile/daemon"
	"github.com/netreconcile/netreconcile/drivers"
	"github.com/netreconcile/netreconcile/drivers/bridge"
	"github.com/netreconcile/netreconcile/drivers/ipvlan"
	"github.com/netreconcile/netreconcile/drivers/macvlan"
	"github.com/netreconcile/netreconcile/drivers/veth"
	"github.com/netreconcile/netreconcile/internal/gcfloor"
	"github.com/netreconcile/netreconcile/internal/statedir"
	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries a specific exit code (2 for plan --detailed-exitcode).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// heapFloor is how large the heap may grow before the collector runs (see
// internal/gcfloor): at the scale node (1000 pods, 5000 services, 500
// policies) it takes a fifth off a plan, and peak RSS stays under 100 MB.
// The watch daemon, which lives on, collects its own way (watchcmd.go).
const heapFloor = 64 << 20

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.code)
	default:
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// globals are the flags every command shares.
type globals struct {
	nodeNetns string
	bpffs     string
	stateDir  string
	logFormat string
	attach    string
	verbose   int
	log       logr.Logger
	// noState is set for the offline verbs: they read no state directory
	// (not even the parse cache).
	noState bool
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "netreconcile",
		Short:         "Declarative container networking: observe, diff, converge",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Name() != "watch" {
				gcfloor.Set(heapFloor)
			}
			if g.attach != "tcx" && g.attach != "tc" {
				return fmt.Errorf("--attach-mode %q: want tcx or tc", g.attach)
			}
			l, err := newLogger(g.logFormat, g.verbose, cmd.ErrOrStderr())
			g.log = l
			if err != nil {
				return err
			}
			return g.checkState(cmd)
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.nodeNetns, "node-netns", "", "the node's host network namespace (name or path; default: the current one)")
	pf.StringVar(&g.bpffs, "bpffs", "", "BPF pin directory (default /sys/fs/bpf/netreconcile/<node>)")
	pf.StringVar(&g.stateDir, "state-dir", reconcile.DefaultStateDir, "directory of records (created namespaces, changed sysctls)")
	pf.StringVar(&g.logFormat, "log-format", "", "console or json (default: console on a terminal, json otherwise)")
	pf.CountVarP(&g.verbose, "verbose", "v", "more logs (repeat for more)")
	pf.StringVar(&g.attach, "attach-mode", "tcx", "how datapath programs attach: tcx (links; an RCU wait each) or tc (clsact filters; fast in bulk)")
	root.AddCommand(validateCmd(g), planCmd(g), applyCmd(g), destroyCmd(g), showCmd(g), labCmd(g), explainCmd(), versionCmd())
	root.AddCommand(watchCmd(g))
	root.AddCommand(probeCmd())
	return root
}

func newLogger(format string, verbose int, w io.Writer) (logr.Logger, error) {
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "console"
		}
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(ec)
	case "console":
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return logr.Discard(), fmt.Errorf("--log-format %q: want console or json", format)
	}
	core := zapcore.NewCore(enc, zapcore.AddSync(w), zapcore.Level(-verbose))
	return zapr.NewLogger(zap.New(core)), nil
}

// registry is the one place drivers are registered.
func registry() *drivers.Registry {
	return drivers.NewRegistry(veth.Driver{}, bridge.Driver{}, macvlan.Driver{}, ipvlan.Driver{})
}

// nodeFlag adds --node, defaulting to the host name.
func nodeFlag(cmd *cobra.Command, node *string) {
	host, _ := os.Hostname()
	cmd.Flags().StringVar(node, "node", host, "node of the file to work on (default: the host name)")
}

func fileFlag(cmd *cobra.Command, file *string) {
	cmd.Flags().StringVarP(file, "file", "f", "", "topology file (- for standard input)")
	_ = cmd.MarkFlagRequired("file")
}

func (g *globals) engine(node string) *reconcile.Engine {
	bpffs := g.bpffs
	if bpffs == "" {
		bpffs = filepath.Join("/sys/fs/bpf/netreconcile", node)
	}
	return &reconcile.Engine{
		Cfg: &reconcile.Config{Node: node, NodeNetns: g.nodeNetns, StateDir: g.stateDir, BPFFS: bpffs, Drivers: registry(),
			AttachTC: g.attach == "tc"},
		Log: g.log.WithValues("node", node),
	}
}

// load reads the topology file through the parse cache in the state
// directory. With store, commit records the model after a miss: call it
// once the command succeeded (plan never stores: it changes nothing).
func (g *globals) load(file string, store bool) (r *spec.Resolved, commit func(), err error) {
	start := time.Now()
	c := spec.ParseCache{Path: filepath.Join(g.stateDirectory(), "parsed.cache"), Store: store}
	if g.noState {
		c = spec.ParseCache{}
	}
	c.Miss = func(reason string) { g.log.V(1).Info("parse cache not used", "path", c.Path, "reason", reason) }
	r, found, save, err := c.Load(file)
	if err == nil {
		g.log.V(1).Info("loaded", "file", file, "cached", string(found), "took", time.Since(start))
	}
	return r, func() {
		if err := save(); err != nil {
			g.log.V(1).Info("parse cache not written", "path", c.Path, "error", err.Error())
		}
	}, err
}

func validateCmd(g *globals) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check a topology file offline (schema, semantics, map capacity of every node); no kernel access",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, pos, err := spec.LoadWithPositions(file)
			if err != nil {
				return err
			}
			if err := reconcile.CheckCapacity(r, pos); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (%d nodes, %d pods, %d services, %d policies)\n",
				file, len(r.Nodes), len(r.Pods), len(r.Services), len(r.Policies))
			return nil
		},
	}
	fileFlag(cmd, &file)
	return cmd
}

func planCmd(g *globals) *cobra.Command {
	var file, node, output, observedFile string
	var detailed bool
	cmd := &cobra.Command{
		Use:   "plan -f FILE",
		Short: "Show what apply would change on the node; changes nothing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o %q: want text or json", output)
			}
			r, _, err := g.load(file, false)
			if err != nil {
				return err
			}
			var obs *reconcile.Observed
			if observedFile != "" {
				if obs, err = readObserved(observedFile); err != nil {
					return err
				}
			}
			res, err := g.engine(node).Plan(r, obs)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(res.Plan); err != nil {
					return err
				}
			} else {
				res.Plan.WriteText(cmd.OutOrStdout())
			}
			if detailed && !res.Plan.Empty() {
				return exitError{2}
			}
			return nil
		},
	}
	fileFlag(cmd, &file)
	nodeFlag(cmd, &node)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when there are changes (0: none, 1: error)")
	cmd.Flags().StringVar(&observedFile, "observed", "", "plan against this state (from show -o json) instead of the kernel")
	return cmd
}

// maxObserved bounds an observed state file (show -o json): a node of a
// thousand pods and five thousand services shows a few MiB.
const maxObserved = 256 << 20

func readObserved(path string) (*reconcile.Observed, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read observed state: %w", err)
	}
	defer f.Close()
	b, err := statedir.ReadAll(f, path, maxObserved)
	if err != nil {
		return nil, fmt.Errorf("read observed state: %w", err)
	}
	var obs reconcile.Observed
	if err := json.Unmarshal(b, &obs); err != nil {
		return nil, fmt.Errorf("observed state %s: %w", path, err)
	}
	if obs.Owned == nil {
		return nil, fmt.Errorf("observed state %s: no \"owned\" objects: not the output of show -o json", path)
	}
	return &obs, nil
}

func applyCmd(g *globals) *cobra.Command {
	var file, node string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Converge the node to the file, then verify",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !dryRun {
				// A watch daemon holding the node converges its file at
				// once when asked, and never releases the lock.
				rep, ok, err := daemon.Ask(cmd.Context(), controlPath(g, node), file)
				if err != nil {
					return err
				}
				if ok {
					return printDelegated(cmd.OutOrStdout(), node, rep)
				}
			}
			r, commit, err := g.load(file, !dryRun)
			if err != nil {
				return err
			}
			e := g.engine(node)
			if dryRun {
				res, err := e.Plan(r, nil)
				if err != nil {
					return err
				}
				res.Plan.WriteText(cmd.OutOrStdout())
				return nil
			}
			unlock, err := lockNode(cmd, g, node)
			if err != nil {
				return err
			}
			defer unlock()
			// Verify reads again what the plan touched, not the whole node
			// (the lock keeps other passes out meanwhile).
			e.Cache = reconcile.NewCache()
			res, err := e.Apply(cmd.Context(), r)
			if res != nil {
				printApplied(cmd.OutOrStdout(), node, res)
			}
			if err == nil {
				commit()
			}
			return err
		},
	}
	fileFlag(cmd, &file)
	nodeFlag(cmd, &node)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the plan and change nothing")
	lockFlag(cmd)
	return cmd
}

func printApplied(w io.Writer, node string, res *reconcile.Result) {
	s := res.Plan.Summary
	if res.Plan.Empty() {
		fmt.Fprintf(w, "Node %s: no changes.\n", node)
		return
	}
	fmt.Fprintf(w, "Node %s: applied %d changes (%d added, %d changed, %d destroyed).\n", node, res.Applied, s.Add, s.Change, s.Destroy)
}

// printDelegated reports what the watch daemon did for apply.
func printDelegated(w io.Writer, node string, rep daemon.ControlReply) error {
	by := fmt.Sprintf("by the watch daemon, pid %d", rep.PID)
	if rep.Error != "" {
		if rep.Applied > 0 {
			fmt.Fprintf(w, "Node %s: applied %d changes, then failed (%s).\n", node, rep.Applied, by)
		}
		return fmt.Errorf("watch daemon (pid %d, following %s): %s", rep.PID, rep.File, rep.Error)
	}
	if rep.Add+rep.Change+rep.Destroy == 0 {
		fmt.Fprintf(w, "Node %s: no changes (%s).\n", node, by)
		return nil
	}
	fmt.Fprintf(w, "Node %s: applied %d changes (%d added, %d changed, %d destroyed; %s).\n",
		node, rep.Applied, rep.Add, rep.Change, rep.Destroy, by)
	return nil
}

func destroyCmd(g *globals) *cobra.Command {
	var file, node string
	cmd := &cobra.Command{
		Use:   "destroy -f FILE",
		Short: "Remove everything netreconcile owns on the node, and nothing else",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, _, err := g.load(file, false)
			if err != nil {
				return err
			}
			if r.Node(node) == nil {
				return fmt.Errorf("node %q is not in the file", node)
			}
			unlock, err := lockNode(cmd, g, node)
			if err != nil {
				return err
			}
			defer unlock()
			res, err := g.engine(node).Destroy(cmd.Context())
			if res != nil {
				printApplied(cmd.OutOrStdout(), node, res)
			}
			return err
		},
	}
	fileFlag(cmd, &file)
	nodeFlag(cmd, &node)
	lockFlag(cmd)
	return cmd
}

func showCmd(g *globals) *cobra.Command {
	var file, node, output string
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show the live state netreconcile owns on the node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r *spec.Resolved
			if file != "" {
				var err error
				if r, _, err = g.load(file, false); err != nil {
					return err
				}
			}
			obs, err := g.engine(node).Show(r)
			if err != nil {
				return err
			}
			switch output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(obs)
			case "text":
				writeShow(cmd.OutOrStdout(), obs)
				return nil
			}
			return fmt.Errorf("-o %q: want text or json", output)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "topology file: also look into the pod namespaces it names")
	nodeFlag(cmd, &node)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "netreconcile %s (topology %s, plan format %s)\n", version, spec.APIVersion, reconcile.PlanFormatVersion)
		},
	}
}
