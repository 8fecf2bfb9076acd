package spec

import (
	"cmp"
	"hash/fnv"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Ways into a service besides its clusterIP (issue 17): nodePorts on
// every node's address and externalIPs. Their checks span services (one
// nodePort or external IP:port serves one service), so they run after
// every service is resolved, in file order, so that the later of two
// claims is the one reported.

// NodePortCeiling is the first port a nodePort may not use: 32768-60999
// are the source ports of masqueraded connections and 61001-65535 those
// of the datapath's source NAT; a nodePort among them would take their
// replies, which arrive on the uplink, for new NodePort connections.
const NodePortCeiling = 32768

// nodePortRange parses cluster.nodePortRange into r (defaults when
// absent); on error r's bounds stay 0 and nodePorts are not checked
// against them.
func (c *checker) nodePortRange(s string, r *Resolved) {
	const path = "cluster.nodePortRange"
	if s == "" {
		r.NodePortMin, r.NodePortMax = DefaultNodePortMin, DefaultNodePortMax
		return
	}
	lo, hi, found := strings.Cut(s, "-")
	minP, err1 := strconv.Atoi(lo)
	maxP, err2 := strconv.Atoi(hi)
	switch {
	case !found || err1 != nil || err2 != nil || strings.ContainsAny(s, "+ "):
		c.add(path, `invalid range %q: want "MIN-MAX", e.g. "30000-32767"`, s)
	case minP < 1 || maxP > 65535:
		c.add(path, "ports must be between 1 and 65535, got %q", s)
	case minP > maxP:
		c.add(path, "MIN %d is greater than MAX %d", minP, maxP)
	case maxP >= NodePortCeiling:
		c.add(path, "%d-%d reaches into 32768-65535, the source ports of masqueraded (32768-60999) and source-NATed (61001-65535) connections, whose replies would be taken for NodePort traffic; keep MAX below 32768", minP, maxP)
	default:
		r.NodePortMin, r.NodePortMax = minP, maxP
	}
}

// serviceFrontends checks one service's nodePorts, external IPs and
// externalTrafficPolicy on their own.
func (c *checker) serviceFrontends(path string, s Service, rs *ResolvedService, r *Resolved) {
	if s.ExternalTrafficPolicy != "" && rs.Type != ServiceNodePort && len(s.ExternalIPs) == 0 {
		// As Kubernetes: the policy is about traffic from outside,
		// which only NodePort and externalIPs let in.
		c.add(join(path, "externalTrafficPolicy"), "only for type NodePort or a service with externalIPs (this service is %s without externalIPs)", rs.Type)
	}
	for i, sp := range rs.Ports { // protocols defaulted
		np := join(index(join(path, "ports"), i), "nodePort")
		switch {
		case sp.NodePort == 0:
		case rs.Type != ServiceNodePort:
			c.add(np, "nodePort needs type NodePort (this service is %s)", rs.Type)
		case r.NodePortMax == 0: // the range is reported already
		case sp.NodePort < r.NodePortMin || sp.NodePort > r.NodePortMax:
			c.add(np, "nodePort %d is outside cluster.nodePortRange %d-%d", sp.NodePort, r.NodePortMin, r.NodePortMax)
		case sp.NodePort == r.VXLANPort && sp.Protocol == ProtocolUDP:
			c.add(np, "nodePort %d/UDP is cluster.routing.vxlan.port", sp.NodePort)
		}
	}
	firstAt := map[netip.Addr]int{}
	for i, e := range s.ExternalIPs {
		ep := index(join(path, "externalIPs"), i)
		ip, ok := c.addr(ep, e)
		if !ok {
			continue
		}
		if j, dup := firstAt[ip]; dup {
			c.add(ep, "duplicate external IP %s (first at externalIPs[%d])", ip, j)
			continue
		}
		firstAt[ip] = i
		if msg := externalIPProblem(ip, r); msg != "" {
			c.add(ep, "%s", msg)
			continue
		}
		rs.ExternalIPs = append(rs.ExternalIPs, ip)
	}
}

// externalIPProblem says why ip cannot be an external IP, or returns "".
func externalIPProblem(ip netip.Addr, r *Resolved) string {
	if r.PodCIDR.IsValid() && r.PodCIDR.Contains(ip) {
		return ip.String() + " lies inside cluster.podCIDR " + r.PodCIDR.String()
	}
	if r.ServiceCIDR.IsValid() && r.ServiceCIDR.Contains(ip) {
		return ip.String() + " lies inside cluster.serviceCIDR " + r.ServiceCIDR.String()
	}
	for _, n := range r.Nodes {
		if n.Address.IsValid() && n.Address.Addr() == ip {
			return ip.String() + " is node \"" + n.Name + "\"'s underlay address (type NodePort serves node addresses)"
		}
	}
	if rs, why := reservedRange(netip.PrefixFrom(ip, 32)); why != "" {
		return ip.String() + " lies in " + rs.String() + " (" + why + ")"
	}
	return ""
}

// claim is who first took a nodePort or an external IP:port: a port of
// a service.
type claim struct{ svc, port int }

type portProto struct {
	port  int
	proto string
}

type ipPortProto struct {
	ip netip.Addr
	portProto
}

// frontends checks that no nodePort and no external IP:port serves two
// services (or two ports of one), then allocates the nodePorts left 0.
// r.Services[i] is t.Services[i] here (they are sorted later).
func (c *checker) frontends(t *Topology, r *Resolved) {
	nodePortAt := map[portProto]claim{}
	extAt := map[ipPortProto]claim{}
	for i, rs := range r.Services {
		path := index("services", i)
		for j, sp := range rs.Ports {
			if rs.Type == ServiceNodePort && sp.NodePort != 0 {
				k := portProto{sp.NodePort, sp.Protocol}
				if first, dup := nodePortAt[k]; dup {
					c.add(join(index(join(path, "ports"), j), "nodePort"), "nodePort %d/%s is already used by %s (service %q)",
						sp.NodePort, sp.Protocol, c.ref(index(join(index("services", first.svc), "ports"), first.port)), r.Services[first.svc].Key)
				} else {
					nodePortAt[k] = claim{i, j}
				}
			}
			for _, ip := range rs.ExternalIPs {
				k := ipPortProto{ip, portProto{sp.Port, sp.Protocol}}
				if first, dup := extAt[k]; dup && first.svc != i {
					c.add(index(join(path, "externalIPs"), slices.Index(t.Services[i].ExternalIPs, ip.String())),
						"%s port %d/%s is already served by %s (service %q)", ip, sp.Port, sp.Protocol, c.ref(index("services", first.svc)), r.Services[first.svc].Key)
				} else if !dup {
					extAt[k] = claim{i, j}
				}
			}
		}
	}
	if r.NodePortMax != 0 {
		c.allocateNodePorts(r, nodePortAt)
	}
}

// allocateNodePorts gives every port of a NodePort service without a
// nodePort one from the range, the same for the same file on every run:
// it starts at a hash of the service's key and port, and probes upward
// (wrapping) past ports taken. Explicit nodePorts are taken first, and
// services go in key order, so that the order of the file does not
// matter; a new service can move another's port only when it takes the
// port that one would have had, which writing nodePort avoids.
func (c *checker) allocateNodePorts(r *Resolved, taken map[portProto]claim) {
	order := make([]int, len(r.Services))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(r.Services[a].Key, r.Services[b].Key) })
	taken[portProto{r.VXLANPort, ProtocolUDP}] = claim{-1, -1}
	size := r.NodePortMax - r.NodePortMin + 1
	for _, i := range order {
		rs := &r.Services[i]
		if rs.Type != ServiceNodePort {
			continue
		}
		for j := range rs.Ports {
			sp := &rs.Ports[j]
			if sp.NodePort != 0 {
				continue
			}
			h := fnv.New32a()
			h.Write([]byte(rs.Key + "/" + cmp.Or(sp.Name, strconv.Itoa(sp.Port)) + "/" + sp.Protocol))
			start := int(h.Sum32() % uint32(size))
			for n := range size {
				k := portProto{r.NodePortMin + (start+n)%size, sp.Protocol}
				if _, used := taken[k]; !used {
					sp.NodePort = k.port
					taken[k] = claim{i, j}
					break
				}
			}
			if sp.NodePort == 0 {
				c.add(index(join(index("services", i), "ports"), j), "no free nodePort left for %s in cluster.nodePortRange %d-%d",
					sp.Protocol, r.NodePortMin, r.NodePortMax)
			}
		}
	}
}
