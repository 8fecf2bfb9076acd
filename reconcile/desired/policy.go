package desired

import (
	"slices"

	"github.com/netreconcile/netreconcile/policy/compile"
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
