package cli

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/daemon"
	"github.com/netreconcile/netreconcile/spec"
)

// nodeStatus is one node's line of status.
type nodeStatus struct {
	Node string `json:"node"`
	// Source is "watch" when the node's watch daemon answered, "live"
	// when status planned the node itself.
	Source string `json:"source"`
	// State: converged, drifted (live: changes pending), error, starting.
	State   string         `json:"state"`
	Pending int            `json:"pending,omitempty"` // live: changes a plan would make
	Pods    int            `json:"pods"`
	Objects int            `json:"objects"`
	Daemon  *daemon.Status `json:"daemon,omitempty"`
	Error   string         `json:"error,omitempty"`
}

// statusCmd says, per node, whether it is converged: what its watch
// daemon reports, or else what a live plan finds.
func statusCmd(g *globals) *cobra.Command {
	var files []string
	var node, output string
	var labWide, detailed bool
	cmd := &cobra.Command{
		Use:   "status [-f FILE] [--node N | --lab] [-o text|json] [--detailed-exitcode]",
		Short: "Say per node whether it is converged: its watch daemon's last pass, or a live plan",
		Long: `Status reports, for a node (--node, default the host name) or every node of a
lab (--lab, with -f), whether it is converged. A node whose watch daemon
listens on its control socket (<state-dir>/<node>.sock) answers itself: state
(converged, error, starting), its last pass and when it last converged, drift
repairs, the pods and objects it owns, the file's state and the last error.
Without a daemon, status plans the node live from -f FILE: converged when the
plan is empty, drifted with the number of changes pending otherwise. It changes
nothing.

Exit status: 0, 1 on error, 2 with --detailed-exitcode when a node is not
converged.`,
		Example: `  netreconcile status --node node-a
  netreconcile status -f topology.yaml --lab
  netreconcile status -f topology.yaml -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r *spec.Resolved
			if len(files) > 0 {
				var err error
				if r, _, err = g.load(files, false); err != nil {
					return err
				}
			}
			nodes := []string{node}
			if labWide {
				if r == nil {
					return fmt.Errorf("--lab needs -f FILE, the lab's topology")
				}
				nodes = nodes[:0]
				for _, n := range r.Nodes {
					nodes = append(nodes, n.Name)
				}
			}
			var out []nodeStatus
			for _, n := range nodes {
				ng := g
				if labWide {
					lg := labNode(g, n)
					ng = &lg
				}
				out = append(out, ng.nodeStatus(cmd, r, n))
			}
			if err := writeStatus(cmd.OutOrStdout(), output, out); err != nil {
				return err
			}
			for _, s := range out {
				if s.State == "error" && s.Source == "live" {
					return exitError{1}
				}
				if detailed && s.State != "converged" {
					return exitError{2}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "topology file, directory or -, repeatable: plan nodes without a watch daemon live")
	nodeFlag(cmd, &node)
	cmd.Flags().BoolVar(&labWide, "lab", false, "every node of the lab of -f (their namespaces nrlab-<node>)")
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when a node is not converged")
	outputFlag(cmd, &output)
	return cmd
}

// nodeStatus asks node's watch daemon, or plans the node live.
func (g *globals) nodeStatus(cmd *cobra.Command, r *spec.Resolved, node string) nodeStatus {
	st, ok, err := daemon.AskStatus(cmd.Context(), g.controlPath(node))
	if ok {
		s := nodeStatus{Node: node, Source: "watch", State: st.State, Pods: st.Pods, Objects: st.Objects, Daemon: &st}
		if err != nil {
			s.State, s.Error = "error", err.Error()
		}
		return s
	}
	s := nodeStatus{Node: node, Source: "live"}
	if r == nil {
		s.State, s.Error = "error", "no watch daemon answers for this node; give -f FILE to plan it live"
		return s
	}
	res, err := g.engine(node).Plan(r, nil)
	if err != nil {
		s.State, s.Error = "error", err.Error()
		return s
	}
	s.Pods = len(r.PodsOn(node))
	s.Objects = res.Observed.Owned.Len()
	s.State, s.Pending = "converged", len(res.Plan.Changes)
	if s.Pending > 0 {
		s.State = "drifted"
	}
	return s
}

func writeStatus(w io.Writer, output string, nodes []nodeStatus) error {
	if output == "json" {
		return writeJSON(w, struct {
			FormatVersion string       `json:"format_version"`
			Nodes         []nodeStatus `json:"nodes"`
		}{"1.0", nodes})
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSOURCE\tSTATE\tLAST PASS\tPODS\tOBJECTS\tDRIFT REPAIRS\tNOTE")
	for _, s := range nodes {
		source, last, drift, note := s.Source, "-", "-", s.Error
		if d := s.Daemon; d != nil {
			source = fmt.Sprintf("watch pid %d", d.PID)
			if !d.LastPass.IsZero() {
				last = d.LastPass.Local().Format(time.DateTime) + " (" + d.LastDuration + ")"
			}
			drift = fmt.Sprint(d.DriftRepairs)
			if note == "" {
				note = d.LastError
			}
			if d.FileState != "" && d.FileState != "ok" {
				note = "file " + d.FileState + ", serving the last good one; " + note
			}
		}
		if s.Pending > 0 {
			note = fmt.Sprintf("%d changes pending (netreconcile plan shows them)", s.Pending)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", s.Node, source, s.State, last, s.Pods, s.Objects, drift, note)
	}
	return tw.Flush()
}
