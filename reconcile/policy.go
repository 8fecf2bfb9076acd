package reconcile

import (
	"fmt"
	"slices"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/policy/compile"
	"github.com/netreconcile/netreconcile/state"
)

// Network policy as state objects. With a datapath, the node holds what
// package policy/compile derives from the file for it: identity entries,
// one PodPolicy per isolated side of a local pod, and the revision. Their
// owners are not "pod/..." so that apply runs them in its serial part, in
// kind order, which puts the revision after every entry it stands for:
// tracked connections are judged again only against complete maps, and an
// allowed connection never sees a half-applied change.

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

// policyStep applies one change to a policy object.
func policyStep(dp *datapath.Datapath, c Change) error {
	switch c.Action {
	case Delete:
		switch o := c.Observed.(type) {
		case *state.PolicyIdentity:
			return dp.DeletePolicyIdentity(o.Prefix)
		case *state.PodPolicy:
			// Not isolated first: the side allows everything while its
			// rules go.
			s, err := policySide(o)
			if err != nil {
				return err
			}
			if err := dp.DeletePolicyIsolation(s); err != nil {
				return err
			}
			return applyRules(dp, s, o.Rules, nil)
		case *state.PolicyRevision:
			return nil // the maps go with the datapath
		}
	default:
		switch o := c.Desired.(type) {
		case *state.PolicyIdentity:
			return dp.SetPolicyIdentity(o.Prefix, o.ID)
		case *state.PodPolicy:
			s, err := policySide(o)
			if err != nil {
				return err
			}
			var have []string
			if obs, ok := c.Observed.(*state.PodPolicy); ok {
				have = obs.Rules
			}
			// New rules before the side is isolated, old rules after
			// it stops allowing them: a new connection that both the
			// old and the new policies allow is never refused.
			if err := applyRules(dp, s, have, o.Rules, addOnly); err != nil {
				return err
			}
			if err := dp.SetPolicyIsolation(s, o.Isolated); err != nil {
				return err
			}
			return applyRules(dp, s, have, o.Rules, deleteOnly)
		case *state.PolicyRevision:
			return dp.SetPolicyRevision(o.Revision)
		}
	}
	return fmt.Errorf("unknown policy object %T", c.Desired)
}

func policySide(p *state.PodPolicy) (datapath.PolicySide, error) {
	dir, err := datapath.ParsePolicyDir(p.Direction)
	if err != nil {
		return datapath.PolicySide{}, err
	}
	return datapath.PolicySide{IP: p.IP, Dir: dir}, nil
}

type ruleOps int

const (
	addOnly ruleOps = 1 << iota
	deleteOnly
)

// applyRules writes the rules of want that have lacks and deletes those of
// have that want lacks (ops limits it to one of the two).
func applyRules(dp *datapath.Datapath, s datapath.PolicySide, have, want []string, ops ...ruleOps) error {
	do := addOnly | deleteOnly
	if len(ops) > 0 {
		do = ops[0]
	}
	toRule := func(text string) (datapath.PolicyRule, error) {
		r, err := compile.ParseRule(text)
		if err != nil {
			return datapath.PolicyRule{}, err
		}
		return datapath.PolicyRule{Local: s.IP, Dir: s.Dir, Remote: r.Remote, Proto: protoNumbers[r.Proto],
			Port: r.Port, PortBits: r.PortBits}, nil
	}
	set := func(xs []string) map[string]bool {
		m := make(map[string]bool, len(xs))
		for _, x := range xs {
			m[x] = true
		}
		return m
	}
	if do&addOnly != 0 {
		had := set(have)
		for _, text := range want {
			if had[text] {
				continue
			}
			r, err := toRule(text)
			if err != nil {
				return err
			}
			if err := dp.AddPolicyRule(r); err != nil {
				return err
			}
		}
	}
	if do&deleteOnly != 0 {
		wanted := set(want)
		for _, text := range have {
			if wanted[text] {
				continue
			}
			r, err := toRule(text)
			if err != nil {
				return err
			}
			if err := dp.DeletePolicyRule(r); err != nil {
				return err
			}
		}
	}
	return nil
}
