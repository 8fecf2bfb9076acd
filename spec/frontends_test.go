package spec

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// frontendsDoc is a valid file with one NodePort service and one with an
// external IP; the tests below break it one line at a time.
const frontendsDoc = `apiVersion: netreconcile/v1
kind: Topology
cluster:
  podCIDR: 10.244.0.0/16
  serviceCIDR: 10.96.0.0/16
  egress: {nonMasqueradeCIDRs: [192.168.0.0/16]}
nodes:
  - {name: a, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}
  - {name: b, address: 172.31.1.3/24, podCIDR: 10.244.2.0/24}
services:
  - name: web
    clusterIP: 10.96.0.10
    type: NodePort
    externalTrafficPolicy: Local
    ports:
      - {name: http, port: 80, nodePort: 30080}
      - {name: dns, port: 53, protocol: UDP}
  - name: ext
    clusterIP: 10.96.0.11
    externalIPs: [198.51.100.20]
    sessionAffinity: ClientIP
    sessionAffinityConfig: {clientIP: {timeoutSeconds: 5}}
    ports: [{port: 80}]
`

func TestFrontendsDocIsValid(t *testing.T) {
	r, err := LoadBytes("f.yaml", []byte(frontendsDoc))
	if err != nil {
		t.Fatal(err)
	}
	web, ext := &r.Services[1], &r.Services[0] // sorted by key
	if web == nil || ext == nil {
		t.Fatal("services missing")
	}
	if web.Type != ServiceNodePort || web.ExternalTrafficPolicy != TrafficLocal || web.InternalTrafficPolicy != TrafficCluster ||
		web.Ports[0].NodePort != 30080 || web.AffinityTimeout != DefaultAffinityTimeout {
		t.Errorf("web: %+v", web)
	}
	if np := web.Ports[1].NodePort; np < DefaultNodePortMin || np > DefaultNodePortMax {
		t.Errorf("allocated nodePort %d outside the default range", np)
	}
	if ext.Type != ServiceClusterIP || !slices.Equal(ext.ExternalIPs, []netip.Addr{netip.MustParseAddr("198.51.100.20")}) ||
		ext.AffinityTimeout != 5 || ext.Ports[0].NodePort != 0 {
		t.Errorf("ext: %+v", ext)
	}
	if !r.Masquerade || !slices.Equal(r.NonMasqueradeCIDRs, []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")}) ||
		r.NodePortMin != 30000 || r.NodePortMax != 32767 {
		t.Errorf("cluster: masquerade %v %v range %d-%d", r.Masquerade, r.NonMasqueradeCIDRs, r.NodePortMin, r.NodePortMax)
	}
}

// frontendCases replace one piece of frontendsDoc (and more pairs) and
// want exactly these errors.
var frontendCases = []struct {
	name, old, new string
	want           []string
	more           []string // further old, new pairs
}{
	{"nodePort out of range", "nodePort: 30080", "nodePort: 29999",
		[]string{"f.yaml:16:42: services[0].ports[0].nodePort: nodePort 29999 is outside cluster.nodePortRange 30000-32767"}, nil},
	{"nodePort out of a custom range", "  egress:", "  nodePortRange: 31000-31999\n  egress:",
		[]string{"f.yaml:17:42: services[0].ports[0].nodePort: nodePort 30080 is outside cluster.nodePortRange 31000-31999"}, nil},
	{"nodePort on ClusterIP", "    type: NodePort\n    externalTrafficPolicy: Local\n", "",
		[]string{"f.yaml:14:42: services[0].ports[0].nodePort: nodePort needs type NodePort (this service is ClusterIP)"}, nil},
	{"nodePort twice for one protocol", "ports: [{port: 80}]", "type: NodePort\n    ports: [{port: 80, nodePort: 30080}]",
		[]string{`f.yaml:24:34: services[1].ports[0].nodePort: nodePort 30080/TCP is already used by services[0].ports[0] (service "default/web")`}, nil},
	{"nodePort twice in one service", "protocol: UDP}", "protocol: TCP, nodePort: 30080}",
		[]string{`f.yaml:17:56: services[0].ports[1].nodePort: nodePort 30080/TCP is already used by services[0].ports[0] (service "default/web")`}, nil},
	{"nodePort is the VXLAN port", "protocol: UDP}", "protocol: UDP, nodePort: 30500}",
		[]string{"f.yaml:18:56: services[0].ports[1].nodePort: nodePort 30500/UDP is cluster.routing.vxlan.port"},
		[]string{"  egress:", "  routing: {vxlan: {port: 30500}}\n  egress:"}},
	{"externalTrafficPolicy on ClusterIP", "type: NodePort\n    externalTrafficPolicy: Local\n    ports:\n      - {name: http, port: 80, nodePort: 30080}",
		"externalTrafficPolicy: Local\n    ports:\n      - {name: http, port: 80}",
		[]string{"f.yaml:13:28: services[0].externalTrafficPolicy: only for type NodePort or a service with externalIPs (this service is ClusterIP without externalIPs)"}, nil},
	{"nonMasqueradeCIDR not a CIDR", "[192.168.0.0/16]", "[192.168.0.0/16, 10.0.0.1, 172.16.0.1/12, fd00::/8]",
		[]string{
			`f.yaml:6:49: cluster.egress.nonMasqueradeCIDRs[1]: invalid CIDR "10.0.0.1": missing the prefix length (e.g. /24)`,
			"f.yaml:6:59: cluster.egress.nonMasqueradeCIDRs[2]: 172.16.0.1/12 has host bits set; did you mean 172.16.0.0/12?",
			"f.yaml:6:74: cluster.egress.nonMasqueradeCIDRs[3]: fd00::/8 is IPv6; only IPv4 is supported",
		}, nil},
	{"nodePortRange syntax", "  egress:", "  nodePortRange: 30000..32767\n  egress:",
		[]string{`f.yaml:6:18: cluster.nodePortRange: invalid range "30000..32767": want "MIN-MAX", e.g. "30000-32767"`}, nil},
	{"nodePortRange bounds", "  egress:", "  nodePortRange: 0-100\n  egress:",
		[]string{`f.yaml:6:18: cluster.nodePortRange: ports must be between 1 and 65535, got "0-100"`}, nil},
	{"nodePortRange order", "  egress:", "  nodePortRange: 31000-30000\n  egress:",
		[]string{"f.yaml:6:18: cluster.nodePortRange: MIN 31000 is greater than MAX 30000"}, nil},
	{"nodePortRange ephemeral", "  egress:", "  nodePortRange: 30000-40000\n  egress:",
		[]string{"f.yaml:6:18: cluster.nodePortRange: 30000-40000 reaches into 32768-65535, the source ports of masqueraded (32768-60999) and source-NATed (61001-65535) connections, whose replies would be taken for NodePort traffic; keep MAX below 32768"}, nil},
	{"timeout zero", "timeoutSeconds: 5", "timeoutSeconds: 0",
		[]string{"f.yaml:22:56: services[1].sessionAffinityConfig.clientIP.timeoutSeconds: must be between 1 and 86400 seconds, got 0"}, nil},
	{"timeout over a day", "timeoutSeconds: 5", "timeoutSeconds: 86401",
		[]string{"f.yaml:22:56: services[1].sessionAffinityConfig.clientIP.timeoutSeconds: must be between 1 and 86400 seconds, got 86401"}, nil},
	{"timeout without ClientIP", "    sessionAffinity: ClientIP\n", "",
		[]string{"f.yaml:21:28: services[1].sessionAffinityConfig: only with sessionAffinity: ClientIP (this service's is None)"}, nil},
	{"externalIP not IPv4", "[198.51.100.20]", "[2001:db8::1]",
		[]string{"f.yaml:20:19: services[1].externalIPs[0]: 2001:db8::1 is not an IPv4 address; only IPv4 is supported"}, nil},
	{"externalIP with prefix", "[198.51.100.20]", "[198.51.100.20/32]",
		[]string{`f.yaml:20:19: services[1].externalIPs[0]: "198.51.100.20/32" must be a bare address, without a prefix length`}, nil},
	{"externalIP in podCIDR", "[198.51.100.20]", "[10.244.9.9]",
		[]string{"f.yaml:20:19: services[1].externalIPs[0]: 10.244.9.9 lies inside cluster.podCIDR 10.244.0.0/16"}, nil},
	{"externalIP in serviceCIDR", "[198.51.100.20]", "[10.96.0.10]",
		[]string{"f.yaml:20:19: services[1].externalIPs[0]: 10.96.0.10 lies inside cluster.serviceCIDR 10.96.0.0/16"}, nil},
	{"externalIP a node address", "[198.51.100.20]", "[172.31.1.3]",
		[]string{`f.yaml:20:19: services[1].externalIPs[0]: 172.31.1.3 is node "b"'s underlay address (type NodePort serves node addresses)`}, nil},
	{"externalIP loopback", "[198.51.100.20]", "[127.0.0.1]",
		[]string{"f.yaml:20:19: services[1].externalIPs[0]: 127.0.0.1 lies in 127.0.0.0/8 (loopback)"}, nil},
	{"externalIP twice in a service", "[198.51.100.20]", "[198.51.100.20, 198.51.100.20]",
		[]string{"f.yaml:20:34: services[1].externalIPs[1]: duplicate external IP 198.51.100.20 (first at externalIPs[0])"}, nil},
	{"externalIP port taken", "    type: NodePort\n", "    type: NodePort\n    externalIPs: [198.51.100.20]\n",
		[]string{`f.yaml:21:19: services[1].externalIPs[0]: 198.51.100.20 port 80/TCP is already served by services[0] (service "default/web")`}, nil},
	{"internalTrafficPolicy", "    type: NodePort\n", "    type: NodePort\n    internalTrafficPolicy: local\n",
		[]string{`f.yaml:14:28: services[0].internalTrafficPolicy: unknown traffic policy "local" (valid: Cluster, Local)`}, nil},
	{"every error at once", "timeoutSeconds: 5", "timeoutSeconds: 0",
		[]string{
			"f.yaml:6:18: cluster.nodePortRange: MIN 31000 is greater than MAX 30000",
			"f.yaml:15:28: services[0].internalTrafficPolicy: unknown traffic policy \"local\" (valid: Cluster, Local)",
			"f.yaml:20:5: services[0].x: unknown field \"x\"; valid fields: clusterIP, externalIPs, externalTrafficPolicy, internalTrafficPolicy, name, namespace, ports, selector, sessionAffinity, sessionAffinityConfig, type",
			"f.yaml:23:19: services[1].externalIPs[0]: 10.244.9.9 lies inside cluster.podCIDR 10.244.0.0/16",
			"f.yaml:25:56: services[1].sessionAffinityConfig.clientIP.timeoutSeconds: must be between 1 and 86400 seconds, got 0",
		},
		[]string{"  egress:", "  nodePortRange: 31000-30000\n  egress:", "    type: NodePort\n", "    type: NodePort\n    internalTrafficPolicy: local\n",
			"protocol: UDP}\n", "protocol: UDP}\n    x: 1\n", "[198.51.100.20]", "[10.244.9.9]"}},
}

// TestFrontendErrors replaces one piece of frontendsDoc and wants exactly
// the listed errors, placed in the file, with nothing resolved.
func TestFrontendErrors(t *testing.T) {
	for _, tt := range frontendCases {
		t.Run(tt.name, func(t *testing.T) {
			doc := frontendsDoc
			pairs := append([]string{tt.old, tt.new}, tt.more...)
			for i := 0; i < len(pairs); i += 2 {
				if !strings.Contains(doc, pairs[i]) {
					t.Fatalf("%q is not in the document", pairs[i])
				}
				doc = strings.Replace(doc, pairs[i], pairs[i+1], 1)
			}
			r, err := LoadBytes("f.yaml", []byte(doc))
			if r != nil {
				t.Error("a Resolved came back with an error")
			}
			if err == nil || err.Error() != strings.Join(tt.want, "\n") {
				t.Fatalf("got\n%v\nwant\n%s", err, strings.Join(tt.want, "\n"))
			}
			if !errors.Is(err, ErrInvalid) {
				t.Error("not ErrInvalid")
			}
		})
	}
}

// nodePortsOf returns every service's nodePorts by service key.
func nodePortsOf(r *Resolved) map[string][]int {
	out := map[string][]int{}
	for _, s := range r.Services {
		for _, p := range s.Ports {
			out[s.Key] = append(out[s.Key], p.NodePort)
		}
	}
	return out
}

// TestNodePortAllocation checks that allocated nodePorts are in the range,
// unique per protocol, the same on every run and whatever the order of
// the file, and that explicit ones are never taken.
func TestNodePortAllocation(t *testing.T) {
	build := func(reverse bool, explicit int) *Topology {
		top := baseTopology()
		top.Cluster.NodePortRange = "30000-30009" // small: collisions are certain
		top.Services = nil
		for i := range 8 {
			s := Service{Name: "s" + string(rune('a'+i)), ClusterIP: netip.AddrFrom4([4]byte{10, 96, 1, byte(i + 1)}).String(),
				Type: ServiceNodePort, Ports: []ServicePort{{Name: "tcp", Port: 80}, {Name: "udp", Port: 80, Protocol: ProtocolUDP}}}
			if i == 0 {
				s.Ports[0].NodePort = explicit
			}
			top.Services = append(top.Services, s)
		}
		if reverse {
			slices.Reverse(top.Services)
		}
		return top
	}
	r1, err := Resolve(build(false, 30003), nil)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Resolve(build(true, 30003), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := nodePortsOf(r1), nodePortsOf(r2)
	for k, ports := range a {
		if !slices.Equal(ports, b[k]) {
			t.Errorf("%s: %v in file order, %v reversed", k, ports, b[k])
		}
	}
	seen := map[[2]int]string{}
	for _, s := range r1.Services {
		for _, p := range s.Ports {
			proto := map[string]int{ProtocolTCP: 0, ProtocolUDP: 1}[p.Protocol]
			if p.NodePort < 30000 || p.NodePort > 30009 {
				t.Errorf("%s: nodePort %d outside the range", s.Key, p.NodePort)
			}
			if other, dup := seen[[2]int{p.NodePort, proto}]; dup {
				t.Errorf("nodePort %d/%s given to %s and %s", p.NodePort, p.Protocol, other, s.Key)
			}
			seen[[2]int{p.NodePort, proto}] = s.Key
		}
	}
	if a["default/sa"][0] != 30003 {
		t.Errorf("explicit nodePort changed: %v", a["default/sa"])
	}
	// A port that the hash gives a service stays its own when another
	// service is added whose explicit port is elsewhere.
	top := build(false, 30003)
	top.Cluster.NodePortRange = ""
	before, err := Resolve(top, nil)
	if err != nil {
		t.Fatal(err)
	}
	top.Services = append(top.Services, Service{Name: "new", ClusterIP: "10.96.2.1", Type: ServiceNodePort,
		Ports: []ServicePort{{Port: 81, NodePort: 32767}}})
	after, err := Resolve(top, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, ports := range nodePortsOf(before) {
		if got := nodePortsOf(after)[k]; !slices.Equal(ports, got) {
			t.Errorf("%s: %v before the new service, %v after", k, ports, got)
		}
	}
}

func TestNodePortRangeFull(t *testing.T) {
	top := baseTopology()
	top.Cluster.NodePortRange = "30000-30000"
	top.Services[0].Type = ServiceNodePort
	top.Services[0].Ports = append(top.Services[0].Ports, ServicePort{Name: "alt", Port: 81})
	_, err := Resolve(top, nil)
	want := "services[0].ports[1]: no free nodePort left for TCP in cluster.nodePortRange 30000-30000"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}
