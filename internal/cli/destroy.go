package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

// destroyCmd removes what netreconcile owns on the node, under its lock;
// with --dry-run it prints what it would remove.
func destroyCmd(g *globals) *cobra.Command {
	var files []string
	var node string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "destroy -f FILE",
		Short: "Remove everything netreconcile owns on the node, and nothing else",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, _, err := g.load(files, false)
			if err != nil {
				return err
			}
			if r.Node(node) == nil {
				return fmt.Errorf("node %q is not in the file", node)
			}
			if dryRun {
				res, err := g.engine(node).PlanDestroy()
				if err != nil {
					return err
				}
				res.Plan.WriteText(cmd.OutOrStdout())
				return nil
			}
			unlock, err := g.lockNode(cmd, node)
			if err != nil {
				return err
			}
			defer unlock()
			res, err := g.engine(node).Destroy(cmd.Context())
			if res != nil {
				printApplied(cmd.OutOrStdout(), node, res, err)
			}
			return err
		},
	}
	fileFlag(cmd, &files)
	nodeFlag(cmd, &node)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the destroy plan and change nothing")
	lockFlag(cmd)
	return cmd
}
