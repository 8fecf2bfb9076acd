package reconcile

import (
	"fmt"
	"slices"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/policy/compile"
	"github.com/netreconcile/netreconcile/reconcile/plan"
	"github.com/netreconcile/netreconcile/state"
)

// Network policy as state objects. With a datapath, the node holds what
// package policy/compile derives from the file for it: identity entries,
// one PodPolicy per isolated side of a local pod, and the revision. Their
// owners are not "pod/..." so that apply runs them in its serial part, in
// the order policyBlock gives them (policyorder.go): no side is ever more
// open than the old or the new policies make it, and the revision comes
// after every entry it stands for, so tracked connections are judged
// again only against complete maps.

const policyOwner = "policy"

// desiredPolicy adds the compiled policy objects of the node to s.
func desiredPolicy(cfg *Config, prog *compile.Program, s *state.State) error {
	s.Grow(state.KindPolicyIdentity, len(prog.Identities))
	s.Grow(state.KindPodPolicy, len(prog.Sides))
	for _, id := range prog.Identities {
		if err := s.Add(&state.PolicyIdentity{Prefix: id.Prefix, ID: id.ID, OwnerK: policyOwner}); err != nil {
			return err
		}
	}
	for _, side := range prog.Sides {
		obj := &state.PodPolicy{IP: side.IP, Direction: side.Dir, Isolated: true, Rules: make([]string, 0, len(side.Rules)),
			OwnerK: policyOwner + "/" + side.Pod}
		for _, ru := range side.Rules {
			obj.Rules = append(obj.Rules, ru.String())
		}
		slices.Sort(obj.Rules)
		if err := s.Add(obj); err != nil {
			return err
		}
	}
	return s.Add(&state.PolicyRevision{PinDir: cfg.BPFFS, Revision: prog.Revision, OwnerK: policyOwner})
}

// observePolicy reads the policy maps of dp: one dump per map.
func (o *observer) observePolicy(dp *datapath.Datapath, desired *state.State) error {
	ids, err := dp.PolicyIdentities()
	if err != nil {
		return err
	}
	for p, id := range ids {
		obj := &state.PolicyIdentity{Prefix: p, ID: id}
		obj.OwnerK = ownerIn(desired, obj)
		o.dp.put(obj)
	}
	sides := map[datapath.PolicySide]*state.PodPolicy{}
	side := func(s datapath.PolicySide) *state.PodPolicy {
		if pp, ok := sides[s]; ok {
			return pp
		}
		pp := &state.PodPolicy{IP: s.IP, Direction: s.Dir.String(), Rules: []string{}}
		sides[s] = pp
		return pp
	}
	iso, err := dp.PolicyIsolation()
	if err != nil {
		return err
	}
	for s, isolated := range iso {
		side(s).Isolated = isolated
	}
	rules, err := dp.PolicyRules()
	if err != nil {
		return err
	}
	for _, ru := range rules {
		pp := side(datapath.PolicySide{IP: ru.Local, Dir: ru.Dir})
		pp.Rules = append(pp.Rules, compile.Rule{Remote: ru.Remote, Proto: protoName(ru.Proto), Port: ru.Port,
			PortBits: ru.PortBits}.String())
	}
	for _, pp := range sides {
		slices.Sort(pp.Rules)
		pp.OwnerK = ownerIn(desired, pp)
		o.dp.put(pp)
	}
	rev, err := dp.PolicyRevision()
	if err != nil {
		return err
	}
	obj := &state.PolicyRevision{PinDir: o.cfg.BPFFS, Revision: rev}
	obj.OwnerK = ownerIn(desired, obj)
	o.dp.put(obj)
	return nil
}

// policyStep applies one step of a policy object's change: for a pod's
// side, the writes that policyBlock gave the step.
func policyStep(dp *datapath.Datapath, c Change) error {
	switch c.Action {
	case Delete:
		switch o := c.Observed.(type) {
		case *state.PolicyIdentity:
			return dp.DeletePolicyIdentity(o.Prefix)
		case *state.PodPolicy:
			return applySide(dp, c, o)
		case *state.PolicyRevision:
			return nil // the maps go with the datapath
		}
	default:
		switch o := c.Desired.(type) {
		case *state.PolicyIdentity:
			return dp.SetPolicyIdentity(o.Prefix, o.ID)
		case *state.PodPolicy:
			return applySide(dp, c, o)
		case *state.PolicyRevision:
			return dp.SetPolicyRevision(o.Revision)
		}
	}
	return fmt.Errorf("unknown policy object %T", c.Desired)
}

// applySide performs the writes of step c to side p (a step that is not
// one part of the change does all of them).
func applySide(dp *datapath.Datapath, c Change, p *state.PodPolicy) error {
	s, err := policySide(p)
	if err != nil {
		return err
	}
	for _, w := range c.PolicyWrites() {
		switch w.Op {
		case plan.OpIsolate:
			err = dp.SetPolicyIsolation(s, true)
		case plan.OpUnisolate:
			err = dp.DeletePolicyIsolation(s)
		case plan.OpAddRule, plan.OpDeleteRule:
			var r datapath.PolicyRule
			if r, err = toPolicyRule(s, w.Rule); err == nil && w.Op == plan.OpAddRule {
				err = dp.AddPolicyRule(r)
			} else if err == nil {
				err = dp.DeletePolicyRule(r)
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
	return datapath.PolicyRule{Local: s.IP, Dir: s.Dir, Remote: r.Remote, Proto: protoNumbers[r.Proto],
		Port: r.Port, PortBits: r.PortBits}, nil
}
