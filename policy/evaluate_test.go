package policy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/spec"
)

const explainPolicies = `
  - name: deny-all
    namespace: y
    spec: {podSelector: {}, policyTypes: [Ingress]}
  - name: allow-web
    namespace: y
    spec:
      podSelector: {matchLabels: {pod: b}}
      ingress:
        - from: [{namespaceSelector: {matchLabels: {ns: x}}}]
          ports: [{port: 80, protocol: TCP}]
`

func TestVerdictString(t *testing.T) {
	r := loadModel(t, explainPolicies, nil)
	tests := []struct {
		src, dst string
		port     int
		want     string
	}{
		{"x/a", "y/b", 80, `ALLOWED x/a (10.244.1.11) -> y/b (10.244.1.22) 80/TCP
  egress of x/a: not isolated (no policy selects it)
  ingress of y/b: isolated by y/allow-web, y/deny-all; allowed by y/allow-web ingress[0] (from[0]: namespaceSelector ns=x; ports[0]: 80/TCP)
`},
		{"x/a", "y/b", 81, `DENIED x/a (10.244.1.11) -> y/b (10.244.1.22) 81/TCP
  egress of x/a: not isolated (no policy selects it)
  ingress of y/b: isolated by y/allow-web, y/deny-all; denied (no rule allows it)
    y/allow-web ingress[0]: ports do not match 81/TCP
    y/deny-all: no ingress rules: denies all ingress
`},
		{"z/c", "y/b", 80, `DENIED z/c (10.244.1.33) -> y/b (10.244.1.22) 80/TCP
  egress of z/c: not isolated (no policy selects it)
  ingress of y/b: isolated by y/allow-web, y/deny-all; denied (no rule allows it)
    y/allow-web ingress[0]: from does not match z/c (namespaceSelector ns=x does not match namespace z (labels kubernetes.io/metadata.name=z,ns=z))
    y/deny-all: no ingress rules: denies all ingress
`},
		{"y/b", "y/b", 81, `ALLOWED y/b (10.244.1.22) -> y/b (10.244.1.22) 81/TCP
  a pod can always reach itself (Kubernetes: a pod cannot block access to itself); the policies alone would deny it
  egress of y/b: not isolated (no policy selects it)
  ingress of y/b: isolated by y/allow-web, y/deny-all; denied (no rule allows it)
    y/allow-web ingress[0]: from does not match y/b (namespaceSelector ns=x does not match namespace y (labels kubernetes.io/metadata.name=y,ns=y)); ports do not match 81/TCP
    y/deny-all: no ingress rules: denies all ingress
`},
	}
	for _, tt := range tests {
		src, err := ParseEndpoint(r, tt.src)
		if err != nil {
			t.Fatal(err)
		}
		dst, err := ParseEndpoint(r, tt.dst)
		if err != nil {
			t.Fatal(err)
		}
		v := Evaluate(r, src, dst, tt.port, "tcp")
		if got := v.String(); got != tt.want {
			t.Errorf("%s -> %s %d:\ngot:\n%s\nwant:\n%s", tt.src, tt.dst, tt.port, got, tt.want)
		}
	}
}

func TestVerdictDetail(t *testing.T) {
	r := loadModel(t, `
  - name: allow-web
    namespace: y
    spec:
      podSelector: {}
      ingress:
        - from: [{podSelector: {matchLabels: {pod: nobody}}}, {namespaceSelector: {}, podSelector: {matchLabels: {pod: a}}}]
          ports: [{port: 81}, {port: serve-80-tcp}]
        - {}
  - name: out
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      policyTypes: [Egress]
      egress: [{to: [{ipBlock: {cidr: 10.244.0.0/16, except: [10.244.3.0/24]}}], ports: [{port: 79, endPort: 80}]}]
`, nil)
	v := Evaluate(r, PodEndpoint("x/a"), PodEndpoint("y/c"), 80, "TCP")
	if !v.Allowed || v.Err != nil {
		t.Fatalf("want allowed, got %v", v)
	}
	wantEgress := []string{"x/out egress[0] (to[0]: ipBlock 10.244.0.0/16 except 10.244.3.0/24; ports[0]: 79-80/TCP)"}
	wantIngress := []string{
		"y/allow-web ingress[0] (from[1]: namespaceSelector {} and podSelector pod=a; ports[1]: serve-80-tcp/TCP (80 on y/c))",
		"y/allow-web ingress[1] (from: any; ports: any)",
	}
	if got := refStrings(v.Egress.AllowedBy); !equal(got, wantEgress) {
		t.Errorf("egress allowed by %q, want %q", got, wantEgress)
	}
	if got := refStrings(v.Ingress.AllowedBy); !equal(got, wantIngress) {
		t.Errorf("ingress allowed by %q, want %q", got, wantIngress)
	}
	if !v.Egress.Isolated || !v.Ingress.Isolated || v.Self {
		t.Errorf("isolation: egress %v ingress %v self %v", v.Egress.Isolated, v.Ingress.Isolated, v.Self)
	}
}

func refStrings(refs []RuleRef) []string {
	var out []string
	for _, r := range refs {
		out = append(out, r.String())
	}
	return out
}

func equal(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

// Addresses outside the cluster: no policy isolates them, only ipBlock
// peers match them, and named ports have nothing to resolve against.
func TestExternalEndpoints(t *testing.T) {
	r := loadModel(t, `
  - name: web
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: a}}
      ingress:
        - from: [{ipBlock: {cidr: 192.0.2.0/24, except: [192.0.2.128/25]}}]
        - from: [{namespaceSelector: {}}]
  - name: out
    namespace: x
    spec:
      podSelector: {matchLabels: {pod: b}}
      policyTypes: [Egress]
      egress:
        - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.244.0.0/16]}}]
          ports: [{port: 443}]
        - to: [{ipBlock: {cidr: 0.0.0.0/0}}]
          ports: [{port: serve-80-tcp}]
`, nil)
	ext := func(s string) Endpoint { return AddrEndpoint(netip.MustParseAddr(s)) }
	tests := []struct {
		name     string
		src, dst Endpoint
		port     int
		want     bool
	}{
		{"ipBlock admits an outside address", ext("192.0.2.10"), PodEndpoint("x/a"), 80, true},
		{"except carves it out", ext("192.0.2.200"), PodEndpoint("x/a"), 80, false},
		{"namespaceSelector {} does not admit outside addresses", ext("198.51.100.1"), PodEndpoint("x/a"), 80, false},
		{"unisolated pod accepts anyone", ext("198.51.100.1"), PodEndpoint("x/c"), 80, true},
		{"egress to the world on 443", PodEndpoint("x/b"), ext("203.0.113.5"), 443, true},
		{"egress to the world on 80: named port resolves on no pod", PodEndpoint("x/b"), ext("203.0.113.5"), 80, false},
		{"egress to a pod on its named port", PodEndpoint("x/b"), PodEndpoint("z/c"), 80, true},
		{"egress to a pod on 443: pod CIDR is excepted", PodEndpoint("x/b"), PodEndpoint("z/c"), 443, false},
		{"a pod's address is that pod", ext("10.244.2.12"), ext("10.244.1.33"), 80, true},
		{"a pod's address is that pod, denied", ext("10.244.2.12"), ext("10.244.1.33"), 443, false},
		{"outside to outside: nothing applies", ext("192.0.2.1"), ext("192.0.2.2"), 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Evaluate(r, tt.src, tt.dst, tt.port, "TCP")
			if v.Err != nil {
				t.Fatal(v.Err)
			}
			if v.Allowed != tt.want {
				t.Errorf("allowed = %v, want %v\n%s", v.Allowed, tt.want, v)
			}
		})
	}

	v := Evaluate(r, ext("10.244.2.12"), ext("192.0.2.1"), 80, "TCP")
	if v.Src.Pod != "x/b" || v.Dst.Pod != "" || v.Ingress.Enforced || !v.Egress.Enforced {
		t.Errorf("resolution: src %+v dst %+v ingress enforced %v egress enforced %v", v.Src, v.Dst, v.Ingress.Enforced, v.Egress.Enforced)
	}
	if got, want := v.Ingress.String(), "ingress of 192.0.2.1: outside the cluster (no policy applies)"; got != want {
		t.Errorf("ingress side = %q, want %q", got, want)
	}
}

// Kubernetes always lets a pod's own node reach it; other nodes are
// ordinary addresses.
func TestOwnNode(t *testing.T) {
	r := loadModel(t, `
  - name: deny-all
    namespace: x
    spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
`, nil)
	node1 := AddrEndpoint(netip.MustParseAddr("172.31.1.2"))
	node2 := AddrEndpoint(netip.MustParseAddr("172.31.1.3"))
	gw1 := AddrEndpoint(netip.MustParseAddr("10.244.1.1"))
	tests := []struct {
		name     string
		src, dst Endpoint
		want     bool
	}{
		{"own node to pod", node1, PodEndpoint("x/a"), true},
		{"own node's pod CIDR gateway to pod", gw1, PodEndpoint("x/a"), true},
		{"pod to own node", PodEndpoint("x/a"), node1, true},
		{"other node to pod", node2, PodEndpoint("x/a"), false},
		{"pod to other node", PodEndpoint("x/a"), node2, false},
		{"node-2 to its own pod", node2, PodEndpoint("x/b"), true},
	}
	for _, tt := range tests {
		v := Evaluate(r, tt.src, tt.dst, 80, "TCP")
		if v.Allowed != tt.want {
			t.Errorf("%s: allowed = %v, want %v\n%s", tt.name, v.Allowed, tt.want, v)
		}
	}
	v := Evaluate(r, node1, PodEndpoint("x/a"), 80, "TCP")
	if !v.Ingress.Node || !v.Ingress.Isolated {
		t.Errorf("want ingress isolated and allowed as own node: %+v", v.Ingress)
	}
	if !strings.Contains(v.String(), "its own node is always allowed") {
		t.Errorf("explanation does not mention the node:\n%s", v)
	}
}

func TestSelf(t *testing.T) {
	r := loadModel(t, `
  - name: deny-all
    namespace: x
    spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
`, nil)
	// By key and by address: the kernel sees the latter.
	for _, src := range []Endpoint{PodEndpoint("x/a"), AddrEndpoint(netip.MustParseAddr("10.244.1.11"))} {
		v := Evaluate(r, src, PodEndpoint("x/a"), 80, "UDP")
		if !v.Allowed || !v.Self || v.Egress.Allowed || v.Ingress.Allowed {
			t.Errorf("self: allowed %v self %v egress %v ingress %v", v.Allowed, v.Self, v.Egress.Allowed, v.Ingress.Allowed)
		}
	}
}

// A model built by hand (no spec defaulting): empty protocols mean TCP,
// and a namespace missing from Namespaces still has its name label.
func TestHandBuiltModel(t *testing.T) {
	r := &spec.Resolved{
		Pods: []spec.ResolvedPod{
			{Key: "app/web", Name: "web", Namespace: "app", IP: netip.MustParseAddr("10.0.0.2"), Labels: map[string]string{"role": "web"},
				Ports: []spec.ContainerPort{{Name: "http", Port: 8080}}},
			{Key: "ops/probe", Name: "probe", Namespace: "ops", IP: netip.MustParseAddr("10.0.0.3")},
		},
		Policies: []spec.ResolvedPolicy{{
			Key: "app/web", Name: "web", Namespace: "app",
			Spec: spec.PolicySpec{
				PodSelector: spec.LabelSelector{MatchLabels: map[string]string{"role": "web"}},
				PolicyTypes: []string{spec.PolicyIngress},
				Ingress: []spec.PolicyIngressRule{{
					From:  []spec.PolicyPeer{{NamespaceSelector: &spec.LabelSelector{MatchLabels: map[string]string{spec.MetadataNameLabel: "ops"}}}},
					Ports: []spec.PolicyPort{{Port: &spec.IntOrString{IsString: true, StrVal: "http"}}},
				}},
			},
		}},
	}
	if v := Evaluate(r, PodEndpoint("ops/probe"), PodEndpoint("app/web"), 8080, "TCP"); !v.Allowed {
		t.Errorf("want allowed:\n%s", v)
	}
	if v := Evaluate(r, PodEndpoint("ops/probe"), PodEndpoint("app/web"), 8080, "UDP"); v.Allowed {
		t.Errorf("want denied on UDP:\n%s", v)
	}
}

func TestEvaluateErrors(t *testing.T) {
	r := loadModel(t, "", nil)
	tests := []struct {
		name     string
		src, dst Endpoint
		port     int
		proto    string
		want     error
	}{
		{"unknown source", PodEndpoint("x/q"), PodEndpoint("x/a"), 80, "TCP", ErrUnknownPod},
		{"unknown destination", PodEndpoint("x/a"), PodEndpoint("w/a"), 80, "TCP", ErrUnknownPod},
		{"empty endpoint", Endpoint{}, PodEndpoint("x/a"), 80, "TCP", ErrBadEndpoint},
		{"port 0", PodEndpoint("x/a"), PodEndpoint("x/b"), 0, "TCP", ErrBadPort},
		{"port too big", PodEndpoint("x/a"), PodEndpoint("x/b"), 65536, "TCP", ErrBadPort},
		{"ICMP", PodEndpoint("x/a"), PodEndpoint("x/b"), 80, "ICMP", ErrBadProtocol},
	}
	for _, tt := range tests {
		v := Evaluate(r, tt.src, tt.dst, tt.port, tt.proto)
		if !errors.Is(v.Err, tt.want) || v.Allowed {
			t.Errorf("%s: err %v allowed %v, want %v", tt.name, v.Err, v.Allowed, tt.want)
		}
	}
}

func TestParseEndpoint(t *testing.T) {
	r := loadModel(t, "", nil)
	tests := []struct {
		in      string
		want    Endpoint
		wantErr error
	}{
		{"x/a", Endpoint{Pod: "x/a"}, nil},
		{"10.244.1.22", Endpoint{Pod: "y/b", IP: netip.MustParseAddr("10.244.1.22")}, nil},
		{"192.0.2.7", Endpoint{IP: netip.MustParseAddr("192.0.2.7")}, nil},
		{"2001:db8::1", Endpoint{IP: netip.MustParseAddr("2001:db8::1")}, nil},
		{"x/nope", Endpoint{}, ErrUnknownPod},
		{"a", Endpoint{}, ErrBadEndpoint},
		{"x/a/b", Endpoint{}, ErrBadEndpoint},
		{"/a", Endpoint{}, ErrBadEndpoint},
		{"192.0.2.0/24", Endpoint{}, ErrBadEndpoint},
	}
	for _, tt := range tests {
		got, err := ParseEndpoint(r, tt.in)
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("ParseEndpoint(%q) = %+v, %v; want %+v, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParsePort(t *testing.T) {
	tests := []struct {
		in      string
		port    int
		proto   string
		wantErr error
	}{
		{"80/TCP", 80, "TCP", nil},
		{"53/udp", 53, "UDP", nil},
		{"443", 443, "TCP", nil},
		{"9/SCTP", 9, "SCTP", nil},
		{"0/TCP", 0, "", ErrBadPort},
		{"70000", 0, "", ErrBadPort},
		{"http/TCP", 0, "", ErrBadPort},
		{"", 0, "", ErrBadPort},
		{"80/ICMP", 0, "", ErrBadProtocol},
		{"80/", 0, "", ErrBadProtocol},
	}
	for _, tt := range tests {
		port, proto, err := ParsePort(tt.in)
		if !errors.Is(err, tt.wantErr) || port != tt.port || proto != tt.proto {
			t.Errorf("ParsePort(%q) = %d, %q, %v; want %d, %q, %v", tt.in, port, proto, err, tt.port, tt.proto, tt.wantErr)
		}
	}
}
