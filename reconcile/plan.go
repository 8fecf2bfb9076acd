package reconcile

import (
	"github.com/netreconcile/netreconcile/reconcile/plan"
	"github.com/netreconcile/netreconcile/state"
)

// The plan lives in package plan; these names keep the engine's callers
// working.
type (
	// Plan is the ordered list of changes that converges a node.
	Plan = plan.Plan
	// Change is one planned change to one object.
	Change = plan.Change
	// Action is what a change does to one object.
	Action = plan.Action
	// Summary counts a plan's changes.
	Summary = plan.Summary
	// Adoption is a pod using a namespace that netreconcile did not create.
	Adoption = plan.Adoption
)

// Actions, as in package plan.
const (
	Create  = plan.Create
	Update  = plan.Update
	Delete  = plan.Delete
	Replace = plan.Replace
)

// PlanFormatVersion versions the JSON shape of a Plan.
const PlanFormatVersion = plan.FormatVersion

// Errors of Diff.
var (
	ErrClash        = plan.ErrClash
	ErrForeignNetns = plan.ErrForeignNetns
)

// Diff compares desired with observed and returns the plan (plan.Diff).
func Diff(node string, desired *state.State, obs *Observed) (*Plan, error) {
	return plan.Diff(node, desired, obs)
}
