package reach

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
)

// NodePlan is the summary of the plan that moving one node from the old
// file to the new one means (reconcile.PlanBetween).
type NodePlan struct {
	Node    string            `json:"node"`
	Summary reconcile.Summary `json:"summary"`
}

// Empty reports whether the node's plan has no change.
func (n NodePlan) Empty() bool { return n.Summary == reconcile.Summary{} }

// NodePlanLimit is the most nodes (of both files together) whose plans
// the diff computes. Every node's desired state holds every service's
// backends and every policy's entries, so planning a node costs as much
// as the cluster is large: at 1000 nodes and 50,000 pods it is over a
// second of CPU per node. Beyond the limit the diff leaves node plans out
// and says so (NodePlansSkipped).
const NodePlanLimit = 100

// nodeNames are the nodes of either file, old's first in file order then
// those only new has.
func nodeNames(old, new *spec.Resolved) []string {
	var names []string
	seen := map[string]bool{}
	for _, r := range []*spec.Resolved{old, new} {
		for _, n := range r.Nodes {
			if !seen[n.Name] {
				seen[n.Name] = true
				names = append(names, n.Name)
			}
		}
	}
	return names
}

// skipNodePlans says why the node plans are left out, or "".
func skipNodePlans(names []string) string {
	if len(names) <= NodePlanLimit {
		return ""
	}
	return fmt.Sprintf("%d nodes, over the %d whose plans diff computes", len(names), NodePlanLimit)
}

// nodePlans plans each of names, on every CPU.
func nodePlans(old, new *spec.Resolved, names []string) ([]NodePlan, error) {
	out := make([]NodePlan, len(names))
	errs := make([]error, len(names))
	next := make(chan int)
	var wg sync.WaitGroup
	between := reconcile.NewBetween(old, new) // shared by the nodes of each file
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				p, err := between.Plan(names[i])
				if err != nil {
					errs[i] = err
					continue
				}
				out[i] = NodePlan{Node: names[i], Summary: p.Summary}
			}
		})
	}
	for i := range names {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
