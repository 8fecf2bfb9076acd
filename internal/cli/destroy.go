package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

// destroyCmd removes what netreconcile owns on the node, under its lock.
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
			unlock, err := g.lockNode(cmd, node)
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
