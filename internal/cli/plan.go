package cli

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/internal/statedir"
	"github.com/netreconcile/netreconcile/reconcile"
)

// planCmd prints what apply would change; with --observed it reads
// neither the kernel nor the state directory.
func planCmd(g *globals) *cobra.Command {
	var file, node, output, observedFile string
	var detailed bool
	cmd := &cobra.Command{
		Use:   "plan -f FILE",
		Short: "Show what apply would change on the node; changes nothing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, _, err := g.load(file, false)
			if err != nil {
				return err
			}
			var obs *reconcile.Observed
			if observedFile != "" {
				if obs, err = readObserved(observedFile); err != nil {
					return err
				}
			}
			res, err := g.engine(node).Plan(r, obs)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(res.Plan); err != nil {
					return err
				}
			} else {
				res.Plan.WriteText(cmd.OutOrStdout())
			}
			if detailed && !res.Plan.Empty() {
				return exitError{2}
			}
			return nil
		},
	}
	fileFlag(cmd, &file)
	nodeFlag(cmd, &node)
	outputFlag(cmd, &output)
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when there are changes (0: none, 1: error)")
	cmd.Flags().StringVar(&observedFile, "observed", "", "plan against this state (from show -o json) instead of the kernel")
	return cmd
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
	var obs reconcile.Observed
	if err := json.Unmarshal(b, &obs); err != nil {
		return nil, fmt.Errorf("observed state %s: %w", path, err)
	}
	if obs.Owned == nil {
		return nil, fmt.Errorf("observed state %s: no \"owned\" objects: not the output of show -o json", path)
	}
	return &obs, nil
}
