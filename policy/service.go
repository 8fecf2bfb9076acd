package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/netreconcile/netreconcile/spec"
)

// ErrNoServicePort marks a connection to a clusterIP on a port the service
// does not expose.
var ErrNoServicePort = errors.New("service has no such port")

// Backend is where a connection to a service lands once its clusterIP is
// translated: a backend pod and the target port on it.
type Backend struct {
	Pod  string // pod key
	Port int
}

// ServiceBackends tells whether ip is a service's clusterIP and, if so,
// where port/proto on it leads. Policies judge service traffic after that
// translation, against the backend pod and target port, so explain and the
// probe evaluate each backend rather than the clusterIP. Backends are the
// pods of the service's namespace that carry every selector label (an
// empty selector selects none, as for a Kubernetes service without a
// selector); a named targetPort is looked up in each backend, and a
// backend that does not declare it is left out, as Kubernetes leaves it
// out of the endpoints. The service key is returned whenever ip is a
// clusterIP, with ErrNoServicePort when port/proto is not one of its
// ports.
func ServiceBackends(r *spec.Resolved, ip netip.Addr, port int, proto string) (string, []Backend, error) {
	ip = ip.Unmap()
	i := slices.IndexFunc(r.Services, func(s spec.ResolvedService) bool { return s.ClusterIP == ip })
	if i < 0 {
		return "", nil, nil
	}
	svc := &r.Services[i]
	j := slices.IndexFunc(svc.Ports, func(p spec.ServicePort) bool { return p.Port == port && protocolOf(p.Protocol) == proto })
	if j < 0 {
		return svc.Key, nil, fmt.Errorf("translate %s: %w: %d/%s (it has %s)", svc.Key, ErrNoServicePort, port, proto, servicePorts(svc))
	}
	sp := svc.Ports[j]
	var out []Backend
	for k := range r.Pods {
		pod := &r.Pods[k]
		if pod.Namespace != svc.Namespace || !selects(svc.Selector, pod.Labels) {
			continue
		}
		target := sp.TargetPort.IntVal
		if sp.TargetPort.IsString {
			n, ok := namedPort(pod, sp.TargetPort.StrVal, proto)
			if !ok {
				continue
			}
			target = n
		} else if target == 0 {
			target = sp.Port // spec defaults this; a hand-built model may not
		}
		out = append(out, Backend{Pod: pod.Key, Port: target})
	}
	return svc.Key, out, nil
}

// selects applies a service's equality selector.
func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func servicePorts(svc *spec.ResolvedService) string {
	if len(svc.Ports) == 0 {
		return "no ports"
	}
	s := ""
	for i, p := range svc.Ports {
		if i > 0 {
			s += ", "
		}
		s += strconv.Itoa(p.Port) + "/" + protocolOf(p.Protocol)
	}
	return s
}
