package spec

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// TestBackendsRule: a service port's backends are the selected pods of its
// namespace; a numeric targetPort left unset (0, a model built by hand)
// is the service port, as Kubernetes defaults it; a named one is each
// pod's port of that name and protocol (TCP when unset on either side),
// and a pod without it is no backend; a service without a selector has
// none.
func TestBackendsRule(t *testing.T) {
	pod := func(name, ns string, labels map[string]string, ports ...ContainerPort) ResolvedPod {
		return ResolvedPod{Key: ns + "/" + name, Name: name, Namespace: ns, Labels: labels, Ports: ports,
			IP: netip.MustParseAddr("10.0.0.1")}
	}
	web := map[string]string{"app": "web"}
	r := &Resolved{Pods: []ResolvedPod{
		pod("a", "x", web, ContainerPort{Name: "http", Port: 8080}),
		pod("b", "x", web, ContainerPort{Name: "http", Port: 9090, Protocol: ProtocolUDP}),
		pod("c", "x", map[string]string{"app": "db"}, ContainerPort{Name: "http", Port: 7070}),
		pod("d", "y", web, ContainerPort{Name: "http", Port: 6060}),
	}}
	svc := &ResolvedService{Key: "x/web", Namespace: "x", Selector: web}
	for _, tc := range []struct {
		name string
		svc  *ResolvedService
		port ServicePort
		want string
	}{
		{"unset targetPort is the port", svc, ServicePort{Port: 80}, "x/a:80 x/b:80"},
		{"numeric targetPort", svc, ServicePort{Port: 80, TargetPort: FromInt(8000)}, "x/a:8000 x/b:8000"},
		{"named targetPort, TCP by default", svc, ServicePort{Port: 80, TargetPort: IntOrString{IsString: true, StrVal: "http"}}, "x/a:8080"},
		{"named targetPort, UDP", svc, ServicePort{Port: 80, Protocol: ProtocolUDP, TargetPort: IntOrString{IsString: true, StrVal: "http"}}, "x/b:9090"},
		{"no selector selects none", &ResolvedService{Key: "x/any", Namespace: "x"}, ServicePort{Port: 80}, ""},
	} {
		var got []string
		for _, b := range r.Backends(tc.svc, tc.port) {
			got = append(got, b.Pod.Key+":"+strconv.Itoa(b.Port))
		}
		if s := strings.Join(got, " "); s != tc.want {
			t.Errorf("%s: backends %q, want %q", tc.name, s, tc.want)
		}
	}
}
