package spec

// The one rule for a service's backends, used by the datapath's service
// entries (reconcile) and by the policy engine's translation of a
// clusterIP (policy), so that what explain judges is what the node
// programs.

// Backend is one pod backing a port of a service, and the port it serves
// it on.
type Backend struct {
	Pod  *ResolvedPod
	Port int
}

// Selects reports whether svc sends traffic to pod p: a pod of the
// service's namespace that carries every selector label. A service
// without a selector selects none (Kubernetes leaves its endpoints to be
// managed by hand).
func (svc *ResolvedService) Selects(p *ResolvedPod) bool {
	if len(svc.Selector) == 0 || p.Namespace != svc.Namespace {
		return false
	}
	for k, v := range svc.Selector {
		if got, ok := p.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// TargetOf returns the port pod p serves service port sp on. A named
// targetPort is p's port of that name and protocol; a pod that declares
// none is no backend (ok false), as Kubernetes leaves it out of the
// endpoints. An unset targetPort (0) is the service port, as in
// Kubernetes: a file has it defaulted when resolved, a model built by
// hand may not.
func (sp ServicePort) TargetOf(p *ResolvedPod) (port int, ok bool) {
	if !sp.TargetPort.IsString {
		if sp.TargetPort.IntVal == 0 {
			return sp.Port, true
		}
		return sp.TargetPort.IntVal, true
	}
	proto := protocolOr(sp.Protocol)
	for _, cp := range p.Ports {
		if cp.Name == sp.TargetPort.StrVal && protocolOr(cp.Protocol) == proto {
			return cp.Port, true
		}
	}
	return 0, false
}

// Backends lists, in pod order, the pods that back port sp of svc (see
// Selects and TargetOf).
func (r *Resolved) Backends(svc *ResolvedService, sp ServicePort) []Backend {
	var out []Backend
	for i := range r.Pods {
		p := &r.Pods[i]
		if !svc.Selects(p) {
			continue
		}
		if port, ok := sp.TargetOf(p); ok {
			out = append(out, Backend{Pod: p, Port: port})
		}
	}
	return out
}

// BackendsIn is Backends looking only at the candidates idx (an index of
// r.Pods) gives for svc's selector: the same list, without walking every
// pod of a cluster-sized file for each service.
func (r *Resolved) BackendsIn(idx *PodIndex, svc *ResolvedService, sp ServicePort) []Backend {
	var out []Backend
	for _, i := range idx.Candidates(svc.Namespace, svc.Selector) {
		p := &r.Pods[i]
		if !svc.Selects(p) {
			continue
		}
		if port, ok := sp.TargetOf(p); ok {
			out = append(out, Backend{Pod: p, Port: port})
		}
	}
	return out
}

// protocolOr applies the Kubernetes default protocol, TCP.
func protocolOr(p string) string {
	if p == "" {
		return ProtocolTCP
	}
	return p
}
