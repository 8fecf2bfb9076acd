package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/policy"
	"github.com/netreconcile/netreconcile/reconcile"
)

// validateCmd checks a file offline: it reads no state and no kernel.
func validateCmd(g *globals) *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check a topology file offline (schema, semantics, map capacity of every node); no kernel access",
		Long: `Validate checks a topology file offline, reading no kernel and no state: its
structure, its semantics (addresses, references, uniqueness) and whether every
node's datapath maps can hold its entries. Every error is reported at once, with
file:line:column and the field path; exit 1.

A valid file may still say something its author did not mean. Validate warns
(on standard error, exit 0) about selectors that match nothing: a service that
selects no pod (it refuses every connection), a policy that selects no pod,
and a policy peer whose namespaceSelector or podSelector matches nothing (it
allows nobody).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, pos, err := g.loadOffline(files)
			if err != nil {
				return err
			}
			if err := reconcile.CheckCapacity(r, pos); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (%d nodes, %d pods, %d services, %d policies)\n",
				strings.Join(files, ", "), len(r.Nodes), len(r.Pods), len(r.Services), len(r.Policies))
			// Valid, but most likely not what was meant: said, exit 0.
			for _, w := range policy.Lint(r) {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			return nil
		},
	}
	fileFlag(cmd, &files)
	return cmd
}
