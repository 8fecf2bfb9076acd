package desired

import (
	"net/netip"
	"strings"

	"github.com/netreconcile/netreconcile/spec"
	"github.com/netreconcile/netreconcile/state"
)

// Frontends. Every way into a service is a datapath entry of its own,
// keyed by address, port and protocol, as kube-proxy programs a rule per
// way in:
//   - clusterIP:port on every node; with internalTrafficPolicy Local only
//     this node's backends (a node without one refuses, as a service
//     without backends does);
//   - <this node's address>:nodePort for type NodePort: each node
//     programs its own address only;
//   - <externalIP>:port for each of the service's externalIPs.
//
// The last two follow externalTrafficPolicy: Cluster lists every backend
// and source-NATs connections from outside the node to the node's address
// (so that replies from another node come back through this one); Local
// lists this node's backends only and keeps the client's address. Local
// applies to every client of the entry, pods and the node included (a
// simplification: kube-proxy sends those to any backend).

// frontend is one entry of a service port: where it listens, and whether
// its backends are this node's only.
type frontend struct {
	kind  string // state.Frontend*
	ip    netip.Addr
	port  int
	local bool
	snat  bool
}

// frontends lists the entries of one port of svc on the node whose
// underlay address is nodeAddr.
func frontends(svc *spec.ResolvedService, port spec.ServicePort, nodeAddr netip.Addr) []frontend {
	out := []frontend{{kind: state.FrontendClusterIP, ip: svc.ClusterIP, port: port.Port,
		local: svc.InternalTrafficPolicy == spec.TrafficLocal}}
	external := svc.ExternalTrafficPolicy == spec.TrafficLocal
	if svc.Type == spec.ServiceNodePort && port.NodePort != 0 && nodeAddr.IsValid() {
		out = append(out, frontend{kind: state.FrontendNodePort, ip: nodeAddr, port: port.NodePort,
			local: external, snat: !external})
	}
	for _, ip := range svc.ExternalIPs {
		out = append(out, frontend{kind: state.FrontendExternalIP, ip: ip, port: port.Port, local: external, snat: !external})
	}
	return out
}

// localOnly keeps the backends ("ip:port") whose address is one of
// local's.
func localOnly(bs []string, local map[netip.Addr]bool) []string {
	out := make([]string, 0, len(bs))
	for _, b := range bs {
		if a, ok := backendAddr(b); ok && local[a] {
			out = append(out, b)
		}
	}
	return out
}

// backendAddr is the address of backend b ("ip:port") as a Local
// frontend tells the node's own: an IPv6 backend ("[ip]:port") is none.
func backendAddr(b string) (netip.Addr, bool) {
	ip, _, _ := strings.Cut(b, ":")
	a, err := netip.ParseAddr(ip)
	return a, err == nil
}

// localPods is the set of addresses of the pods on node.
func localPods(r *spec.Resolved, node string) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for i := range r.Pods {
		if r.Pods[i].Node == node {
			out[r.Pods[i].IP] = true
		}
	}
	return out
}

// affinityTimeout is svc's affinity timeout in seconds (0: the default).
func affinityTimeout(svc *spec.ResolvedService) uint32 {
	if svc.SessionAffinity != "ClientIP" || svc.AffinityTimeout <= 0 || svc.AffinityTimeout == state.DefaultAffinityTimeout {
		return 0
	}
	return uint32(svc.AffinityTimeout)
}
