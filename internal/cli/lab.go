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
	var files, only []string
	up := &cobra.Command{
		Use:   "up -f FILE",
		Short: "Build the underlay and node namespaces, then apply every node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := g.loadLab(files)
			if err != nil {
				return err
			}
			nodes, err := labNodes(r, only)
			if err != nil {
				return err
			}
			info, err := g.labNames().BuildNodes(cmd.Context(), r, only)
			if err != nil {
				return err
			}
			for _, n := range nodes {
				lg := labNode(g, n.Name)
				res, err := lg.engine(n.Name).Apply(cmd.Context(), r)
				if res != nil {
					printApplied(cmd.OutOrStdout(), n.Name, res, err)
				}
				if err != nil {
					return fmt.Errorf("node %q: %w", n.Name, err)
				}
			}
			printLab(cmd.OutOrStdout(), g, files, r, nodes, info)
			return nil
		},
	}
	fileFlag(up, &files)
	nodesFlag(up, &only)
	return up
}

func labDownCmd(g *globals) *cobra.Command {
	var files, only []string
	down := &cobra.Command{
		Use:   "down -f FILE",
		Short: "Destroy every node's objects, then remove the lab's namespaces",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := g.loadLab(files)
			if err != nil {
				return err
			}
			nodes, err := labNodes(r, only)
			if err != nil {
				return err
			}
			var errs []error
			removed := 0 // the nodes that were up: of a cluster-sized file, a few
			for _, n := range nodes {
				if !nsutil.Exists(g.labNames().NodeNetns(n.Name)) {
					continue
				}
				removed++
				lg := labNode(g, n.Name)
				if _, err := lg.engine(n.Name).Destroy(cmd.Context()); err != nil {
					errs = append(errs, fmt.Errorf("node %q: %w", n.Name, err))
				}
			}
			if err := g.labNames().TeardownNodes(r, only); err != nil {
				errs = append(errs, err)
			}
			if len(errs) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "Lab removed (%d nodes).\n", removed)
			}
			return errors.Join(errs...)
		},
	}
	fileFlag(down, &files)
	nodesFlag(down, &only)
	return down
}

// nodesFlag adds --nodes: a lab of some of the file's nodes.
func nodesFlag(cmd *cobra.Command, only *[]string) {
	cmd.Flags().StringSliceVar(only, "nodes", nil, "only these nodes of the file (comma-separated; default: every node): "+
		"the others exist only in the file")
}

// labNodes returns the nodes of r that --nodes names (every node without
// it), in the file's order; a name the file does not have is an error,
// before anything changes.
func labNodes(r *spec.Resolved, only []string) ([]spec.ResolvedNode, error) {
	if len(only) == 0 {
		return r.Nodes, nil
	}
	if err := lab.CheckNodes(r, only); err != nil {
		return nil, fmt.Errorf("--nodes: %w", err)
	}
	var out []spec.ResolvedNode
	for _, n := range r.Nodes {
		if slices.Contains(only, n.Name) {
			out = append(out, n)
		}
	}
	return out, nil
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

// printLab prints the lab of nodes (r's, or those --nodes named).
func printLab(w io.Writer, g *globals, files []string, r *spec.Resolved, nodes []spec.ResolvedNode, info *lab.Info) {
	var pods []spec.ResolvedPod
	for _, n := range nodes {
		pods = append(pods, r.PodsOn(n.Name)...)
	}
	if len(nodes) < len(r.Nodes) {
		fmt.Fprintf(w, "\nLab is up: %d of the file's %d nodes, %d pods.\n", len(nodes), len(r.Nodes), len(pods))
	} else {
		fmt.Fprintf(w, "\nLab is up: %d nodes, %d pods.\n", len(nodes), len(pods))
	}
	nodes = slices.Clone(nodes)
	slices.SortFunc(nodes, func(a, b spec.ResolvedNode) int { return natsort.Compare(a.Name, b.Name) })
	for _, n := range nodes {
		fmt.Fprintf(w, "  node %-10s netns %-20s %s %s  pods %s\n", n.Name, g.labNames().NodeNetns(n.Name), n.Uplink, n.Address, n.PodCIDR)
		pods := r.PodsOn(n.Name)
		slices.SortFunc(pods, func(a, b spec.ResolvedPod) int { return natsort.Compare(a.Key, b.Key) })
		for _, p := range pods {
			fmt.Fprintf(w, "    pod %-16s %-7s %-15s netns %s\n", p.Key, p.Mode, p.IP, p.Netns)
		}
	}
	if len(pods) >= 2 {
		a, b := pods[0], pods[1]
		fmt.Fprintf(w, "\nTry:  ip netns exec %s ping -c1 %s      # %s -> %s\n", a.Netns, b.IP, a.Key, b.Key)
	}
	flags := ""
	if g.prefix != "" {
		flags = " --prefix " + g.prefix
	}
	if len(nodes) > 0 {
		n := nodes[0].Name
		fmt.Fprintf(w, "Inspect a node:  netreconcile show --node-netns %s --node %s%s\n", g.labNames().NodeNetns(n), n, flags)
	}
	if len(nodes) < len(r.Nodes) {
		names := make([]string, len(nodes))
		for i, n := range nodes {
			names[i] = n.Name
		}
		flags += " --nodes " + strings.Join(names, ",")
	}
	fmt.Fprintf(w, "Remove it all:   netreconcile lab down -f %s%s\n", strings.Join(files, " -f "), flags)
	_ = info
}
