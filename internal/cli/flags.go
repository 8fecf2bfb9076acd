package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
)

// fileFlag adds the required -f, the topology file.
func fileFlag(cmd *cobra.Command, file *string) {
	cmd.Flags().VarP((*onceString)(file), "file", "f", "topology file (- for standard input)")
	_ = cmd.MarkFlagRequired("file")
}

// onceString is a string flag that refuses a second value instead of
// letting the last one silently win.
type onceString string

func (s *onceString) String() string { return string(*s) }
func (s *onceString) Type() string   { return "string" }
func (s *onceString) Set(v string) error {
	if *s != "" {
		return fmt.Errorf("given twice (%q, then %q): one topology file per command", string(*s), v)
	}
	*s = onceString(v)
	return nil
}

// nodeFlag adds --node, defaulting to the host name (which the help
// shows as the default).
func nodeFlag(cmd *cobra.Command, node *string) {
	host, _ := os.Hostname()
	cmd.Flags().StringVar(node, "node", host, "node of the file to work on")
}

// outputFlag adds -o (text or json) to cmd, whose RunE must be set: the
// value is checked before RunE runs, after the global flags and the
// required ones.
func outputFlag(cmd *cobra.Command, output *string) {
	cmd.Flags().StringVarP(output, "output", "o", "text", "text or json")
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if *output != "text" && *output != "json" {
			return fmt.Errorf("-o %q: want text or json", *output)
		}
		return run(cmd, args)
	}
}

// lockFlag adds --lock-timeout to a command that changes a node.
func lockFlag(cmd *cobra.Command) {
	cmd.Flags().Duration("lock-timeout", 30*time.Second,
		"how long to wait while another netreconcile (apply, destroy, watch) holds the node (0: fail at once)")
}
