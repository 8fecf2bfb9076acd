package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
)

// AllNodesFormatVersion versions the JSON of plan --all-nodes; each plan
// in it has its own format_version (reconcile.PlanFormatVersion).
const AllNodesFormatVersion = "1.0"

// allNodesPlan is the JSON of plan --all-nodes: the plans in file order.
type allNodesPlan struct {
	FormatVersion string            `json:"format_version"`
	Plans         []*reconcile.Plan `json:"plans"`
}

// planAllNodes plans every node of r (see allNodePlans) and prints the
// summary table then each plan, or the JSON; changed says whether any
// node has changes.
func planAllNodes(g *globals, r *spec.Resolved, observed, output string, w io.Writer) (changed bool, err error) {
	// Each plan is rendered once made and only its text kept: a
	// cluster's plans are hundreds of MB of objects, their text a tenth.
	var (
		plans  []*reconcile.Plan // their summaries alone
		bodies [][]byte
	)
	err = allNodePlans(g, r, observed, func(p *reconcile.Plan) error {
		changed = changed || !p.Empty()
		plans = append(plans, &reconcile.Plan{Node: p.Node, Summary: p.Summary})
		if output == "json" {
			// As writeJSON indents it inside allNodesPlan's list.
			b, err := json.MarshalIndent(p, "    ", "  ")
			bodies = append(bodies, b)
			return err
		}
		var b bytes.Buffer
		p.WriteText(&b)
		bodies = append(bodies, b.Bytes())
		return nil
	})
	if err != nil {
		return false, err
	}
	if output == "json" {
		return changed, writeAllJSON(w, bodies)
	}
	if err := writeSummaryTable(w, plans); err != nil {
		return false, err
	}
	for _, b := range bodies {
		fmt.Fprintln(w)
		if _, err := w.Write(b); err != nil {
			return false, err
		}
	}
	return changed, nil
}

// writeAllJSON writes the JSON of plan --all-nodes (allNodesPlan, as
// writeJSON writes it) around plans already indented in its list.
func writeAllJSON(w io.Writer, plans [][]byte) error {
	if len(plans) == 0 {
		return writeJSON(w, allNodesPlan{FormatVersion: AllNodesFormatVersion})
	}
	head, err := json.Marshal(AllNodesFormatVersion)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "{\n  \"format_version\": %s,\n  \"plans\": [\n    ", head); err != nil {
		return err
	}
	if _, err := w.Write(bytes.Join(plans, []byte(",\n    "))); err != nil {
		return err
	}
	_, err = io.WriteString(w, "\n  ]\n}\n")
	return err
}

// allNodePlans plans each node of r, in file order, and hands each plan
// to each: against DIR/<node>.json when observed is a directory, from
// scratch when it is "empty", and live in the node's lab namespace when
// it is "".
func allNodePlans(g *globals, r *spec.Resolved, observed string, each func(*reconcile.Plan) error) error {
	if observed != "" && observed != observedEmpty {
		if fi, err := os.Stat(observed); err != nil {
			return fmt.Errorf("--observed: %w", err)
		} else if !fi.IsDir() {
			return fmt.Errorf("--observed %s: with --all-nodes, want a directory of <node>.json or \"empty\"", observed)
		}
	}
	// The nodes' desired states share the file's policy classes and
	// service backends: computed once, not once per node.
	shared := reconcile.NewShared(r)
	for _, n := range r.Nodes {
		p, err := planOf(g, r, shared, n.Name, observed)
		if err != nil {
			return fmt.Errorf("node %q: %w", n.Name, err)
		}
		if err := each(p); err != nil {
			return fmt.Errorf("node %q: %w", n.Name, err)
		}
	}
	return nil
}

// planOf plans one node for allNodePlans.
func planOf(g *globals, r *spec.Resolved, shared *reconcile.Shared, node, observed string) (*reconcile.Plan, error) {
	var (
		obs *reconcile.Observed
		err error
	)
	// Each node has its own pin directory below --bpffs, as in a lab.
	ng := labNode(g, node)
	switch observed {
	case "":
		if !nsutil.Exists(ng.nodeNetns) {
			return nil, errors.New("no lab namespace " + ng.nodeNetns +
				": live, --all-nodes plans the nodes of a lab (lab up); else give --observed DIR or empty")
		}
	case observedEmpty:
		obs, err = reconcile.EmptyObserved(r, node)
	default:
		obs, err = readObserved(filepath.Join(observed, node+".json"))
	}
	if err != nil {
		return nil, err
	}
	e := ng.offline(obs).engine(node)
	e.Cfg.Shared = shared
	res, err := e.Plan(r, obs)
	if err != nil {
		return nil, err
	}
	return res.Plan, nil
}

// writeSummaryTable prints one line per plan: its node and its change
// counts (as the plan's summary line counts them).
func writeSummaryTable(w io.Writer, plans []*reconcile.Plan) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "node\tadd\tchange\tdestroy")
	for _, p := range plans {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", p.Node, p.Summary.Add, p.Summary.Change, p.Summary.Destroy)
	}
	return tw.Flush()
}
