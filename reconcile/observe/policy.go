package observe

import (
	"slices"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/policy/compile"
	"github.com/netreconcile/netreconcile/reconcile/internal/dpconv"
	"github.com/netreconcile/netreconcile/state"
)

// observePolicy reads the policy maps of dp: one dump per map.
func (o *observer) observePolicy(dp *datapath.Datapath) error {
	ids, err := dp.PolicyIdentities()
	if err != nil {
		return err
	}
	for p, id := range ids {
		obj := &state.PolicyIdentity{Prefix: p, ID: id}
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
		pp.Rules = append(pp.Rules, compile.Rule{Remote: ru.Remote, Proto: dpconv.ProtoName(ru.Proto), Port: ru.Port,
			PortBits: ru.PortBits}.String())
	}
	for _, pp := range sides {
		slices.Sort(pp.Rules)
		o.dp.put(pp)
	}
	rev, err := dp.PolicyRevision()
	if err != nil {
		return err
	}
	obj := &state.PolicyRevision{PinDir: o.cfg.BPFFS, Revision: rev}
	o.dp.put(obj)
	return nil
}
