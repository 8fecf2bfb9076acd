package cli

import (
	"bytes"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/reach"
)

// diffCmd compares two versions of a topology file offline: what a
// reviewer of the change needs, with no kernel, state or privilege.
func diffCmd(g *globals) *cobra.Command {
	var output string
	var detailed bool
	cmd := &cobra.Command{
		Use:   "diff OLD NEW [-o text|json|yaml|markdown|dot] [--detailed-exitcode]",
		Short: "Compare two topology files: objects, service backends, the connections policies newly allow or deny, and each node's plan (no kernel needed)",
		Long: `Diff compares two versions of a topology file without touching any kernel or
state directory: the namespaces, nodes, pods, services and policies added,
changed and removed; the backends each service port gains and loses; and the
pod-to-pod and pod-to-service connections, per port and protocol the
destination declares (or the service port), whose verdict changes.

Verdicts are explain's: a connection to a service is judged after translation,
against every backend on its target port, and is allowed only when every
backend allows it; a service port the file lacks, or that has no backend, is
denied. Connections of pods only one file declares are not compared.

Node plans: for every node of either file, the counts of the plan that moving
it from OLD to NEW means (OLD's desired state as what the node has, NEW's as
the target, both offline as plan --observed empty builds them); left out,
saying so, over ` + fmt.Sprint(reach.NodePlanLimit) + ` nodes, where planning each node of a large
cluster costs too much.

Changed connections are grouped by source namespace, target namespace (or
service), port and protocol, and change, with a count and up to 3 examples.
The JSON output (format_version ` + reach.FormatVersion + `) lists every changed connection in
"reachability" when there are at most ` + fmt.Sprint(reach.ListLimit) + `; beyond that it lists the
groups' examples and "reachability_complete" is false.

Exit status: 0 (also when the files differ, unless --detailed-exitcode),
1 on error, 2 with --detailed-exitcode when the files differ.`,
		Example: `  netreconcile diff main.yaml topology.yaml
  netreconcile diff -o markdown main.yaml topology.yaml > comment.md`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			write, ok := diffWriters[output]
			if !ok {
				return fmt.Errorf("-o %q: want text, json, yaml, markdown or dot", output)
			}
			old, _, err := g.loadOffline(args[:1])
			if err != nil {
				return fmt.Errorf("read OLD: %w", err)
			}
			new, _, err := g.loadOffline(args[1:])
			if err != nil {
				return fmt.Errorf("read NEW: %w", err)
			}
			d, err := reach.Compute(old, new)
			if err != nil {
				return fmt.Errorf("diff: %w", err)
			}
			if err := write(d, cmd.OutOrStdout()); err != nil {
				return fmt.Errorf("write diff: %w", err)
			}
			if detailed && !d.Empty() {
				return exitError{code: 2}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text, json, markdown or dot")
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when the files differ")
	return cmd
}

var diffWriters = map[string]func(*reach.Diff, io.Writer) error{
	"text": (*reach.Diff).WriteText,
	"json": (*reach.Diff).WriteJSON,
	"yaml": func(d *reach.Diff, w io.Writer) error {
		var b bytes.Buffer
		if err := d.WriteJSON(&b); err != nil {
			return err
		}
		return jsonToYAML(w, b.Bytes())
	},
	"markdown": (*reach.Diff).WriteMarkdown,
	"dot":      (*reach.Diff).WriteDOT,
}
