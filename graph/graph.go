// Package graph draws a topology: its nodes and their pods, its services
// and their backends, and the connections its NetworkPolicies allow, for
// `netreconcile graph` (Graphviz DOT or Mermaid). It reads only the file.
//
// A flow is drawn where a policy decides: from a pod to a pod (or to
// itself never) on a port the destination declares or a service targets on
// it, when the policies allow it and the source's egress or the
// destination's ingress is isolated. Pods that no policy isolates for
// ingress are marked "open": everyone may reach them, and drawing those
// edges would bury the ones policies grant. Verdicts are explain's
// (policy.Judge). Beyond PodLimit pods, pods are grouped by namespace, and
// a flow between namespaces counts the pod pairs it stands for.
package graph

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/netreconcile/netreconcile/internal/natsort"
	"github.com/netreconcile/netreconcile/policy"
	"github.com/netreconcile/netreconcile/reconcile/desired"
	"github.com/netreconcile/netreconcile/spec"
)

// PodLimit is the number of pods above which pods are grouped by
// namespace; MaxPods the most a graph takes (every pair is judged, and a
// picture of more says nothing).
const (
	PodLimit = 200
	MaxPods  = 2000
)

// Graph is what a picture shows.
type Graph struct {
	Nodes    []Node
	Services []Service
	Flows    []Flow
	// Grouped is set when boxes are namespaces, not pods (over PodLimit).
	Grouped bool
}

// Node is a cluster node and the boxes drawn inside it.
type Node struct {
	Name    string
	Address string
	Boxes   []Box
}

// Box is a pod, or a namespace's pods on one node when grouped.
type Box struct {
	ID    string // pod key, or namespace@node when grouped
	Label string
	// Open: no policy isolates it (or, grouped, one of its pods) for
	// ingress.
	Open bool
}

// Service is a service with the boxes its backends are in.
type Service struct {
	Key      string
	Label    string
	Backends []string // box IDs
}

// Flow is a connection the policies allow, on some ports.
type Flow struct {
	From, To string // box IDs
	Ports    []string
	Pairs    int // pod pairs it stands for (grouped only)
}

// Build computes the graph of r.
func Build(r *spec.Resolved) (*Graph, error) {
	if len(r.Pods) > MaxPods {
		return nil, fmt.Errorf("%d pods: a graph takes at most %d (use explain or diff for larger files)", len(r.Pods), MaxPods)
	}
	g := &Graph{Grouped: len(r.Pods) > PodLimit}
	j := policy.NewJudge(r)
	boxOf := make(map[string]string, len(r.Pods))
	podAt := make(map[netip.Addr]string, len(r.Pods))
	for i := range r.Pods {
		p := &r.Pods[i]
		boxOf[p.Key] = boxID(g.Grouped, p)
		podAt[p.IP] = p.Key
	}
	targets := g.services(r, boxOf, podAt)
	open := map[string]bool{}
	nodeOf := map[string]int{}
	for i, n := range r.Nodes {
		g.Nodes = append(g.Nodes, Node{Name: n.Name, Address: n.Address.Addr().String()})
		nodeOf[n.Name] = i
	}
	seen := map[string]bool{}
	for i := range r.Pods {
		p := &r.Pods[i]
		id := boxOf[p.Key]
		open[id] = open[id] || !isolated(j, p)
		if seen[id] {
			continue
		}
		seen[id] = true
		label := p.Key + "\n" + p.IP.String() + " " + p.Mode
		if g.Grouped {
			label = "namespace " + p.Namespace
		}
		n := &g.Nodes[nodeOf[p.Node]]
		n.Boxes = append(n.Boxes, Box{ID: id, Label: label})
	}
	for i := range g.Nodes {
		slices.SortFunc(g.Nodes[i].Boxes, func(a, b Box) int { return natsort.Compare(a.ID, b.ID) })
		for k := range g.Nodes[i].Boxes {
			b := &g.Nodes[i].Boxes[k]
			b.Open = open[b.ID]
		}
	}
	g.flows(r, j, boxOf, targets)
	return g, nil
}

func boxID(grouped bool, p *spec.ResolvedPod) string {
	if grouped {
		return p.Namespace + "@" + p.Node
	}
	return p.Key
}

// isolated reports whether some policy isolates p for ingress.
func isolated(j *policy.Judge, p *spec.ResolvedPod) bool {
	v := j.Evaluate(policy.AddrEndpoint(netip.MustParseAddr("0.0.0.0")), policy.PodEndpoint(p.Key), 1, spec.ProtocolTCP)
	return v.Ingress.Isolated
}

// services fills g.Services and returns, per pod, the target ports the
// services send it ("8080/TCP").
func (g *Graph) services(r *spec.Resolved, boxOf map[string]string, podAt map[netip.Addr]string) map[string][]string {
	targets := map[string][]string{}
	for i := range r.Services {
		svc := &r.Services[i]
		s := Service{Key: svc.Key, Label: "service " + svc.Key + "\n" + svc.ClusterIP.String()}
		for _, port := range svc.Ports {
			s.Label += " " + strconv.Itoa(port.Port) + "/" + port.Protocol
			for _, b := range desired.Backends(r, svc, port) {
				ap := netip.MustParseAddrPort(b)
				pod := podAt[ap.Addr()]
				targets[pod] = appendNew(targets[pod], strconv.Itoa(int(ap.Port()))+"/"+port.Protocol)
				s.Backends = appendNew(s.Backends, boxOf[pod])
			}
		}
		slices.Sort(s.Backends)
		g.Services = append(g.Services, s)
	}
	return targets
}

// flows fills g.Flows: for every ordered pair of distinct pods and every
// port of the destination, the connections policies decide and allow.
func (g *Graph) flows(r *spec.Resolved, j *policy.Judge, boxOf map[string]string, targets map[string][]string) {
	type edge struct{ from, to string }
	ports := map[edge][]string{}
	pairs := map[edge]map[[2]string]bool{}
	for d := range r.Pods {
		dst := &r.Pods[d]
		dstPorts := slices.Clone(targets[dst.Key])
		for _, cp := range dst.Ports {
			dstPorts = appendNew(dstPorts, strconv.Itoa(cp.Port)+"/"+cp.Protocol)
		}
		for s := range r.Pods {
			src := &r.Pods[s]
			if s == d {
				continue
			}
			for _, pp := range dstPorts {
				port, proto, err := policy.ParsePort(pp)
				if err != nil {
					continue
				}
				v := j.Evaluate(policy.PodEndpoint(src.Key), policy.PodEndpoint(dst.Key), port, proto)
				if !v.Allowed || (!v.Egress.Isolated && !v.Ingress.Isolated) {
					continue
				}
				e := edge{boxOf[src.Key], boxOf[dst.Key]}
				ports[e] = appendNew(ports[e], pp)
				if pairs[e] == nil {
					pairs[e] = map[[2]string]bool{}
				}
				pairs[e][[2]string{src.Key, dst.Key}] = true
			}
		}
	}
	for e, ps := range ports {
		slices.SortFunc(ps, comparePorts)
		f := Flow{From: e.from, To: e.to, Ports: ps}
		if g.Grouped {
			f.Pairs = len(pairs[e])
		}
		g.Flows = append(g.Flows, f)
	}
	slices.SortFunc(g.Flows, func(a, b Flow) int { return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To)) })
}

func appendNew(s []string, v string) []string {
	if v == "" || slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// comparePorts orders "80/TCP" before "443/TCP" before "53/UDP".
func comparePorts(a, b string) int {
	pa, xa, _ := policy.ParsePort(a)
	pb, xb, _ := policy.ParsePort(b)
	return cmp.Or(cmp.Compare(xa, xb), cmp.Compare(pa, pb))
}

func (f Flow) label() string {
	s := ""
	for i, p := range f.Ports {
		if i > 0 {
			s += ","
		}
		s += p
	}
	if f.Pairs > 0 {
		s += fmt.Sprintf(" (%d pairs)", f.Pairs)
	}
	return s
}
