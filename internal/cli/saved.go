package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/internal/statedir"
	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
)

// maxSavedPlan bounds a saved plan file: the plan, the observation it was
// made from and the topology text.
const maxSavedPlan = 512 << 20

// writeSavedPlan writes plan --out's file: res planned node from the
// topology text data (file names it), by this binary.
func writeSavedPlan(path, version, file string, data []byte, e *reconcile.Engine, res *reconcile.Result) error {
	digest, err := reconcile.ObservedDigest(res.Observed)
	if err != nil {
		return err
	}
	sp := reconcile.SavedPlan{
		Version: reconcile.SavedPlanVersion, Binary: version, Node: e.Cfg.Node,
		NodeNetns: e.Cfg.NodeNetns, BPFFS: e.Cfg.BPFFS,
		File: file, FileSHA256: reconcile.FileDigest(data), Topology: string(data),
		ObservedSHA256: digest, Observed: res.Observed, Plan: res.Plan,
	}
	b, err := json.MarshalIndent(&sp, "", " ")
	if err != nil {
		return fmt.Errorf("encode saved plan: %w", err)
	}
	// A topology may be private to its node's operators, as terraform's
	// plan files are.
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write saved plan: %w", err)
	}
	return nil
}

// readSavedPlan reads plan --out's file and checks what can be checked
// without the node: its version, the binary's, and the topology's digest.
func readSavedPlan(path, version string) (*reconcile.SavedPlan, *spec.Resolved, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read saved plan: %w", err)
	}
	defer f.Close()
	b, err := statedir.ReadAll(f, path, maxSavedPlan)
	if err != nil {
		return nil, nil, fmt.Errorf("read saved plan: %w", err)
	}
	var sp reconcile.SavedPlan
	if err := json.Unmarshal(b, &sp); err != nil {
		return nil, nil, fmt.Errorf("saved plan %s: %w", path, err)
	}
	switch {
	case sp.Version == "":
		return nil, nil, fmt.Errorf("saved plan %s: no saved_plan_version: not a file of plan --out", path)
	case major(sp.Version) != major(reconcile.SavedPlanVersion):
		return nil, nil, fmt.Errorf("saved plan %s: version %s; this netreconcile reads %s", path, sp.Version, reconcile.SavedPlanVersion)
	case sp.Binary != version:
		return nil, nil, fmt.Errorf("saved plan %s was made by netreconcile %s; this is %s: plan again", path, sp.Binary, version)
	case sp.Observed == nil || sp.Observed.Owned == nil || sp.Plan == nil:
		return nil, nil, fmt.Errorf("saved plan %s: no observed state or plan", path)
	case reconcile.FileDigest([]byte(sp.Topology)) != sp.FileSHA256:
		return nil, nil, fmt.Errorf("saved plan %s: the topology does not match its digest (file_sha256): the file was edited", path)
	}
	r, err := spec.LoadBytes(sp.File, []byte(sp.Topology))
	if err != nil {
		return nil, nil, fmt.Errorf("saved plan %s: %w", path, err)
	}
	return &sp, r, nil
}

func major(v string) string { m, _, _ := strings.Cut(v, "."); return m }

// savedGlobals returns g with the node namespace and pin directory the
// saved plan was made with; flags given that name others are an error.
func savedGlobals(cmd *cobra.Command, g *globals, sp *reconcile.SavedPlan) (*globals, error) {
	flags := cmd.Flags()
	for _, c := range []struct{ flag, val, want string }{
		{"node", flags.Lookup("node").Value.String(), sp.Node},
		{"node-netns", g.nodeNetns, sp.NodeNetns},
		{"bpffs", g.bpffs, sp.BPFFS},
	} {
		if flags.Changed(c.flag) && c.val != c.want {
			return nil, fmt.Errorf("--%s %q: the saved plan is for %q", c.flag, c.val, c.want)
		}
	}
	sg := *g
	sg.nodeNetns, sg.bpffs = sp.NodeNetns, sp.BPFFS
	return &sg, nil
}

// applySaved applies the saved plan at path: under the node's lock it
// plans again from the saved topology and applies that plan only when
// the node and the plan are what they were (reconcile.CheckSaved).
func applySaved(cmd *cobra.Command, g *globals, version, path string, dryRun bool) error {
	sp, r, err := readSavedPlan(path, version)
	if err != nil {
		return err
	}
	sg, err := savedGlobals(cmd, g, sp)
	if err != nil {
		return err
	}
	e := sg.engine(sp.Node)
	check := func(res *reconcile.Result) error { return reconcile.CheckSaved(sp, res) }
	w := cmd.OutOrStdout()
	if dryRun {
		res, err := e.Plan(r, nil)
		if err != nil {
			return err
		}
		if err := check(res); err != nil {
			return err
		}
		res.Plan.WriteText(w)
		return nil
	}
	unlock, err := g.lockNode(cmd, sp.Node)
	if err != nil {
		return err
	}
	defer unlock()
	e.Cache = reconcile.NewCache()
	res, err := e.ApplyChecked(cmd.Context(), r, check)
	if res != nil {
		printApplied(w, sp.Node, res, err)
	}
	return err
}

// savedNote tells where plan --out wrote the plan.
func savedNote(w io.Writer, path string) {
	fmt.Fprintf(w, "\nSaved the plan to %s. To apply exactly it: netreconcile apply %s\n", path, path)
}
