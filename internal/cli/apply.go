package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/daemon"
	"github.com/netreconcile/netreconcile/reconcile"
)

// applyCmd converges the node under its lock, or hands the file to the
// watch daemon that holds the node.
func applyCmd(g *globals) *cobra.Command {
	var file, node string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Converge the node to the file, then verify",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !dryRun {
				// A watch daemon holding the node converges its file at
				// once when asked, and never releases the lock.
				rep, ok, err := daemon.Ask(cmd.Context(), g.controlPath(node), file)
				if err != nil {
					return err
				}
				if ok {
					return printDelegated(cmd.OutOrStdout(), node, rep)
				}
			}
			r, commit, err := g.load(file, !dryRun)
			if err != nil {
				return err
			}
			e := g.engine(node)
			if dryRun {
				res, err := e.Plan(r, nil)
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
			// Verify reads again what the plan touched, not the whole node
			// (the lock keeps other passes out meanwhile).
			e.Cache = reconcile.NewCache()
			res, err := e.Apply(cmd.Context(), r)
			if res != nil {
				printApplied(cmd.OutOrStdout(), node, res)
			}
			if err == nil {
				commit()
			}
			return err
		},
	}
	fileFlag(cmd, &file)
	nodeFlag(cmd, &node)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the plan and change nothing")
	lockFlag(cmd)
	return cmd
}

// printApplied reports what apply, destroy or lab up did to a node.
func printApplied(w io.Writer, node string, res *reconcile.Result) {
	s := res.Plan.Summary
	if res.Plan.Empty() {
		fmt.Fprintf(w, "Node %s: no changes.\n", node)
		return
	}
	fmt.Fprintf(w, "Node %s: applied %d changes (%d added, %d changed, %d destroyed).\n", node, res.Applied, s.Add, s.Change, s.Destroy)
}

// printDelegated reports what the watch daemon did for apply.
func printDelegated(w io.Writer, node string, rep daemon.ControlReply) error {
	by := fmt.Sprintf("by the watch daemon, pid %d", rep.PID)
	if rep.Error != "" {
		if rep.Applied > 0 {
			fmt.Fprintf(w, "Node %s: applied %d changes, then failed (%s).\n", node, rep.Applied, by)
		}
		return fmt.Errorf("watch daemon (pid %d, following %s): %s", rep.PID, rep.File, rep.Error)
	}
	if rep.Add+rep.Change+rep.Destroy == 0 {
		fmt.Fprintf(w, "Node %s: no changes (%s).\n", node, by)
		return nil
	}
	fmt.Fprintf(w, "Node %s: applied %d changes (%d added, %d changed, %d destroyed; %s).\n",
		node, rep.Applied, rep.Add, rep.Change, rep.Destroy, by)
	return nil
}
