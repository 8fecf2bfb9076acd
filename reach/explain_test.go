package reach_test

import (
	"cmp"
	"slices"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/policy"
	"github.com/netreconcile/netreconcile/reach"
	"github.com/netreconcile/netreconcile/spec"
)

// explained asks policy.Evaluate, pair by pair as explain does, for every
// connection the diff compares, and returns those whose verdict changed in
// the diff's order.
func explained(t *testing.T, old, new *spec.Resolved) []reach.Connection {
	t.Helper()
	var out []reach.Connection
	add := func(from, to string, port int, proto string, b, a bool) {
		if b != a {
			out = append(out, reach.Connection{From: from, To: to, Port: port, Protocol: proto, Before: verdict(b), After: verdict(a)})
		}
	}
	for _, src := range old.Pods {
		if !hasPod(new, src.Key) {
			continue
		}
		for _, dst := range old.Pods {
			nd := pod(new, dst.Key)
			if nd == nil {
				continue
			}
			for i, cp := range dst.Ports {
				if slices.ContainsFunc(dst.Ports[:i], func(x spec.ContainerPort) bool { return x.Port == cp.Port && x.Protocol == cp.Protocol }) {
					continue // a port declared twice (by number and name) is one connection
				}
				if !slices.ContainsFunc(nd.Ports, func(x spec.ContainerPort) bool { return x.Port == cp.Port && x.Protocol == cp.Protocol }) {
					continue
				}
				b := policy.Evaluate(old, policy.PodEndpoint(src.Key), policy.PodEndpoint(dst.Key), cp.Port, cp.Protocol)
				a := policy.Evaluate(new, policy.PodEndpoint(src.Key), policy.PodEndpoint(dst.Key), cp.Port, cp.Protocol)
				if b.Err != nil || a.Err != nil {
					t.Fatalf("evaluate: %v %v", b.Err, a.Err)
				}
				add(src.Key, dst.Key, cp.Port, cp.Protocol, b.Allowed, a.Allowed)
			}
		}
		for _, sp := range servicePorts(old, new) {
			add(src.Key, sp.svc, sp.port, sp.proto, serviceAllowed(t, old, src.Key, sp), serviceAllowed(t, new, src.Key, sp))
		}
	}
	slices.SortFunc(out, func(a, b reach.Connection) int {
		return cmp.Or(strings.Compare(a.From, b.From), strings.Compare(a.To, b.To), cmp.Compare(a.Port, b.Port), strings.Compare(a.Protocol, b.Protocol))
	})
	return out
}

type svcPort struct {
	svc   string
	port  int
	proto string
}

func servicePorts(files ...*spec.Resolved) []svcPort {
	var out []svcPort
	for _, r := range files {
		for _, s := range r.Services {
			for _, p := range s.Ports {
				if sp := (svcPort{s.Key, p.Port, p.Protocol}); !slices.Contains(out, sp) {
					out = append(out, sp)
				}
			}
		}
	}
	return out
}

// serviceAllowed is explain's ALLOWED for a service port: translated to
// each backend, every one allows it; a service the file lacks is denied.
func serviceAllowed(t *testing.T, r *spec.Resolved, src string, sp svcPort) bool {
	i := slices.IndexFunc(r.Services, func(s spec.ResolvedService) bool { return s.Key == sp.svc })
	if i < 0 {
		return false
	}
	key, backends, err := policy.ServiceBackends(r, r.Services[i].ClusterIP, sp.port, sp.proto)
	if err != nil || key != sp.svc {
		return false
	}
	if len(backends) == 0 {
		return false
	}
	for _, b := range backends {
		v := policy.Evaluate(r, policy.PodEndpoint(src), policy.PodEndpoint(b.Pod), b.Port, sp.proto)
		if v.Err != nil {
			t.Fatalf("evaluate %s -> %s: %v", src, b.Pod, v.Err)
		}
		if !v.Allowed {
			return false
		}
	}
	return true
}

func verdict(ok bool) string {
	if ok {
		return reach.Allowed
	}
	return reach.Denied
}

func pod(r *spec.Resolved, key string) *spec.ResolvedPod {
	for i := range r.Pods {
		if r.Pods[i].Key == key {
			return &r.Pods[i]
		}
	}
	return nil
}

func hasPod(r *spec.Resolved, key string) bool { return pod(r, key) != nil }
