package policy

import "github.com/netreconcile/netreconcile/spec"

// Judge is Evaluate with the model indexed once, for callers that ask many
// questions of one file (the reachability diff asks millions at cluster
// scale, and Evaluate would index 50,000 pods for each). Its answers are
// Evaluate's: the same evaluator decides both.
type Judge struct{ full, quiet *evaluator }

// NewJudge indexes r. r must not change while the Judge is in use, and a
// Judge is for one goroutine at a time.
func NewJudge(r *spec.Resolved) *Judge {
	e := newEvaluator(r)
	q := *e
	q.quiet = true
	return &Judge{full: e, quiet: &q}
}

// Evaluate is policy.Evaluate against the Judge's model.
func (j *Judge) Evaluate(src, dst Endpoint, port int, proto string) Verdict {
	return j.full.evaluate(src, dst, port, proto)
}

// Allowed is Evaluate(...).Allowed, without the texts that say why (and
// false when the question cannot be answered): faster when only the
// verdict is wanted.
func (j *Judge) Allowed(src, dst Endpoint, port int, proto string) bool {
	v := j.quiet.evaluate(src, dst, port, proto)
	return v.Err == nil && v.Allowed
}
