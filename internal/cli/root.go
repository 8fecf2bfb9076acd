package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/internal/gcfloor"
)

// heapFloor is how large the heap may grow before the collector runs (see
// internal/gcfloor): at the scale node (1000 pods, 5000 services, 500
// policies) it takes a fifth off a plan, and peak RSS stays under 100 MB.
// The watch daemon, which lives on, collects its own way (watch.go).
const heapFloor = 64 << 20

// exitError ends the process with code and no message: the verb has
// already said what it had to (plan --detailed-exitcode, probe).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// Exit maps what the root command returned to the process's exit status
// and the line to print on standard error ("" for none): 0 for success,
// the code a verb chose, and 1 for any other error.
func Exit(err error) (code int, message string) {
	var ee exitError
	switch {
	case err == nil:
		return 0, ""
	case errors.As(err, &ee):
		return ee.code, ""
	default:
		return 1, "error: " + err.Error()
	}
}

// NewRoot returns the netreconcile command with every verb; version is
// what the version verb prints.
func NewRoot(version string) *cobra.Command {
	g := &globals{version: version}
	root := &cobra.Command{
		Use:           "netreconcile",
		Short:         "Declarative container networking: observe, diff, converge",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Name() != "watch" {
				gcfloor.Set(heapFloor)
			}
			return g.setUp(cmd)
		},
	}
	g.addFlags(root)
	root.AddCommand(validateCmd(g), planCmd(g), applyCmd(g), destroyCmd(g), showCmd(g), labCmd(g), explainCmd(g), versionCmd(version))
	root.AddCommand(watchCmd(g))
	root.AddCommand(probeCmd(g), diffCmd(g), graphCmd(g), schemaCmd(), statusCmd(g), monitorCmd(g))
	return root
}
