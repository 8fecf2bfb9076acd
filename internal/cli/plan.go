package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/internal/statedir"
	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// observedEmpty is the --observed value that plans a node from scratch
// (reconcile.EmptyObserved); a file of that name is ./empty.
const observedEmpty = "empty"

// planCmd prints what apply would change; with --observed it reads
// neither the kernel nor the state directory.
func planCmd(g *globals) *cobra.Command {
	var files []string
	var node, output, observed, out string
	var detailed, allNodes bool
	cmd := &cobra.Command{
		Use:   "plan -f FILE",
		Short: "Show what apply would change on the node; changes nothing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var changed bool
			var err error
			// A cluster's plans are tens of MB of text, written line by line.
			w := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
			switch {
			case out != "":
				changed, err = planSave(g, files, node, observed, output, out, w)
			case allNodes:
				r, _, lerr := g.load(files, false)
				if lerr != nil {
					return lerr
				}
				changed, err = planAllNodes(g, r, observed, output, w)
			default:
				r, _, lerr := g.load(files, false)
				if lerr != nil {
					return lerr
				}
				changed, err = planNode(g, r, node, observed, output, w)
			}
			if ferr := w.Flush(); err == nil && ferr != nil {
				err = fmt.Errorf("write plan: %w", ferr)
			}
			if err != nil {
				return err
			}
			if detailed && changed {
				return exitError{2}
			}
			return nil
		},
	}
	fileFlag(cmd, &files)
	nodeFlag(cmd, &node)
	outputFlag(cmd, &output)
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when there are changes (0: none, 1: error)")
	cmd.Flags().StringVar(&observed, "observed", "", "plan against this state (from show -o json) instead of the kernel; "+
		"\"empty\": a node with nothing of netreconcile's; with --all-nodes a directory of <node>.json")
	cmd.Flags().BoolVar(&allNodes, "all-nodes", false, "plan every node of the file: offline with --observed DIR|empty, "+
		"else live in a lab (namespace of each node as lab up makes it)")
	cmd.Flags().StringVar(&out, "out", "", "also write the plan to this file, for apply PLAN to apply exactly it")
	cmd.MarkFlagsMutuallyExclusive("all-nodes", "node")
	cmd.MarkFlagsMutuallyExclusive("all-nodes", "out")
	return cmd
}

// planSave plans one node as planNode does, from the file's text read
// once, and saves the plan with that text to path (plan --out). A saved
// plan holds one file's text: a set of several is refused.
func planSave(g *globals, files []string, node, observed, output, path string, w io.Writer) (changed bool, err error) {
	srcs, err := g.sources(files)
	if err != nil {
		return false, err
	}
	if len(srcs) != 1 {
		return false, fmt.Errorf("plan --out saves one topology file, and -f names %d (%s): merge them into one file to save a plan", len(srcs), strings.Join(files, ", "))
	}
	file, data := srcs[0].Name, srcs[0].Data
	r, _, err := spec.Load(srcs)
	if err != nil {
		return false, err
	}
	e, res, err := nodePlan(g, r, node, observed)
	if err != nil {
		return false, err
	}
	if err := writeSavedPlan(path, g.version, file, data, e, res); err != nil {
		return false, err
	}
	if err := printPlan(res.Plan, output, w); err != nil {
		return false, err
	}
	if output != "json" {
		savedNote(w, path)
	}
	return !res.Plan.Empty(), nil
}

// planNode plans one node and prints its plan; changed says whether it
// has changes.
func planNode(g *globals, r *spec.Resolved, node, observed, output string, w io.Writer) (changed bool, err error) {
	_, res, err := nodePlan(g, r, node, observed)
	if err != nil {
		return false, err
	}
	return !res.Plan.Empty(), printPlan(res.Plan, output, w)
}

// nodePlan plans node against observed (see --observed; "" for the kernel)
// with the engine it returns.
func nodePlan(g *globals, r *spec.Resolved, node, observed string) (*reconcile.Engine, *reconcile.Result, error) {
	var obs *reconcile.Observed
	var err error
	switch observed {
	case "":
	case observedEmpty:
		obs, err = reconcile.EmptyObserved(r, node)
	default:
		obs, err = readObserved(observed)
	}
	if err != nil {
		return nil, nil, err
	}
	e := g.offline(obs).engine(node)
	res, err := e.Plan(r, obs)
	return e, res, err
}

// printPlan prints p as text or JSON (-o).
func printPlan(p *reconcile.Plan, output string, w io.Writer) error {
	if output == "json" {
		return writeJSON(w, p)
	}
	p.WriteText(w)
	return nil
}

// offline returns the flags for a plan against obs: the observed node's
// namespace (the datapath's attachment keys name it) and, without
// --bpffs, its pin directory.
func (g *globals) offline(obs *reconcile.Observed) *globals {
	og := *g
	if obs == nil || obs.Facts == nil {
		return &og
	}
	if og.bpffs == "" {
		og.bpffs = obs.Facts.PinDir
	}
	if obs.Facts.NodeNetns != "" {
		og.nodeNetns = obs.Facts.NodeNetns
	}
	return &og
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
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
	b, err = currentObserved(b)
	if err != nil {
		return nil, fmt.Errorf("observed state %s: %w", path, err)
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

// currentObserved returns show -o json's output in today's format: a file
// of format 1 (no format_version; some keys camelCase) has its keys
// renamed; another major version is refused.
func currentObserved(b []byte) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	v, _ := doc["format_version"].(string)
	major, _, _ := strings.Cut(v, ".")
	switch major {
	case "2":
		return b, nil
	case "", "1":
	default:
		return nil, fmt.Errorf("format_version %s: this netreconcile reads %s (show -o json of this version)", v, state.ObservedFormat)
	}
	return json.Marshal(renameKeys(doc, state.LegacyKeys))
}

// renameKeys renames the keys of every object in v (decoded JSON).
func renameKeys(v any, names map[string]string) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if n, ok := names[k]; ok {
				k = n
			}
			out[k] = renameKeys(e, names)
		}
		return out
	case []any:
		for i := range x {
			x[i] = renameKeys(x[i], names)
		}
	}
	return v
}
