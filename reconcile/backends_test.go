package reconcile_test

import (
	"net/netip"
	"slices"
	"strconv"
	"testing"

	"github.com/netreconcile/netreconcile/policy"
	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
)

// TestServiceBackendsAgree: the datapath's service entries and the policy
// engine's translation of a clusterIP name the same backends, also where
// they used to differ: a targetPort left unset (0) in a model built by
// hand is the service port for both (the datapath used to leave every
// pod out).
func TestServiceBackendsAgree(t *testing.T) {
	web := map[string]string{"app": "web"}
	r := &spec.Resolved{Pods: []spec.ResolvedPod{
		{Key: "x/a", Name: "a", Namespace: "x", IP: netip.MustParseAddr("10.244.1.10"), Labels: web,
			Ports: []spec.ContainerPort{{Name: "http", Port: 8080}}},
		{Key: "x/b", Name: "b", Namespace: "x", IP: netip.MustParseAddr("10.244.1.20"), Labels: web},
	}, Services: []spec.ResolvedService{{Key: "x/web", Namespace: "x", ClusterIP: netip.MustParseAddr("10.96.0.10"),
		Selector: web, Ports: []spec.ServicePort{
			{Port: 80, Protocol: spec.ProtocolTCP},
			{Port: 81, Protocol: spec.ProtocolTCP, TargetPort: spec.IntOrString{IsString: true, StrVal: "http"}},
		}}}}
	ip := map[string]string{"x/a": "10.244.1.10", "x/b": "10.244.1.20"}
	svc := &r.Services[0]
	for _, port := range svc.Ports {
		dp := reconcile.Backends(r, svc, port)
		_, bs, err := policy.ServiceBackends(r, svc.ClusterIP, port.Port, port.Protocol)
		if err != nil {
			t.Fatal(err)
		}
		pol := []string{}
		for _, b := range bs {
			pol = append(pol, ip[b.Pod]+":"+strconv.Itoa(b.Port))
		}
		slices.Sort(pol)
		if !slices.Equal(dp, pol) {
			t.Errorf("port %d: datapath backends %v, policy backends %v", port.Port, dp, pol)
		}
	}
	if got := reconcile.Backends(r, svc, svc.Ports[0]); !slices.Equal(got, []string{"10.244.1.10:80", "10.244.1.20:80"}) {
		t.Errorf("unset targetPort: backends %v, want both pods on port 80", got)
	}
}
