package cli

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/internal/natsort"
	"github.com/netreconcile/netreconcile/internal/nsutil"
	"github.com/netreconcile/netreconcile/lab"
	"github.com/netreconcile/netreconcile/spec"
)

// labCmd holds lab up and lab down; each node of the lab gets its own
// engine (see labNode).
func labCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Build or remove the whole cluster on this machine (one netns per node, plus an underlay)",
		Long: "Build or remove the whole cluster on this machine (one netns per node, plus an underlay).\n\n" +
			"With --bpffs DIR, each node's datapath is pinned in DIR/<node>: the nodes of a lab never share maps.",
	}
	cmd.AddCommand(labUpCmd(g), labDownCmd(g))
	return cmd
}

func labUpCmd(g *globals) *cobra.Command {
	var files []string
	up := &cobra.Command{
		Use:   "up -f FILE",
		Short: "Build the underlay and node namespaces, then apply every node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := g.loadLab(files)
			if err != nil {
				return err
			}
			info, err := g.labNames().Build(cmd.Context(), r)
			if err != nil {
				return err
			}
			for _, n := range r.Nodes {
				lg := labNode(g, n.Name)
				res, err := lg.engine(n.Name).Apply(cmd.Context(), r)
				if res != nil {
					printApplied(cmd.OutOrStdout(), n.Name, res, err)
				}
				if err != nil {
					return fmt.Errorf("node %q: %w", n.Name, err)
				}
			}
			printLab(cmd.OutOrStdout(), g, files, r, info)
			return nil
		},
	}
	fileFlag(up, &files)
	return up
}

func labDownCmd(g *globals) *cobra.Command {
	var files []string
	down := &cobra.Command{
		Use:   "down -f FILE",
		Short: "Destroy every node's objects, then remove the lab's namespaces",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := g.loadLab(files)
			if err != nil {
				return err
			}
			var errs []error
			for _, n := range r.Nodes {
				if !nsutil.Exists(g.labNames().NodeNetns(n.Name)) {
					continue
				}
				lg := labNode(g, n.Name)
				if _, err := lg.engine(n.Name).Destroy(cmd.Context()); err != nil {
					errs = append(errs, fmt.Errorf("node %q: %w", n.Name, err))
				}
			}
			if err := g.labNames().Teardown(r); err != nil {
				errs = append(errs, err)
			}
			if len(errs) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "Lab removed (%d nodes).\n", len(r.Nodes))
			}
			return errors.Join(errs...)
		},
	}
	fileFlag(down, &files)
	return down
}

// labNode returns the global flags for one node of a lab: its namespace,
// and its own pin directory below --bpffs when that is given (one
// directory for every node would make them share conntrack and endpoint
// maps, whose ifindexes mean nothing in another node's namespace).
func labNode(g *globals, node string) globals {
	lg := *g
	lg.nodeNetns = g.labNames().NodeNetns(node)
	if g.bpffs != "" {
		lg.bpffs = filepath.Join(g.bpffs, node)
	}
	return lg
}

func printLab(w io.Writer, g *globals, files []string, r *spec.Resolved, info *lab.Info) {
	fmt.Fprintf(w, "\nLab is up: %d nodes, %d pods.\n", len(r.Nodes), len(r.Pods))
	nodes := slices.Clone(r.Nodes)
	slices.SortFunc(nodes, func(a, b spec.ResolvedNode) int { return natsort.Compare(a.Name, b.Name) })
	for _, n := range nodes {
		fmt.Fprintf(w, "  node %-10s netns %-20s %s %s  pods %s\n", n.Name, g.labNames().NodeNetns(n.Name), n.Uplink, n.Address, n.PodCIDR)
		pods := r.PodsOn(n.Name)
		slices.SortFunc(pods, func(a, b spec.ResolvedPod) int { return natsort.Compare(a.Key, b.Key) })
		for _, p := range pods {
			fmt.Fprintf(w, "    pod %-16s %-7s %-15s netns %s\n", p.Key, p.Mode, p.IP, p.Netns)
		}
	}
	if len(r.Pods) >= 2 {
		a, b := r.Pods[0], r.Pods[1]
		fmt.Fprintf(w, "\nTry:  ip netns exec %s ping -c1 %s      # %s -> %s\n", a.Netns, b.IP, a.Key, b.Key)
	}
	flags := ""
	if g.prefix != "" {
		flags = " --prefix " + g.prefix
	}
	if len(r.Nodes) > 0 {
		n := r.Nodes[0].Name
		fmt.Fprintf(w, "Inspect a node:  netreconcile show --node-netns %s --node %s%s\n", g.labNames().NodeNetns(n), n, flags)
	}
	fmt.Fprintf(w, "Remove it all:   netreconcile lab down -f %s%s\n", strings.Join(files, " -f "), flags)
	_ = info
}
