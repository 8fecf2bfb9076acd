package policy

import (
	"errors"
	"net/netip"
	"testing"
)

// Every pod of y is ingress-isolated by a policy whose one rule allows
// every peer on every port; z/a is egress-isolated to DNS.
const portlessPolicies = `
  - name: all-ingress
    namespace: y
    spec:
      podSelector: {}
      policyTypes: [Ingress]
      ingress: [{}]
  - name: egress-dns
    namespace: z
    spec:
      podSelector: {matchLabels: {pod: a}}
      policyTypes: [Egress]
      egress:
        - ports: [{port: 53, protocol: UDP}]
`

// TestPortlessProtocols: ICMP and numbered protocols follow the datapath's
// rule: denied wherever the source's egress or the destination's ingress
// is isolated, even by a rule that allows every port, save between a pod
// and its own node; allowed otherwise.
func TestPortlessProtocols(t *testing.T) {
	r := loadModel(t, portlessPolicies, nil)
	tests := []struct {
		src, dst string
		port     int
		proto    string
		allowed  bool
	}{
		{"x/a", "x/b", 0, "ICMP", true},         // nobody isolated
		{"x/a", "y/b", 80, "TCP", true},         // the rule allows every port...
		{"x/a", "y/b", 0, "ICMP", false},        // ...but cannot name ICMP
		{"z/a", "x/a", 0, "ICMP", false},        // egress-isolated source
		{"x/a", "z/a", 0, "ICMP", true},         // z/a is not ingress-isolated
		{"y/b", "y/b", 0, "ICMP", true},         // itself
		{"172.31.1.2", "y/b", 0, "ICMP", true},  // y/b's own node
		{"172.31.1.3", "y/b", 0, "ICMP", false}, // another node
		{"10.244.1.1", "y/b", 0, "ICMP", true},  // its node's gateway
		{"192.0.2.1", "x/a", 0, "ICMP", true},   // outside, to a pod not isolated
		{"192.0.2.1", "y/a", 0, "ICMP", false},  // outside, to an isolated pod
		{"x/a", "192.0.2.1", 0, "icmp", true},
		{"z/a", "192.0.2.1", 0, "PROTO/47", false},
		{"x/a", "y/b", 0, "PROTO/47", false},
		{"x/a", "x/b", 0, "proto/47", true},
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
		v := Evaluate(r, src, dst, tt.port, tt.proto)
		if v.Err != nil || v.Allowed != tt.allowed {
			t.Errorf("%s -> %s %d/%s: allowed %v (err %v), want %v:\n%s", tt.src, tt.dst, tt.port, tt.proto,
				v.Allowed, v.Err, tt.allowed, v)
		}
	}
}

func TestPortlessVerdictString(t *testing.T) {
	r := loadModel(t, portlessPolicies, nil)
	tests := []struct {
		src, dst, proto, want string
	}{
		{"x/a", "y/b", "ICMP", `DENIED x/a (10.244.1.11) -> y/b (10.244.1.22) ICMP
  ICMP has no ports: denied where a pod is isolated; ICMP errors of allowed connections pass
  egress of x/a: not isolated (no policy selects it)
  ingress of y/b: isolated by y/all-ingress; denied (no rule allows it)
    y/all-ingress: no rule can allow ICMP (it has no ports)
`},
		{"172.31.1.2", "y/b", "PROTO/47", `ALLOWED 172.31.1.2 -> y/b (10.244.1.22) PROTO/47
  protocol 47 has no ports: denied where a pod is isolated
  egress of 172.31.1.2: outside the cluster (no policy applies)
  ingress of y/b: isolated by y/all-ingress; no rule allows it, but traffic between a pod and its own node is always allowed
    y/all-ingress: no rule can allow PROTO/47 (it has no ports)
`},
		{"x/a", "x/b", "PROTO/1", `ALLOWED x/a (10.244.1.11) -> x/b (10.244.2.12) ICMP
  ICMP has no ports: denied where a pod is isolated; ICMP errors of allowed connections pass
  egress of x/a: not isolated (no policy selects it)
  ingress of x/b: not isolated (no policy selects it)
`},
	}
	for _, tt := range tests {
		src, _ := ParseEndpoint(r, tt.src)
		dst, _ := ParseEndpoint(r, tt.dst)
		if got := Evaluate(r, src, dst, 0, tt.proto).String(); got != tt.want {
			t.Errorf("%s -> %s %s:\ngot:\n%s\nwant:\n%s", tt.src, tt.dst, tt.proto, got, tt.want)
		}
	}
}

func TestParsePortless(t *testing.T) {
	tests := []struct {
		in      string
		proto   string
		wantErr error
	}{
		{"icmp", "ICMP", nil},
		{"ICMP", "ICMP", nil},
		{"proto/47", "PROTO/47", nil},
		{"PROTO/0", "PROTO/0", nil},
		{"proto/1", "ICMP", nil},
		{"proto/6", "", ErrBadProtocol},
		{"proto/17", "", ErrBadProtocol},
		{"proto/132", "", ErrBadProtocol},
		{"proto/256", "", ErrBadProtocol},
		{"proto/-1", "", ErrBadProtocol},
		{"proto/gre", "", ErrBadProtocol},
		{"80/ICMP", "", ErrBadProtocol},
	}
	for _, tt := range tests {
		port, proto, err := ParsePort(tt.in)
		if !errors.Is(err, tt.wantErr) || port != 0 || proto != tt.proto {
			t.Errorf("ParsePort(%q) = %d, %q, %v; want 0, %q, %v", tt.in, port, proto, err, tt.proto, tt.wantErr)
		}
	}
	a := AddrEndpoint(netip.MustParseAddr("192.0.2.1"))
	r := loadModel(t, "", nil)
	for _, tt := range []struct {
		port  int
		proto string
	}{{80, "ICMP"}, {0, "PROTO/6"}, {0, "PROTO/300"}} {
		if v := Evaluate(r, a, a, tt.port, tt.proto); !errors.Is(v.Err, ErrBadProtocol) {
			t.Errorf("Evaluate %d/%s: err %v, want %v", tt.port, tt.proto, v.Err, ErrBadProtocol)
		}
	}
}
