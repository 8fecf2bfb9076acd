package desired

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strings"

	"github.com/netreconcile/netreconcile/bpf"
	"github.com/netreconcile/netreconcile/policy/compile"
	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
	"golang.org/x/sync/errgroup"
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

// serviceCount is every node's service and backend entries, counted once
// for the file: frontends differ from node to node only by the NodePort
// entries (a node without an address has none) and by the backends of
// Local frontends (the node's own). Counting each node's by walking every
// service was most of validate's time on a 1000-node file.
type serviceCount struct {
	services, backends int // every node's entries but its NodePort ones
	nodePorts          int // NodePort entries, on a node with an address
	nodePortBackends   int // their backends where the policy is Cluster
	// Backends of Local frontends, by node: of the entries every node
	// has, and of its NodePort entries.
	local, localNodePort map[string]int
}

// countServices counts the entries of every service of sh's file.
func countServices(sh *Shared) *serviceCount {
	c := &serviceCount{local: map[string]int{}, localNodePort: map[string]int{}}
	nodesOf := map[netip.Addr][]string{} // the nodes with a pod at each address
	for i := range sh.r.Pods {
		p := &sh.r.Pods[i]
		if !slices.Contains(nodesOf[p.IP], p.Node) {
			nodesOf[p.IP] = append(nodesOf[p.IP], p.Node)
		}
	}
	addLocal := func(to map[string]int, bs []string) {
		for _, b := range bs {
			if a, ok := backendAddr(b); ok {
				for _, node := range nodesOf[a] {
					to[node]++
				}
			}
		}
	}
	for i := range sh.r.Services {
		svc := &sh.r.Services[i]
		for _, port := range svc.Ports {
			all := sh.Backends(svc, port)
			// Any valid address: only whether the node has one counts.
			for _, f := range frontends(svc, port, netip.IPv4Unspecified()) {
				switch {
				case f.kind == state.FrontendNodePort && f.local:
					c.nodePorts++
					addLocal(c.localNodePort, all)
				case f.kind == state.FrontendNodePort:
					c.nodePorts++
					c.nodePortBackends += len(all)
				case f.local:
					c.services++
					addLocal(c.local, all)
				default:
					c.services++
					c.backends += len(all)
				}
			}
		}
	}
	return c
}

// of returns the service and backend entries of node n.
func (c *serviceCount) of(n *spec.ResolvedNode) (services, backends int) {
	services, backends = c.services, c.backends+c.local[n.Name]
	if n.Address.Addr().IsValid() {
		services += c.nodePorts
		backends += c.nodePortBackends + c.localNodePort[n.Name]
	}
	return services, backends
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
	shared := NewShared(r)
	svcs := countServices(shared)
	// Each node is counted on its own, on every core: compile.Cluster
	// shares between them what they have in common and is safe for
	// concurrent use.
	uses := make([]*MapUse, len(r.Nodes))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range r.Nodes {
		g.Go(func() error {
			n := &r.Nodes[i]
			services, backendEntries := svcs.of(n)
			uses[i] = &MapUse{Services: services, Backends: backendEntries, Endpoints: endpoints[n.Name]}
			if len(r.Policies) == 0 {
				return nil
			}
			prog, err := shared.policies.Shape(n.Name)
			uses[i].policyUse(prog)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	var list []*spec.Error
	for i := range r.Nodes {
		n := &r.Nodes[i]
		for _, msg := range uses[i].overflows(n.Name, r.Maps) {
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
