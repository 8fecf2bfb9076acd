package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/daemon"
	"github.com/netreconcile/netreconcile/reconcile"
)

// applyCmd converges the node under its lock, or hands the file to the
// watch daemon that holds the node. Given a saved plan (plan --out)
// instead of -f, it applies exactly that plan or nothing.
func applyCmd(g *globals) *cobra.Command {
	var files []string
	var node string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply (-f FILE | PLAN)",
		Short: "Converge the node to the file, or apply a saved plan, then verify",
		Long: "apply -f FILE plans and applies the file. apply PLAN applies the plan that plan --out saved, and only " +
			"when the node has not changed since: otherwise it refuses (exit 1), naming what changed.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 1 && len(files) > 0:
				return fmt.Errorf("apply takes -f FILE or a saved plan, not both")
			case len(args) == 1:
				return applySaved(cmd, g, g.version, args[0], dryRun)
			case len(files) == 0:
				return fmt.Errorf("apply needs -f FILE, or a saved plan (plan --out PLAN, then apply PLAN)")
			}
			if !dryRun {
				// A watch daemon holding the node converges its file at
				// once when asked, and never releases the lock.
				rep, ok, err := daemon.Ask(cmd.Context(), g.controlPath(node), files)
				if err != nil {
					return err
				}
				if ok {
					return printDelegated(cmd.OutOrStdout(), node, rep)
				}
			}
			r, commit, err := g.load(files, !dryRun)
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
				printApplied(cmd.OutOrStdout(), node, res, err)
			}
			if err == nil {
				commit()
			}
			return err
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, fileHelp)
	nodeFlag(cmd, &node)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the plan and change nothing")
	lockFlag(cmd)
	return cmd
}

// printApplied reports what apply, destroy or lab up did to a node (err:
// how the run ended). Changes are counted as the plan's summary counts
// them (a replace is one added and one destroyed); objects that went
// with their namespace or pin directory are among the destroyed.
func printApplied(w io.Writer, node string, res *reconcile.Result, err error) {
	s := res.Plan.Summary
	switch {
	case res.Plan.Empty():
		fmt.Fprintf(w, "Node %s: no changes.\n", node)
		return
	case err != nil:
		fmt.Fprintf(w, "Node %s: %d of %d steps applied, then failed (plan: %d to add, %d to change, %d to destroy).\n",
			node, res.Applied, res.Plan.StepCount(), s.Add, s.Change, s.Destroy)
		return
	}
	implied := 0
	for _, c := range res.Plan.Changes {
		if c.ImpliedBy != "" {
			implied++
		}
	}
	with := ""
	if implied > 0 {
		with = fmt.Sprintf("; %d of them removed with their namespace or pin directory", implied)
	}
	fmt.Fprintf(w, "Node %s: applied %d changes (%d added, %d changed, %d destroyed%s).\n",
		node, s.Add+s.Change+s.Destroy, s.Add, s.Change, s.Destroy, with)
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
