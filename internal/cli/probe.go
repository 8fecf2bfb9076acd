package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/lab"
	"github.com/netreconcile/netreconcile/policy"
	"github.com/netreconcile/netreconcile/probe"
	"github.com/netreconcile/netreconcile/spec"
)

// probeCmd measures reachability between the file's pods with real
// traffic and compares it with what the policies say.
func probeCmd(g *globals) *cobra.Command {
	var files []string
	var output string
	var ports []string
	var o probe.Options
	cmd := &cobra.Command{
		Use:   "probe -f FILE",
		Short: "Try every pod pair on the declared ports and compare with what the policies allow",
		Long: `Probe runs on a machine that holds the pods' network namespaces (a lab, or a node
for the pods it hosts). For every port it starts a short-lived listener in every
pod (TCP: accept; UDP: echo), or uses the server already bound there, tries every
ordered pair of pods, and prints what it saw, one narrow table per port (rows
are sources, columns the same pods by number; "." reached, "X" not), marking
with * the pairs where that differs from the policies (netreconcile explain's
evaluator).

Without -p it probes every TCP and UDP port the file names (pods' ports, the
ports services target, the numbered ports of policy rules), and also every
pod to every service port through its clusterIP: expected to get through when
the policies allow every backend, not when they allow none; when they allow
some, the balancer's pick decides and the cell (~) is not judged.

A connection that gets through is proof; one that does not is tried again
(--retries) before it counts as denied: denied traffic is dropped, so each
attempt waits for --timeout. Pods whose namespace is not here are left out.

Exit status is 0 when every pair is as expected, 1 when some differ or the
probe could not run.`,
		Example: `  netreconcile probe -f topology.yaml
  netreconcile probe -f topology.yaml -p 80/TCP -p 53/UDP --timeout 300ms`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := g.loadLab(files)
			if err != nil {
				return err
			}
			if len(o.Nodes) > 0 {
				if err := lab.CheckNodes(r, o.Nodes); err != nil {
					return fmt.Errorf("--nodes: %w", err)
				}
			}
			for _, s := range ports {
				port, proto, err := policy.ParsePort(s)
				if err != nil {
					return fmt.Errorf("--port: %w", err)
				}
				if proto == spec.ProtocolSCTP {
					return fmt.Errorf("--port %s: SCTP is not probed", s)
				}
				o.Targets = append(o.Targets, probe.Target{Port: port, Proto: proto})
			}
			res, err := probe.Run(cmd.Context(), r, o)
			if err != nil {
				return err
			}
			if output == "json" {
				err = res.WriteJSON(cmd.OutOrStdout())
			} else {
				err = res.WriteText(cmd.OutOrStdout())
			}
			if err != nil {
				return err
			}
			if !res.Agree() {
				return exitError{1}
			}
			return nil
		},
	}
	fileFlag(cmd, &files)
	cmd.Flags().StringArrayVarP(&ports, "port", "p", nil, "PORT/PROTO to probe (repeatable; default: every TCP and UDP port the file names, and the services)")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", time.Second, "time one attempt waits for an answer")
	cmd.Flags().IntVar(&o.Retries, "retries", 1, "further attempts for a pair that did not answer")
	cmd.Flags().IntVar(&o.Parallel, "parallel", 64, "attempts in flight at once")
	nodesFlag(cmd, &o.Nodes)
	outputFlag(cmd, &output)
	return cmd
}
