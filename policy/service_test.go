package policy

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/netreconcile/netreconcile/internal/policymodel"
	"github.com/netreconcile/netreconcile/spec"
)

func loadWithServices(t *testing.T, policies, services string) *spec.Resolved {
	t.Helper()
	src := modelYAML(policies, nil, policymodel.Options{ServiceCIDR: "10.96.0.0/16", Extra: "services:\n" + services})
	r, err := spec.LoadBytes("model.yaml", []byte(src))
	if err != nil {
		t.Fatalf("load model: %v\n%s", err, src)
	}
	return r
}

func TestServiceBackends(t *testing.T) {
	r := loadWithServices(t, `
  - name: a-to-y-b-81
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      policyTypes: [Egress]
      egress: [{to: [{namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: b}}}], ports: [{port: 81}]}]
`, `
  - {name: web, namespace: y, clusterIP: 10.96.0.10, selector: {pod: b}, ports: [{name: http, port: 80, targetPort: serve-81-tcp}, {name: dns, port: 53, protocol: UDP, targetPort: 80}]}
  - {name: ab, namespace: y, clusterIP: 10.96.0.11, selector: {}, ports: [{port: 80}]}
`)
	web := netip.MustParseAddr("10.96.0.10")
	svc, backends, err := ServiceBackends(r, web, 80, "TCP")
	if err != nil || svc != "y/web" || !slices.Equal(backends, []Backend{{Pod: "y/b", Port: 81}}) {
		t.Fatalf("80/TCP: %q %v %v", svc, backends, err)
	}
	// Egress to a service's backend: judged on the backend pod and the
	// target port, not on the clusterIP.
	if v := Evaluate(r, PodEndpoint("x/a"), PodEndpoint(backends[0].Pod), backends[0].Port, "TCP"); !v.Allowed {
		t.Errorf("x/a -> y/web's backend: want allowed\n%s", v)
	}
	if v := Evaluate(r, PodEndpoint("x/a"), AddrEndpoint(web), 80, "TCP"); v.Allowed {
		t.Errorf("x/a -> the clusterIP itself is not a backend and must not be allowed\n%s", v)
	}

	if _, backends, err = ServiceBackends(r, web, 53, "UDP"); err != nil || !slices.Equal(backends, []Backend{{Pod: "y/b", Port: 80}}) {
		t.Errorf("53/UDP: %v %v", backends, err)
	}
	if svc, _, err = ServiceBackends(r, web, 53, "TCP"); svc != "y/web" || !errors.Is(err, ErrNoServicePort) {
		t.Errorf("53/TCP: %q %v, want ErrNoServicePort", svc, err)
	}
	if svc, backends, err = ServiceBackends(r, netip.MustParseAddr("10.96.0.11"), 80, "TCP"); svc != "y/ab" || err != nil || len(backends) != 0 {
		t.Errorf("empty selector: %q %v %v", svc, backends, err)
	}
	if svc, _, err = ServiceBackends(r, netip.MustParseAddr("10.244.1.11"), 80, "TCP"); svc != "" || err != nil {
		t.Errorf("a pod address is no service: %q %v", svc, err)
	}
}
