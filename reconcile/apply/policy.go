package apply

import (
	"fmt"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/policy/compile"
	"github.com/netreconcile/netreconcile/reconcile/internal/dpconv"
	"github.com/netreconcile/netreconcile/reconcile/plan"
	"github.com/netreconcile/netreconcile/state"
)

// policyStep applies one step of a policy object's change: for a pod's
// side, the writes that policyBlock gave the step.
func policyStep(dp *datapath.Datapath, c plan.Change) error {
	switch c.Action {
	case plan.Delete:
		switch o := c.Observed.(type) {
		case *state.PolicyIdentity:
			return called("DeletePolicyIdentity", dp.DeletePolicyIdentity(o.Prefix))
		case *state.PodPolicy:
			return applySide(dp, c, o)
		case *state.PolicyRevision:
			return nil // the maps go with the datapath
		}
	default:
		switch o := c.Desired.(type) {
		case *state.PolicyIdentity:
			return called("SetPolicyIdentity", dp.SetPolicyIdentity(o.Prefix, o.ID))
		case *state.PodPolicy:
			return applySide(dp, c, o)
		case *state.PolicyRevision:
			return called("SetPolicyRevision", dp.SetPolicyRevision(o.Revision))
		}
	}
	return fmt.Errorf("unknown policy object %T", c.Desired)
}

// applySide performs the writes of step c to side p (a step that is not
// one part of the change does all of them).
func applySide(dp *datapath.Datapath, c plan.Change, p *state.PodPolicy) error {
	s, err := policySide(p)
	if err != nil {
		return err
	}
	for _, w := range c.PolicyWrites() {
		switch w.Op {
		case plan.OpIsolate:
			err = called("SetPolicyIsolation", dp.SetPolicyIsolation(s, true))
		case plan.OpUnisolate:
			err = called("DeletePolicyIsolation", dp.DeletePolicyIsolation(s))
		case plan.OpAddRule, plan.OpDeleteRule:
			var r datapath.PolicyRule
			if r, err = toPolicyRule(s, w.Rule); err == nil && w.Op == plan.OpAddRule {
				err = called("AddPolicyRule", dp.AddPolicyRule(r))
			} else if err == nil {
				err = called("DeletePolicyRule", dp.DeletePolicyRule(r))
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", w, err)
		}
	}
	return nil
}

func policySide(p *state.PodPolicy) (datapath.PolicySide, error) {
	dir, err := datapath.ParsePolicyDir(p.Direction)
	if err != nil {
		return datapath.PolicySide{}, err
	}
	return datapath.PolicySide{IP: p.IP, Dir: dir}, nil
}

// toPolicyRule is rule text of side s as the datapath's rule map holds it.
func toPolicyRule(s datapath.PolicySide, text string) (datapath.PolicyRule, error) {
	r, err := compile.ParseRule(text)
	if err != nil {
		return datapath.PolicyRule{}, err
	}
	return datapath.PolicyRule{Local: s.IP, Dir: s.Dir, Remote: r.Remote, Proto: dpconv.ProtoNumber(r.Proto),
		Port: r.Port, PortBits: r.PortBits}, nil
}
