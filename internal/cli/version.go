package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
)

// versionCmd prints the binary's version and the formats it speaks.
func versionCmd(version string) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "netreconcile %s (topology %s, plan format %s)\n", version, spec.APIVersion, reconcile.PlanFormatVersion)
		},
	}
}
