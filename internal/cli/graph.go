package cli

import (
	"fmt"

	"github.com/netreconcile/netreconcile/schema"

	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/graph"
)

// graphCmd draws the topology from the file alone.
func graphCmd(g *globals) *cobra.Command {
	var files []string
	var output string
	cmd := &cobra.Command{
		Use:   "graph -f FILE [-o dot|mermaid]",
		Short: "Draw nodes, pods, services and the connections the policies allow (Graphviz DOT or Mermaid; no kernel needed)",
		Long: `Graph draws the topology file: a box per node holding its pods, each service
with dotted lines to its backends, and an arrow for every connection the
NetworkPolicies allow between two pods where a policy decides (the source is
isolated for egress or the destination for ingress), labelled with the ports:
those the destination declares (pods[].ports) and those services target on it.
Pods no policy isolates for ingress are drawn dashed and marked open: anyone
may reach them. Verdicts are explain's.

Above ` + fmt.Sprint(graph.PodLimit) + ` pods the boxes are namespaces (per node) and an arrow counts
the pod pairs it stands for; above ` + fmt.Sprint(graph.MaxPods) + ` pods graph refuses.`,
		Example: `  netreconcile graph -f topology.yaml | dot -Tsvg > topology.svg
  netreconcile graph -f topology.yaml -o mermaid   # paste into Markdown`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "dot" && output != "mermaid" {
				return fmt.Errorf("-o %q: want dot or mermaid", output)
			}
			r, _, err := g.loadOffline(files)
			if err != nil {
				return err
			}
			g, err := graph.Build(r)
			if err != nil {
				return err
			}
			if output == "mermaid" {
				return g.Mermaid(cmd.OutOrStdout())
			}
			return g.DOT(cmd.OutOrStdout())
		},
	}
	fileFlag(cmd, &files)
	cmd.Flags().StringVarP(&output, "output", "o", "dot", "dot or mermaid")
	return cmd
}

// schemaCmd prints the topology file's JSON Schema, for editors
// (yaml-language-server) and CI.
func schemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the topology file's JSON Schema (for editors and CI)",
		Long: `Schema prints the JSON Schema (draft 2020-12) of the topology file. Point an
editor at it with a first line such as

  # yaml-language-server: $schema=` + schema.URL + `

or save it and use a local path. It checks structure (field names, types,
enums); validate checks everything else (addresses, uniqueness, references).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(schema.JSON())
			return err
		},
	}
}
