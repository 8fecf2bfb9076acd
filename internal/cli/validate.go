package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
)

// validateCmd checks a file offline: it reads no state and no kernel.
func validateCmd() *cobra.Command {
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
