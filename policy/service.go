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
// probe evaluate each backend rather than the clusterIP. Backends follow
// the rule the datapath's service entries follow (spec.Resolved.Backends).
// The service key is returned whenever ip is a
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
	var out []Backend
	for _, b := range r.Backends(svc, svc.Ports[j]) {
		out = append(out, Backend{Pod: b.Pod.Key, Port: b.Port})
	}
	return svc.Key, out, nil
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
