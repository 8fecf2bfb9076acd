package desired

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/netreconcile/netreconcile/bpf"
	"github.com/netreconcile/netreconcile/policy/compile"
	"github.com/netreconcile/netreconcile/spec"
)

// Map capacity. The datapath's maps have fixed sizes (spec.Resolved.Maps).
// A file whose entries for a node do not fit would fail part way through
// apply ("no space left on device") with part of a policy written, so the
// entries a node needs are counted from what the plan writes, and a file
// that does not fit is refused before any change: by plan and apply for
// their node, by validate for every node.

// ErrCapacity is wrapped by the error of a node whose entries do not fit
// its datapath maps.
var ErrCapacity = errors.New("datapath maps too small")

// MapUse is how many entries one node's datapath maps need.
type MapUse struct {
	Services, Backends, Endpoints             int
	PolicyIdentities, PolicyPods, PolicyRules int
	TopPod                                    string // the local pod with the most policy rules
	TopPodRules                               int
}

// policyUse adds what the compiled policies of a node need to u.
func (u *MapUse) policyUse(prog *compile.Program) {
	if prog == nil {
		return
	}
	u.PolicyIdentities = len(prog.Identities)
	u.PolicyPods = len(prog.Sides)
	perPod := map[string]int{}
	for _, s := range prog.Sides {
		u.PolicyRules += len(s.Rules)
		perPod[s.Pod] += len(s.Rules)
	}
	for pod, n := range perPod {
		if n > u.TopPodRules || n == u.TopPodRules && pod < u.TopPod {
			u.TopPod, u.TopPodRules = pod, n
		}
	}
}

// overflows returns one message per map of node that u does not fit.
func (u *MapUse) overflows(node string, sizes spec.MapSizes) []string {
	maps := []struct {
		name, setting string
		use, size     int
	}{
		{bpf.NrMapNrServices, "services", u.Services, sizes.Services},
		{bpf.NrMapNrBackends, "backends", u.Backends, sizes.Backends},
		{bpf.NrMapNrEndpoints, "endpoints", u.Endpoints, sizes.Endpoints},
		{bpf.NrMapNrPolIds, "policyIdentities", u.PolicyIdentities, sizes.PolicyIdentities},
		{bpf.NrMapNrPolPods, "policyPods", u.PolicyPods, sizes.PolicyPods},
		{bpf.NrMapNrPolRules, "policyRules", u.PolicyRules, sizes.PolicyRules},
	}
	var out []string
	for _, m := range maps {
		if m.use <= m.size {
			continue
		}
		msg := fmt.Sprintf("node %q needs %d entries in datapath map %s, over its size of %d", node, m.use, m.name, m.size)
		if m.setting == "policyRules" && u.TopPod != "" {
			msg += fmt.Sprintf(" (pod %s needs the most: %d)", u.TopPod, u.TopPodRules)
		}
		msg += fmt.Sprintf("; raise cluster.datapath.maps.%s (at most %d)", m.setting, spec.MaxMapSize)
		out = append(out, msg)
	}
	return out
}

// capacityError is the plan's error for a node that does not fit, or nil.
func capacityError(node string, u *MapUse, sizes spec.MapSizes) error {
	msgs := u.overflows(node, sizes)
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrCapacity, strings.Join(msgs, "; "))
}

// hasEndpoint reports whether pod p gets a fast-path endpoint entry: the
// pods with a host-side veth.
func hasEndpoint(p *spec.ResolvedPod) bool {
	return p.Mode == spec.ModeVeth || p.Mode == spec.ModeBridge
}

// serviceUse counts the service and backend entries of node n: one
// service entry per frontend of each port, a backend entry per backend
// of each.
func serviceUse(b *Shared, n *spec.ResolvedNode) (services, backendEntries int) {
	_ = b.eachFrontend(n.Name, n.Address.Addr(), func(_ *spec.ResolvedService, _ spec.ServicePort, _ frontend, bs []string) error {
		services++
		backendEntries += len(bs)
		return nil
	})
	return services, backendEntries
}

// CheckCapacity checks, offline, that every node's entries fit its
// datapath maps, as validate does after the file's own checks. pos (may
// be nil) places each error at its node in the file.
func CheckCapacity(r *spec.Resolved, pos *spec.Positions) error {
	if !WantsDatapath(r) {
		return nil
	}
	endpoints := map[string]int{}
	for i := range r.Pods {
		if hasEndpoint(&r.Pods[i]) {
			endpoints[r.Pods[i].Node]++
		}
	}
	var list []*spec.Error
	shared := NewShared(r)
	for i := range r.Nodes {
		n := &r.Nodes[i]
		services, backendEntries := serviceUse(shared, n)
		u := &MapUse{Services: services, Backends: backendEntries, Endpoints: endpoints[n.Name]}
		if len(r.Policies) > 0 {
			prog, err := shared.policies.Shape(n.Name)
			if err != nil {
				return err
			}
			u.policyUse(prog)
		}
		for _, msg := range u.overflows(n.Name, r.Maps) {
			e := pos.ErrorAt(fmt.Sprintf("nodes[%d]", n.Index), msg)
			e.Err = errors.Join(spec.ErrInvalid, ErrCapacity)
			list = append(list, e)
		}
	}
	if len(list) == 0 {
		return nil
	}
	slices.SortStableFunc(list, func(a, b *spec.Error) int { return a.Line - b.Line })
	return &spec.Errors{List: list}
}
