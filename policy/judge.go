package policy

import "github.com/netreconcile/netreconcile/spec"

// Judge is Evaluate with the model indexed once, for callers that ask many
// questions of one file (the reachability diff asks millions at cluster
// scale, and Evaluate would index 50,000 pods for each). Its answers are
// Evaluate's: the same evaluator decides both.
type Judge struct{ e *evaluator }

// NewJudge indexes r. r must not change while the Judge is in use.
func NewJudge(r *spec.Resolved) *Judge { return &Judge{e: newEvaluator(r)} }

// Evaluate is policy.Evaluate against the Judge's model.
func (j *Judge) Evaluate(src, dst Endpoint, port int, proto string) Verdict {
	return j.e.evaluate(src, dst, port, proto)
}
