package spec

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// baseTopology is a valid topology touching every section; rule tests
// break one thing in it at a time.
func baseTopology() *Topology {
	port80 := FromInt(80)
	return &Topology{
		APIVersion: APIVersion,
		Kind:       Kind,
		Cluster:    Cluster{PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/16"},
		Namespaces: []Namespace{{Name: "x", Labels: map[string]string{"team": "a"}}},
		Nodes: []Node{
			{Name: "node-a", Address: "172.31.1.2/24", PodCIDR: "10.244.1.0/24"},
			{Name: "node-b", Address: "172.31.1.3/24", PodCIDR: "10.244.2.0/24", Uplink: "ens3"},
		},
		Pods: []Pod{
			{Name: "a", Namespace: "x", Node: "node-a", IP: "10.244.1.10", Labels: map[string]string{"app": "web"},
				Ports: []ContainerPort{{Name: "http", Port: 80}}},
			{Name: "b", Node: "node-b"},
		},
		Services: []Service{{
			Name: "web", Namespace: "x", ClusterIP: "10.96.0.10", Selector: map[string]string{"app": "web"},
			Ports: []ServicePort{{Name: "http", Port: 80, TargetPort: FromString("http")}},
		}},
		Policies: []Policy{{
			Name: "p", Namespace: "x",
			Spec: PolicySpec{
				PodSelector: LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				Ingress: []PolicyIngressRule{{
					From:  []PolicyPeer{{PodSelector: &LabelSelector{}}},
					Ports: []PolicyPort{{Port: &port80}},
				}},
			},
		}},
	}
}

func TestBaseTopologyIsValid(t *testing.T) {
	if _, err := Resolve(baseTopology(), nil); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestRules breaks one rule at a time and checks that exactly that error
// is reported, by field path and message. Resolve runs without positions
// here, as it would for a topology built in code.
func TestRules(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Topology)
		path   string
		msg    string
	}{
		// Header.
		{"apiVersion missing", func(t *Topology) { t.APIVersion = "" }, "apiVersion", `required; must be "netreconcile/v1"`},
		{"apiVersion wrong", func(t *Topology) { t.APIVersion = "v1" }, "apiVersion", `unsupported apiVersion "v1"`},
		{"kind wrong", func(t *Topology) { t.Kind = "Cluster" }, "kind", `unsupported kind "Cluster"`},

		// Cluster.
		{"podCIDR missing", func(t *Topology) { t.Cluster.PodCIDR = "" }, "cluster.podCIDR", "required"},
		{"podCIDR garbage", func(t *Topology) { t.Cluster.PodCIDR = "ten/8" }, "cluster.podCIDR", `invalid CIDR "ten/8"`},
		{"podCIDR bare", func(t *Topology) { t.Cluster.PodCIDR = "10.244.0.0" }, "cluster.podCIDR", "missing the prefix length"},
		{"podCIDR host bits", func(t *Topology) { t.Cluster.PodCIDR = "10.244.0.1/16" }, "cluster.podCIDR", "did you mean 10.244.0.0/16?"},
		{"podCIDR IPv6", func(t *Topology) { t.Cluster.PodCIDR = "fd00::/48" }, "cluster.podCIDR", "only IPv4 is supported"},
		{"podCIDR loopback", func(t *Topology) { t.Cluster.PodCIDR = "127.0.0.0/16" }, "cluster.podCIDR", "127.0.0.0/16 overlaps 127.0.0.0/8 (loopback)"},
		{"podCIDR link-local", func(t *Topology) { t.Cluster.PodCIDR = "169.254.0.0/20" }, "cluster.podCIDR",
			"169.254.0.0/20 overlaps 169.254.0.0/16 (link-local: the pods' gateway 169.254.1.1 and the hairpin source 169.254.42.1)"},
		{"podCIDR multicast", func(t *Topology) { t.Cluster.PodCIDR = "230.0.0.0/16" }, "cluster.podCIDR", "overlaps 224.0.0.0/4 (multicast)"},
		{"podCIDR this network", func(t *Topology) { t.Cluster.PodCIDR = "0.0.0.0/16" }, "cluster.podCIDR", `overlaps 0.0.0.0/8 ("this network")`},
		{"podCIDR reserved", func(t *Topology) { t.Cluster.PodCIDR = "250.0.0.0/16" }, "cluster.podCIDR", "overlaps 240.0.0.0/4 (reserved, with the broadcast address)"},
		{"podCIDR covers a reserved range", func(t *Topology) { t.Cluster.PodCIDR = "0.0.0.0/1" }, "cluster.podCIDR", `overlaps 0.0.0.0/8`},
		{"serviceCIDR multicast", func(t *Topology) { t.Cluster.ServiceCIDR = "224.0.0.0/16" }, "cluster.serviceCIDR", "overlaps 224.0.0.0/4 (multicast)"},
		{"serviceCIDR garbage", func(t *Topology) { t.Cluster.ServiceCIDR = "10.96.0.0/40" }, "cluster.serviceCIDR", "invalid CIDR"},
		{"serviceCIDR overlaps", func(t *Topology) { t.Cluster.ServiceCIDR = "10.244.128.0/20" }, "cluster.serviceCIDR",
			"10.244.128.0/20 overlaps cluster.podCIDR 10.244.0.0/16"},
		{"cluster mode", func(t *Topology) { t.Cluster.Mode = "tap" }, "cluster.mode",
			`unknown mode "tap" (valid: veth, bridge, macvlan, ipvlan)`},
		{"routing mode", func(t *Topology) { t.Cluster.Routing.Mode = "bgp" }, "cluster.routing.mode",
			`unknown routing mode "bgp" (valid: auto, direct, vxlan)`},
		{"vni negative", func(t *Topology) { t.Cluster.Routing.VXLAN.VNI = -1 }, "cluster.routing.vxlan.vni", "must be between 1 and 16777215, got -1"},
		{"vni too big", func(t *Topology) { t.Cluster.Routing.VXLAN.VNI = 1 << 24 }, "cluster.routing.vxlan.vni", "got 16777216"},
		{"vxlan port", func(t *Topology) { t.Cluster.Routing.VXLAN.Port = 65536 }, "cluster.routing.vxlan.port", "between 1 and 65535"},
		{"mtu small", func(t *Topology) { t.Cluster.MTU = 575 }, "cluster.mtu", "must be 0 (derive from the uplink) or between 576 and 65535, got 575"},
		{"mtu big", func(t *Topology) { t.Cluster.MTU = 65536 }, "cluster.mtu", "got 65536"},

		{"map size negative", func(t *Topology) { t.Cluster.Datapath.Maps.PolicyRules = -1 }, "cluster.datapath.maps.policyRules",
			"must be between 1 and 4194304 entries, got -1"},
		{"map size too large", func(t *Topology) { t.Cluster.Datapath.Maps.Services = 1<<22 + 1 }, "cluster.datapath.maps.services",
			"must be between 1 and 4194304 entries, got 4194305"},
		{"conntrack share negative", func(t *Topology) { t.Cluster.Datapath.ConntrackPerSource = -5 },
			"cluster.datapath.conntrackPerSource", "must be between 1 and 4194304 entries, got -5"},

		// Namespaces.
		{"namespace duplicate", func(t *Topology) { t.Namespaces = append(t.Namespaces, Namespace{Name: "x"}) },
			"namespaces[1].name", `duplicate namespace "x" (first at namespaces[0])`},
		{"namespace name", func(t *Topology) { t.Namespaces[0].Name = "X" }, "namespaces[0].name", `invalid name "X"`},
		{"namespace metadata label", func(t *Topology) { t.Namespaces[0].Labels[MetadataNameLabel] = "y" },
			"namespaces[0].labels[kubernetes.io/metadata.name]", `must be "x"`},
		{"namespace label", func(t *Topology) { t.Namespaces[0].Labels["a b"] = "c" }, "namespaces[0].labels[a b]", `invalid label key "a b"`},

		// Nodes.
		{"no nodes", func(t *Topology) { t.Nodes, t.Pods = nil, nil }, "nodes", "at least one node is required"},
		{"node name missing", func(t *Topology) { t.Nodes[1].Name = ""; t.Pods = t.Pods[:1] }, "nodes[1].name", "required"},
		{"node name invalid", func(t *Topology) { t.Nodes[1].Name = "node_b"; t.Pods = t.Pods[:1] }, "nodes[1].name", `invalid name "node_b"`},
		{"node name duplicate", func(t *Topology) { t.Nodes[1].Name = "node-a"; t.Pods = t.Pods[:1] }, "nodes[1].name", `duplicate node "node-a" (first at nodes[0])`},
		{"node address missing", func(t *Topology) { t.Nodes[1].Address = "" }, "nodes[1].address", "required"},
		{"node address bare", func(t *Topology) { t.Nodes[1].Address = "172.31.1.3" }, "nodes[1].address", "needs a prefix length"},
		{"node address network", func(t *Topology) { t.Nodes[1].Address = "172.31.1.0/24" }, "nodes[1].address", "is the network address"},
		{"node address broadcast", func(t *Topology) { t.Nodes[1].Address = "172.31.1.255/24" }, "nodes[1].address", "is the broadcast address"},
		{"node address duplicate", func(t *Topology) { t.Nodes[1].Address = "172.31.1.2/16" }, "nodes[1].address",
			`address 172.31.1.2 is already used by nodes[0] (node "node-a")`},
		{"node address in podCIDR", func(t *Topology) { t.Nodes[1].Address = "10.244.9.9/24" }, "nodes[1].address", "lies inside cluster.podCIDR"},
		{"node address in serviceCIDR", func(t *Topology) { t.Nodes[1].Address = "10.96.9.9/24" }, "nodes[1].address", "lies inside cluster.serviceCIDR"},
		{"node address IPv6", func(t *Topology) { t.Nodes[1].Address = "fd00::2/64" }, "nodes[1].address", "only IPv4"},
		{"uplink too long", func(t *Topology) { t.Nodes[1].Uplink = "abcdefghijklmnop" }, "nodes[1].uplink", "must be 1 to 15 characters"},
		{"uplink slash", func(t *Topology) { t.Nodes[1].Uplink = "a/b" }, "nodes[1].uplink", "must not contain '/'"},
		{"uplink colon", func(t *Topology) { t.Nodes[1].Uplink = "eth0:1" }, "nodes[1].uplink", "must not contain '/', ':'"},
		{"uplink dotdot", func(t *Topology) { t.Nodes[1].Uplink = ".." }, "nodes[1].uplink", `invalid interface name ".."`},
		{"uplink bidi", func(t *Topology) { t.Nodes[1].Uplink = "eth\u202e0" }, "nodes[1].uplink",
			`invalid interface name "eth\u202e0": character U+202E (right-to-left override, a bidirectional control) at position 4`},
		{"uplink zero width", func(t *Topology) { t.Nodes[1].Uplink = "\u200deth0" }, "nodes[1].uplink", "U+200D (zero width joiner) at position 1"},
		{"uplink control", func(t *Topology) { t.Nodes[1].Uplink = "eth\n0" }, "nodes[1].uplink", "U+000A (a control character) at position 4"},
		{"uplink is the bridge", func(t *Topology) { t.Nodes[1].Uplink = "nrbr0" }, "nodes[1].uplink",
			`uplink "nrbr0" is named like netreconcile's bridge (bridge mode), a device netreconcile creates and deletes`},
		{"uplink is the macvlan shim", func(t *Topology) { t.Nodes[1].Uplink = "nrmv0" }, "nodes[1].uplink", "netreconcile's macvlan shim"},
		{"uplink is the ipvlan shim", func(t *Topology) { t.Nodes[1].Uplink = "nrip0" }, "nodes[1].uplink", "netreconcile's ipvlan shim"},
		{"uplink is the vxlan device", func(t *Topology) { t.Nodes[1].Uplink = "nrvxlan0" }, "nodes[1].uplink", "netreconcile's VXLAN device"},
		{"uplink is a host veth", func(t *Topology) { t.Nodes[1].Uplink = "nr0a1b2c3d" }, "nodes[1].uplink",
			`uplink "nr0a1b2c3d" is named like a pod's host-side veth ("nr" and eight hex digits)`},
		{"node podCIDR loopback", func(t *Topology) { t.Nodes[1].PodCIDR = "127.0.0.0/24" }, "nodes[1].podCIDR",
			"127.0.0.0/24 overlaps 127.0.0.0/8 (loopback)"},
		{"node podCIDR missing", func(t *Topology) { t.Nodes[1].PodCIDR = "" }, "nodes[1].podCIDR", "required"},
		{"node podCIDR outside", func(t *Topology) { t.Nodes[1].PodCIDR = "10.245.2.0/24" }, "nodes[1].podCIDR",
			"10.245.2.0/24 is not inside cluster.podCIDR 10.244.0.0/16"},
		{"node podCIDR larger than cluster", func(t *Topology) { t.Nodes[1].PodCIDR = "10.0.0.0/8" }, "nodes[1].podCIDR", "is not inside cluster.podCIDR"},
		{"node podCIDR overlap", func(t *Topology) { t.Nodes[1].PodCIDR = "10.244.1.128/25" }, "nodes[1].podCIDR",
			`10.244.1.128/25 overlaps nodes[0].podCIDR 10.244.1.0/24 (node "node-a")`},
		{"node podCIDR too small", func(t *Topology) { t.Nodes[1].PodCIDR = "10.244.2.0/31" }, "nodes[1].podCIDR", "leaves no address for pods"},
		{"direct routing across subnets", func(t *Topology) {
			t.Cluster.Routing.Mode = RoutingDirect
			t.Nodes[1].Address = "172.31.2.3/24"
		}, "nodes[1].address", `node "node-a" (172.31.1.2/24) and node "node-b" (172.31.2.3/24) do not share one`},
		{"direct routing asymmetric prefixes", func(t *Topology) {
			t.Cluster.Routing.Mode = RoutingDirect
			t.Nodes[1].Address = "172.31.0.3/16"
		}, "nodes[1].address", "routing mode direct needs every node on one underlay subnet"},

		// Pods.
		{"pod name", func(t *Topology) { t.Pods[0].Name = "A" }, "pods[0].name", `invalid name "A"`},
		{"pod name too long", func(t *Topology) { t.Pods[0].Name = strings.Repeat("a", 64) }, "pods[0].name", "at most 63 characters"},
		{"pod namespace", func(t *Topology) { t.Pods[0].Namespace = "x.y" }, "pods[0].namespace", `invalid name "x.y"`},
		{"pod duplicate", func(t *Topology) { t.Pods[1].Name, t.Pods[1].Namespace = "a", "x" }, "pods[1].name", `duplicate pod "x/a" (first at pods[0])`},
		{"pod duplicate via default namespace", func(t *Topology) {
			t.Pods = append(t.Pods, Pod{Name: "b", Namespace: "default", Node: "node-a"})
		}, "pods[2].name", `duplicate pod "default/b"`},
		{"pod node missing", func(t *Topology) { t.Pods[1].Node = "" }, "pods[1].node", "required"},
		{"pod node unknown", func(t *Topology) { t.Pods[1].Node = "node-c" }, "pods[1].node", `unknown node "node-c" (nodes: node-a, node-b)`},
		{"pod mode", func(t *Topology) { t.Pods[1].Mode = "tun" }, "pods[1].mode", `unknown mode "tun" (valid: veth, bridge, macvlan, ipvlan)`},
		{"pod ip with prefix", func(t *Topology) { t.Pods[0].IP = "10.244.1.10/24" }, "pods[0].ip", "must be a bare address"},
		{"pod ip garbage", func(t *Topology) { t.Pods[0].IP = "10.244.1" }, "pods[0].ip", `invalid IP address "10.244.1"`},
		{"pod ip IPv6", func(t *Topology) { t.Pods[0].IP = "::ffff:10.244.1.10" }, "pods[0].ip", "only IPv4"},
		{"pod ip outside", func(t *Topology) { t.Pods[0].IP = "10.244.2.10" }, "pods[0].ip",
			`10.244.2.10 is outside node "node-a"'s podCIDR 10.244.1.0/24`},
		{"pod ip network", func(t *Topology) { t.Pods[0].IP = "10.244.1.0" }, "pods[0].ip", "is the network address"},
		{"pod ip gateway", func(t *Topology) { t.Pods[0].IP = "10.244.1.1" }, "pods[0].ip", `is node "node-a"'s gateway address`},
		{"pod ip broadcast", func(t *Topology) { t.Pods[0].IP = "10.244.1.255" }, "pods[0].ip", "is the broadcast address"},
		{"pod ip hairpin", func(t *Topology) { t.Pods[0].IP = "169.254.42.1" }, "pods[0].ip",
			"169.254.42.1 is the datapath's hairpin address (the source a pod sees when it reaches itself through a service); no pod may hold it"},
		{"pod ip veth gateway", func(t *Topology) { t.Pods[0].IP = "169.254.1.1" }, "pods[0].ip", "169.254.1.1 is the veth pods' gateway address"},
		{"pod ip of a node", func(t *Topology) { t.Pods[0].IP = "172.31.1.3" }, "pods[0].ip", `172.31.1.3 is node "node-b"'s underlay address`},
		{"pod ip loopback", func(t *Topology) { t.Pods[0].IP = "127.0.0.1" }, "pods[0].ip", "127.0.0.1 lies in 127.0.0.0/8 (loopback)"},
		{"pod ip broadcast everywhere", func(t *Topology) { t.Pods[0].IP = "255.255.255.255" }, "pods[0].ip", "lies in 240.0.0.0/4"},
		{"pod ip duplicate", func(t *Topology) { t.Pods[1].Node, t.Pods[1].IP = "node-a", "10.244.1.10" }, "pods[1].ip",
			`address 10.244.1.10 is already used by pods[0] (pod "x/a")`},
		{"netns slash", func(t *Topology) { t.Pods[0].Netns = "a/b" }, "pods[0].netns", "must be a plain name (no '/') or an absolute path"},
		{"netns dotdot", func(t *Topology) { t.Pods[0].Netns = ".." }, "pods[0].netns", `must not be '.' or contain ".."`},
		{"netns long", func(t *Topology) { t.Pods[0].Netns = strings.Repeat("n", 65) }, "pods[0].netns", "longer than 64 characters"},
		{"netns path unclean", func(t *Topology) { t.Pods[0].Netns = "/run/netns/" }, "pods[0].netns", "must be clean"},
		{"netns root", func(t *Topology) { t.Pods[0].Netns = "/" }, "pods[0].netns", "must be clean"},
		{"netns space", func(t *Topology) { t.Pods[0].Netns = "a b" }, "pods[0].netns", "must not contain whitespace"},
		{"netns clashes with a default", func(t *Topology) { t.Pods[1].Netns = "x-a" }, "pods[1].netns",
			`netns "x-a" is already used by pods[0] (pod "x/a")`},
		{"netns name and path are one", func(t *Topology) { t.Pods[0].Netns = "/var/run/netns/default-b" }, "pods[1].netns",
			`netns "default-b" is already used by pods[0]`},
		{"default netns too long", func(t *Topology) {
			t.Pods[1].Name, t.Pods[1].Namespace = strings.Repeat("p", 40), strings.Repeat("n", 40)
		}, "pods[1].netns", "the default netns name"},
		{"netns under /proc", func(t *Topology) { t.Pods[0].Netns = "/proc/1/ns/net" }, "pods[0].netns",
			`invalid netns path "/proc/1/ns/net": a path under /proc names a process's or a device's namespace, not a pod's`},
		{"netns /proc itself", func(t *Topology) { t.Pods[0].Netns = "/proc" }, "pods[0].netns", "a path under /proc"},
		{"netns under /dev", func(t *Topology) { t.Pods[0].Netns = "/dev/shm/ns" }, "pods[0].netns", "a path under /dev"},
		{"netns reaches /proc once cleaned", func(t *Topology) { t.Pods[0].Netns = "/run/../proc/1/ns/net" }, "pods[0].netns",
			`invalid netns path "/run/../proc/1/ns/net": a path under /proc`},
		{"netns reaches /dev through slashes", func(t *Topology) { t.Pods[0].Netns = "//dev/../dev/x" }, "pods[0].netns", "a path under /dev"},
		{"netns control character", func(t *Topology) { t.Pods[0].Netns = "a\x07b" }, "pods[0].netns",
			`invalid netns name "a\ab": character U+0007 (a control character) at position 2 is not allowed`},
		{"netns tab", func(t *Topology) { t.Pods[0].Netns = "ab\tc" }, "pods[0].netns", "character U+0009 (a control character) at position 3"},
		{"netns bidi override", func(t *Topology) { t.Pods[0].Netns = "pod\u202eab" }, "pods[0].netns",
			`invalid netns name "pod\u202eab": character U+202E (right-to-left override, a bidirectional control) at position 4 is not allowed`},
		{"netns bidi isolate", func(t *Topology) { t.Pods[0].Netns = "é\u2067x" }, "pods[0].netns",
			"character U+2067 (right-to-left isolate, a bidirectional control) at position 2"},
		{"netns bidi mark", func(t *Topology) { t.Pods[0].Netns = "\u200fx" }, "pods[0].netns", "U+200F (right-to-left mark, a bidirectional control) at position 1"},
		{"netns zero width", func(t *Topology) { t.Pods[0].Netns = "x-\u200ba" }, "pods[0].netns", "U+200B (zero width space) at position 3"},
		{"netns word joiner", func(t *Topology) { t.Pods[0].Netns = "x\u2060" }, "pods[0].netns", "U+2060 (word joiner, a zero-width character) at position 2"},
		{"netns path byte order mark", func(t *Topology) { t.Pods[0].Netns = "/run/netns/\ufeffx" }, "pods[0].netns",
			`invalid netns path "/run/netns/\ufeffx": character U+FEFF (zero width no-break space (byte order mark)) at position 12`},
		{"pod label value", func(t *Topology) { t.Pods[0].Labels["app"] = "web!" }, "pods[0].labels[app]", `invalid label value "web!"`},
		{"pod label prefix", func(t *Topology) { t.Pods[0].Labels["Example.com/app"] = "x" }, "pods[0].labels[Example.com/app]", "lowercase DNS subdomain"},
		{"pod port name duplicate", func(t *Topology) { t.Pods[0].Ports = append(t.Pods[0].Ports, ContainerPort{Name: "http", Port: 81}) },
			"pods[0].ports[1].name", `duplicate port name "http" (first at ports[0])`},
		{"pod port name long", func(t *Topology) { t.Pods[0].Ports[0].Name = "abcdefghijklmnop" }, "pods[0].ports[0].name", "must be 1 to 15 characters"},
		{"pod port name digits", func(t *Topology) { t.Pods[0].Ports[0].Name = "80-80" }, "pods[0].ports[0].name", "at least one letter"},
		{"pod port name upper", func(t *Topology) { t.Pods[0].Ports[0].Name = "Http" }, "pods[0].ports[0].name", "must be lowercase"},
		{"pod port missing", func(t *Topology) { t.Pods[0].Ports[0].Port = 0 }, "pods[0].ports[0].port", "required"},
		{"pod port range", func(t *Topology) { t.Pods[0].Ports[0].Port = 65536 }, "pods[0].ports[0].port", "between 1 and 65535, got 65536"},
		{"pod port protocol", func(t *Topology) { t.Pods[0].Ports[0].Protocol = "tcp" }, "pods[0].ports[0].protocol",
			`unsupported protocol "tcp" (valid: TCP, UDP, SCTP)`},
		{"podCIDR full", func(t *Topology) {
			t.Nodes[1].PodCIDR = "10.244.2.0/30"
			t.Pods = append(t.Pods, Pod{Name: "c", Node: "node-b"})
		}, "pods[2]", `node "node-b"'s podCIDR 10.244.2.0/30 is full`},

		// Services.
		{"services need serviceCIDR", func(t *Topology) { t.Cluster.ServiceCIDR = "" }, "cluster.serviceCIDR", "required when services are defined"},
		{"service name", func(t *Topology) { t.Services[0].Name = "Web" }, "services[0].name", `invalid name "Web"`},
		{"service duplicate", func(t *Topology) {
			s := t.Services[0]
			s.ClusterIP = "10.96.0.11"
			t.Services = append(t.Services, s)
		}, "services[1].name", `duplicate service "x/web" (first at services[0])`},
		{"clusterIP missing", func(t *Topology) { t.Services[0].ClusterIP = "" }, "services[0].clusterIP", "required"},
		{"clusterIP None", func(t *Topology) { t.Services[0].ClusterIP = "None" }, "services[0].clusterIP", `invalid IP address "None"`},
		{"clusterIP outside", func(t *Topology) { t.Services[0].ClusterIP = "10.97.0.1" }, "services[0].clusterIP",
			"10.97.0.1 is outside cluster.serviceCIDR 10.96.0.0/16"},
		{"clusterIP network", func(t *Topology) { t.Services[0].ClusterIP = "10.96.0.0" }, "services[0].clusterIP", "is the network address of cluster.serviceCIDR"},
		{"clusterIP duplicate", func(t *Topology) {
			t.Services = append(t.Services, Service{Name: "other", Namespace: "x", ClusterIP: "10.96.0.10", Ports: []ServicePort{{Port: 1}}})
		}, "services[1].clusterIP", `clusterIP 10.96.0.10 is already used by services[0] (service "web")`},
		{"service no ports", func(t *Topology) { t.Services[0].Ports = nil }, "services[0].ports", "at least one port is required"},
		{"service port names required", func(t *Topology) {
			t.Services[0].Ports = append(t.Services[0].Ports, ServicePort{Port: 443})
		}, "services[0].ports[1].name", "required when a service has more than one port"},
		{"service port names unique", func(t *Topology) {
			t.Services[0].Ports = append(t.Services[0].Ports, ServicePort{Name: "http", Port: 443})
		}, "services[0].ports[1].name", `duplicate port name "http" (first at ports[0])`},
		{"service port name invalid", func(t *Topology) { t.Services[0].Ports[0].Name = "HTTP" }, "services[0].ports[0].name", `invalid port name "HTTP"`},
		{"service port pairs unique", func(t *Topology) {
			t.Services[0].Ports = append(t.Services[0].Ports, ServicePort{Name: "alt", Port: 80, Protocol: "TCP"})
		}, "services[0].ports[1].port", "duplicate port 80/TCP (first at ports[0])"},
		{"service port range", func(t *Topology) { t.Services[0].Ports[0].Port = -5 }, "services[0].ports[0].port", "got -5"},
		{"service port missing", func(t *Topology) { t.Services[0].Ports[0].Port = 0 }, "services[0].ports[0].port", "required"},
		{"service protocol", func(t *Topology) { t.Services[0].Ports[0].Protocol = "ICMP" }, "services[0].ports[0].protocol", `unsupported protocol "ICMP"`},
		{"targetPort name", func(t *Topology) { t.Services[0].Ports[0].TargetPort = FromString("web--port") }, "services[0].ports[0].targetPort",
			`invalid port name "web--port": must not contain "--"`},
		{"targetPort empty name", func(t *Topology) { t.Services[0].Ports[0].TargetPort = FromString("") }, "services[0].ports[0].targetPort",
			`invalid port name ""`},
		{"targetPort range", func(t *Topology) { t.Services[0].Ports[0].TargetPort = FromInt(70000) }, "services[0].ports[0].targetPort", "got 70000"},
		{"sessionAffinity", func(t *Topology) { t.Services[0].SessionAffinity = "Sticky" }, "services[0].sessionAffinity",
			`unknown session affinity "Sticky" (valid: None, ClientIP)`},
		{"service selector", func(t *Topology) { t.Services[0].Selector = map[string]string{"app": "-web"} }, "services[0].selector[app]", "invalid label value"},

		// Policies.
		{"policy name", func(t *Topology) { t.Policies[0].Name = "" }, "policies[0].name", "required"},
		{"policy duplicate", func(t *Topology) { t.Policies = append(t.Policies, Policy{Name: "p", Namespace: "x"}) },
			"policies[1].name", `duplicate policy "x/p" (first at policies[0])`},
		{"policyTypes unknown", func(t *Topology) { t.Policies[0].Spec.PolicyTypes = []string{"Ingress", "ingress"} },
			"policies[0].spec.policyTypes[1]", `unknown policy type "ingress" (valid: Ingress, Egress)`},
		{"policyTypes duplicate", func(t *Topology) { t.Policies[0].Spec.PolicyTypes = []string{"Egress", "Egress"} },
			"policies[0].spec.policyTypes[1]", `duplicate policy type "Egress"`},
		{"matchLabels key", func(t *Topology) { t.Policies[0].Spec.PodSelector.MatchLabels["/app"] = "x" },
			"policies[0].spec.podSelector.matchLabels[/app]", "the prefix before '/' must not be empty"},
		{"matchLabels value", func(t *Topology) { t.Policies[0].Spec.PodSelector.MatchLabels["app"] = strings.Repeat("v", 64) },
			"policies[0].spec.podSelector.matchLabels[app]", "invalid label value"},
		{"In without values", func(t *Topology) {
			t.Policies[0].Spec.PodSelector.MatchExpressions = []LabelSelectorRequirement{{Key: "app", Operator: "In"}}
		}, "policies[0].spec.podSelector.matchExpressions[0].values", "must be non-empty for operator In"},
		{"NotIn without values", func(t *Topology) {
			t.Policies[0].Spec.PodSelector.MatchExpressions = []LabelSelectorRequirement{{Key: "app", Operator: "NotIn"}}
		}, "policies[0].spec.podSelector.matchExpressions[0].values", "must be non-empty for operator NotIn"},
		{"Exists with values", func(t *Topology) {
			t.Policies[0].Spec.PodSelector.MatchExpressions = []LabelSelectorRequirement{{Key: "app", Operator: "Exists", Values: []string{"a"}}}
		}, "policies[0].spec.podSelector.matchExpressions[0].values", "must be empty for operator Exists"},
		{"DoesNotExist with values", func(t *Topology) {
			t.Policies[0].Spec.PodSelector.MatchExpressions = []LabelSelectorRequirement{{Key: "app", Operator: "DoesNotExist", Values: []string{"a"}}}
		}, "policies[0].spec.podSelector.matchExpressions[0].values", "must be empty for operator DoesNotExist"},
		{"operator unknown", func(t *Topology) {
			t.Policies[0].Spec.PodSelector.MatchExpressions = []LabelSelectorRequirement{{Key: "app", Operator: "in", Values: []string{"a"}}}
		}, "policies[0].spec.podSelector.matchExpressions[0].operator", `unknown operator "in" (valid: In, NotIn, Exists, DoesNotExist)`},
		{"operator missing", func(t *Topology) {
			t.Policies[0].Spec.PodSelector.MatchExpressions = []LabelSelectorRequirement{{Key: "app"}}
		}, "policies[0].spec.podSelector.matchExpressions[0].operator", "required"},
		{"expression key", func(t *Topology) {
			t.Policies[0].Spec.PodSelector.MatchExpressions = []LabelSelectorRequirement{{Key: "a/b/c", Operator: "Exists"}}
		}, "policies[0].spec.podSelector.matchExpressions[0].key", `invalid label key "a/b/c"`},
		{"expression value", func(t *Topology) {
			t.Policies[0].Spec.PodSelector.MatchExpressions = []LabelSelectorRequirement{{Key: "a", Operator: "In", Values: []string{"ok", "not ok"}}}
		}, "policies[0].spec.podSelector.matchExpressions[0].values[1]", `invalid label value "not ok"`},
		{"peer empty", func(t *Topology) { t.Policies[0].Spec.Ingress[0].From[0] = PolicyPeer{} },
			"policies[0].spec.ingress[0].from[0]", "a peer needs podSelector, namespaceSelector or ipBlock"},
		{"peer namespaceSelector", func(t *Topology) {
			t.Policies[0].Spec.Ingress[0].From[0].NamespaceSelector = &LabelSelector{MatchLabels: map[string]string{"": "x"}}
		}, "policies[0].spec.ingress[0].from[0].namespaceSelector.matchLabels[]", "label key must not be empty"},
		{"ipBlock with selector", func(t *Topology) { t.Policies[0].Spec.Ingress[0].From[0].IPBlock = &IPBlock{CIDR: "10.0.0.0/8"} },
			"policies[0].spec.ingress[0].from[0].ipBlock", "ipBlock cannot be combined with podSelector or namespaceSelector"},
		{"ipBlock cidr missing", func(t *Topology) { t.Policies[0].Spec.Ingress[0].From[0] = PolicyPeer{IPBlock: &IPBlock{}} },
			"policies[0].spec.ingress[0].from[0].ipBlock.cidr", "required"},
		{"ipBlock cidr bare", func(t *Topology) {
			t.Policies[0].Spec.Ingress[0].From[0] = PolicyPeer{IPBlock: &IPBlock{CIDR: "10.0.0.1"}}
		},
			"policies[0].spec.ingress[0].from[0].ipBlock.cidr", "missing the prefix length"},
		{"except outside", func(t *Topology) {
			t.Policies[0].Spec.Ingress[0].From[0] = PolicyPeer{IPBlock: &IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16", "192.168.0.0/16"}}}
		}, "policies[0].spec.ingress[0].from[0].ipBlock.except[1]", "192.168.0.0/16 is not strictly inside ipBlock.cidr 10.0.0.0/8"},
		{"except equal", func(t *Topology) {
			t.Policies[0].Spec.Ingress[0].From[0] = PolicyPeer{IPBlock: &IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.0.0.0/8"}}}
		}, "policies[0].spec.ingress[0].from[0].ipBlock.except[0]", "not strictly inside"},
		{"except not a cidr", func(t *Topology) {
			t.Policies[0].Spec.Ingress[0].From[0] = PolicyPeer{IPBlock: &IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0"}}}
		}, "policies[0].spec.ingress[0].from[0].ipBlock.except[0]", "invalid CIDR"},
		{"egress peer", func(t *Topology) {
			t.Policies[0].Spec.Egress = []PolicyEgressRule{{To: []PolicyPeer{{IPBlock: &IPBlock{CIDR: "1.2.3.4/8"}}}}}
		}, "policies[0].spec.egress[0].to[0].ipBlock.cidr", "has host bits set; did you mean 1.0.0.0/8?"},
		{"policy port name", func(t *Topology) { t.Policies[0].Spec.Ingress[0].Ports[0].Port = ptr(FromString("-http")) },
			"policies[0].spec.ingress[0].ports[0].port", `invalid port name "-http"`},
		{"policy port range", func(t *Topology) { t.Policies[0].Spec.Ingress[0].Ports[0].Port = ptr(FromInt(0)) },
			"policies[0].spec.ingress[0].ports[0].port", "got 0"},
		{"policy protocol", func(t *Topology) { t.Policies[0].Spec.Ingress[0].Ports[0].Protocol = "Tcp" },
			"policies[0].spec.ingress[0].ports[0].protocol", `unsupported protocol "Tcp"`},
		{"endPort without port", func(t *Topology) { t.Policies[0].Spec.Ingress[0].Ports[0] = PolicyPort{EndPort: 90} },
			"policies[0].spec.ingress[0].ports[0].endPort", "endPort requires port"},
		{"endPort with named port", func(t *Topology) {
			t.Policies[0].Spec.Ingress[0].Ports[0] = PolicyPort{Port: ptr(FromString("http")), EndPort: 90}
		}, "policies[0].spec.ingress[0].ports[0].endPort", `endPort requires a numeric port, not the named port "http"`},
		{"endPort below port", func(t *Topology) { t.Policies[0].Spec.Ingress[0].Ports[0].EndPort = 79 },
			"policies[0].spec.ingress[0].ports[0].endPort", "endPort 79 is less than port 80"},
		{"endPort range", func(t *Topology) {
			t.Policies[0].Spec.Egress = []PolicyEgressRule{{Ports: []PolicyPort{{Port: ptr(FromInt(1)), EndPort: 65536}}}}
		},
			"policies[0].spec.egress[0].ports[0].endPort", "got 65536"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		if seen[tt.name] {
			t.Fatalf("duplicate test name %q", tt.name)
		}
		seen[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			top := baseTopology()
			tt.mutate(top)
			r, err := Resolve(top, nil)
			if err == nil {
				t.Fatalf("accepted; want %s: %s", tt.path, tt.msg)
			}
			if r != nil {
				t.Error("a Resolved came back with an error")
			}
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T: %v", err, err)
			}
			if len(errs.List) != 1 || errs.List[0].Path != tt.path || !strings.Contains(errs.List[0].Msg, tt.msg) {
				t.Fatalf("got\n%v\nwant exactly one error: %s: ...%s...", err, tt.path, tt.msg)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Error("semantic errors must match ErrInvalid")
			}
		})
	}
}

// TestAccepted lists edge cases that are valid and must stay so.
func TestAccepted(t *testing.T) {
	tests := map[string]func(*Topology){
		"mtu lower bound":      func(t *Topology) { t.Cluster.MTU = 576 },
		"mtu upper bound":      func(t *Topology) { t.Cluster.MTU = 65535 },
		"vni upper bound":      func(t *Topology) { t.Cluster.Routing.VXLAN.VNI = 1<<24 - 1 },
		"routing modes":        func(t *Topology) { t.Cluster.Routing.Mode = RoutingVXLAN },
		"direct on one subnet": func(t *Topology) { t.Cluster.Routing.Mode = RoutingDirect },
		"every mode": func(t *Topology) {
			t.Cluster.Mode, t.Pods[0].Mode, t.Pods[1].Mode = ModeIPvlan, ModeMacvlan, ModeBridge
		},
		"SCTP and UDP":       func(t *Topology) { t.Pods[0].Ports[0].Protocol, t.Services[0].Ports[0].Protocol = "SCTP", "UDP" },
		"ClientIP affinity":  func(t *Topology) { t.Services[0].SessionAffinity = AffinityClientIP },
		"numeric targetPort": func(t *Topology) { t.Services[0].Ports[0].TargetPort = FromInt(65535) },
		"same port other protocol": func(t *Topology) {
			t.Services[0].Ports = append(t.Services[0].Ports, ServicePort{Name: "udp", Port: 80, Protocol: "UDP"})
		},
		"netns absolute path":       func(t *Topology) { t.Pods[0].Netns = "/var/run/docker/netns/0f1e2d" },
		"netns printable unicode":   func(t *Topology) { t.Pods[0].Netns = "café-ü" },
		"uplink like ours but not":  func(t *Topology) { t.Nodes[1].Uplink = "nrbr1" },
		"last usable pod address":   func(t *Topology) { t.Pods[0].IP = "10.244.1.254" },
		"first usable pod address":  func(t *Topology) { t.Pods[0].IP = "10.244.1.2" },
		"no serviceCIDR no service": func(t *Topology) { t.Cluster.ServiceCIDR, t.Services = "", nil },
		"no pods":                   func(t *Topology) { t.Pods, t.Services, t.Policies = nil, nil, nil },
		"IPv6 ipBlock": func(t *Topology) {
			t.Policies[0].Spec.Ingress[0].From[0] = PolicyPeer{IPBlock: &IPBlock{CIDR: "fd00::/8", Except: []string{"fd00:1::/32"}}}
		},
		"endPort equal to port": func(t *Topology) { t.Policies[0].Spec.Ingress[0].Ports[0].EndPort = 80 },
		"named policy port":     func(t *Topology) { t.Policies[0].Spec.Ingress[0].Ports[0].Port = ptr(FromString("http")) },
		"pod and namespace selector": func(t *Topology) {
			t.Policies[0].Spec.Ingress[0].From[0].NamespaceSelector = &LabelSelector{MatchLabels: map[string]string{MetadataNameLabel: "x"}}
		},
		"label key with prefix":    func(t *Topology) { t.Pods[0].Labels["app.kubernetes.io/name"] = "web_1.x-y" },
		"empty label value":        func(t *Topology) { t.Pods[0].Labels["flag"] = "" },
		"metadata label matches":   func(t *Topology) { t.Namespaces[0].Labels[MetadataNameLabel] = "x" },
		"policy without spec":      func(t *Topology) { t.Policies[0].Spec = PolicySpec{} },
		"same pod name other ns":   func(t *Topology) { t.Pods[1].Name = "a" },
		"single port without name": func(t *Topology) { t.Services[0].Ports[0].Name = "" },
		"a /30 with one pod":       func(t *Topology) { t.Nodes[1].PodCIDR = "10.244.2.0/30" },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			top := baseTopology()
			mutate(top)
			if _, err := Resolve(top, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	top := baseTopology()
	top.Policies = append(top.Policies, Policy{Name: "egress", Spec: PolicySpec{
		Egress: []PolicyEgressRule{{Ports: []PolicyPort{{Port: ptr(FromInt(53))}}}},
	}})
	top.Services = append(top.Services, Service{Name: "plain", ClusterIP: "10.96.0.20", Ports: []ServicePort{{Port: 8080}}})
	r, err := Resolve(top, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != ModeVeth || r.Routing != RoutingAuto || r.VNI != 1 || r.VXLANPort != 4789 || r.MTU != 0 {
		t.Errorf("cluster defaults: %+v", r)
	}
	if r.PodCIDR != netip.MustParsePrefix("10.244.0.0/16") || r.ServiceCIDR != netip.MustParsePrefix("10.96.0.0/16") {
		t.Errorf("CIDRs: %v %v", r.PodCIDR, r.ServiceCIDR)
	}
	a, b := r.Node("node-a"), r.Node("node-b")
	if a == nil || b == nil || r.Node("nope") != nil {
		t.Fatal("Node lookup")
	}
	if a.Uplink != "eth0" || b.Uplink != "ens3" || a.Gateway != netip.MustParseAddr("10.244.1.1") ||
		a.Address != netip.MustParsePrefix("172.31.1.2/24") || a.PodCIDR != netip.MustParsePrefix("10.244.1.0/24") {
		t.Errorf("node-a: %+v", a)
	}
	if got := []string{r.Pods[0].Key, r.Pods[1].Key}; !slices.Equal(got, []string{"default/b", "x/a"}) {
		t.Errorf("pods not sorted by key: %v", got)
	}
	pb, pa := r.Pods[0], r.Pods[1]
	if pb.Namespace != "default" || pb.Netns != "default-b" || pb.Mode != ModeVeth || !pb.Allocated ||
		!b.PodCIDR.Contains(pb.IP) || pb.IP == b.Gateway {
		t.Errorf("pod b: %+v", pb)
	}
	if pa.Allocated || pa.IP != netip.MustParseAddr("10.244.1.10") || pa.Netns != "x-a" || pa.Ports[0].Protocol != "TCP" {
		t.Errorf("pod a: %+v", pa)
	}
	if top.Pods[0].Ports[0].Protocol != "" {
		t.Error("defaulting changed the source topology")
	}
	if len(r.PodsOn("node-a")) != 1 || r.PodsOn("node-a")[0].Key != "x/a" {
		t.Errorf("PodsOn: %+v", r.PodsOn("node-a"))
	}
	svc := r.Services[0] // default/plain sorts first
	if svc.Key != "default/plain" || svc.SessionAffinity != AffinityNone || svc.Ports[0].Protocol != "TCP" ||
		svc.Ports[0].TargetPort != FromInt(8080) || svc.ClusterIP != netip.MustParseAddr("10.96.0.20") {
		t.Errorf("service defaults: %+v", svc)
	}
	if r.Services[1].Ports[0].TargetPort != FromString("http") {
		t.Errorf("named targetPort kept: %+v", r.Services[1].Ports[0])
	}
	pols := map[string]ResolvedPolicy{}
	for _, p := range r.Policies {
		pols[p.Key] = p
	}
	if got := pols["x/p"].Spec.PolicyTypes; !slices.Equal(got, []string{"Ingress"}) {
		t.Errorf("ingress-only policy types: %v", got)
	}
	eg := pols["default/egress"]
	if !slices.Equal(eg.Spec.PolicyTypes, []string{"Ingress", "Egress"}) || eg.Namespace != "default" {
		t.Errorf("egress policy: %+v", eg)
	}
	if eg.Spec.Egress[0].Ports[0].Protocol != "TCP" || top.Policies[1].Spec.Egress[0].Ports[0].Protocol != "" {
		t.Error("policy port protocol must default in the resolved copy only")
	}
	if top.Policies[1].Spec.PolicyTypes != nil {
		t.Error("defaulting policyTypes changed the source")
	}
	wantNS := map[string]map[string]string{
		"x":       {"team": "a", MetadataNameLabel: "x"},
		"default": {MetadataNameLabel: "default"},
	}
	if !reflect.DeepEqual(r.Namespaces, wantNS) {
		t.Errorf("namespaces = %v, want %v", r.Namespaces, wantNS)
	}
	if top.Namespaces[0].Labels[MetadataNameLabel] != "" {
		t.Error("namespace label added to the source")
	}
}

func TestMapSizes(t *testing.T) {
	top := baseTopology()
	r, err := Resolve(top, nil)
	if err != nil || r.Maps != DefaultMapSizes {
		t.Fatalf("defaults: %+v, %v", r.Maps, err)
	}
	top.Cluster.Datapath.Maps = DatapathMaps{PolicyRules: 1024, Conntrack: MaxMapSize}
	if r, err = Resolve(top, nil); err != nil {
		t.Fatal(err)
	}
	want := DefaultMapSizes
	want.PolicyRules, want.Conntrack = 1024, MaxMapSize
	if r.Maps != want {
		t.Errorf("maps = %+v, want %+v", r.Maps, want)
	}
	_, err = LoadBytes("m.yaml", []byte(`apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16, datapath: {maps: {endpoints: 0, policyPods: 1}}}
nodes: [{name: a, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}]
`))
	if want := "m.yaml:3:64: cluster.datapath.maps.endpoints: must be between 1 and 4194304 entries, got 0"; err == nil || err.Error() != want {
		t.Errorf("written 0: %v, want %s", err, want)
	}
}

func TestExplicitPolicyTypesKept(t *testing.T) {
	top := baseTopology()
	top.Policies[0].Spec.PolicyTypes = []string{"Egress"}
	r, err := Resolve(top, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Policies[0].Spec.PolicyTypes; !slices.Equal(got, []string{"Egress"}) {
		t.Errorf("policyTypes = %v", got)
	}
}

func TestExplicitZeroesAreChecked(t *testing.T) {
	// With positions, a vni or port written as 0 is an error, not a default.
	_, err := LoadBytes("t.yaml", []byte(`apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16, routing: {vxlan: {vni: 0, port: 0}}}
nodes: [{name: a, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}]
pods: [{name: p, node: a, ports: [{port: 0}]}]
`))
	want := "t.yaml:3:58: cluster.routing.vxlan.vni: must be between 1 and 16777215, got 0\n" +
		"t.yaml:3:67: cluster.routing.vxlan.port: port must be between 1 and 65535, got 0\n" +
		"t.yaml:5:42: pods[0].ports[0].port: port must be between 1 and 65535, got 0"
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}

// TestAllErrorsAtOnce checks that problems in every section, structural
// and semantic, come back together, in file order, each placed exactly.
func TestAllErrorsAtOnce(t *testing.T) {
	doc := `apiVersion: netreconcile/v1
kind: Topology
cluster:
  podCIDR: 10.244.0.0/16
  mode: tap
nodes:
  - name: a
    address: 172.31.1.2
    podCIDR: 10.244.1.0/24
    colour: blue
pods:
  - name: p
    node: b
  - name: q
    node: a
    ip: 10.244.1.1
  - name: r
    node: a
    ports: [{port: "80"}]
services:
  - name: web
    clusterIP: 10.96.0.1
    ports: [{port: 80}]
`
	_, err := LoadBytes("all.yaml", []byte(doc))
	want := []string{
		`all.yaml:5:9: cluster.mode: unknown mode "tap" (valid: veth, bridge, macvlan, ipvlan)`,
		`all.yaml:8:14: nodes[0].address: "172.31.1.2" needs a prefix length giving the underlay subnet, e.g. 172.31.1.2/24`,
		`all.yaml:10:5: nodes[0].colour: unknown field "colour"; valid fields: address, name, podCIDR, uplink`,
		`all.yaml:13:11: pods[0].node: unknown node "b" (nodes: a)`,
		`all.yaml:16:9: pods[1].ip: 10.244.1.1 is node "a"'s gateway address (the first host address of podCIDR 10.244.1.0/24 is reserved for the bridge/shim gateway)`,
		`all.yaml:19:20: pods[2].ports[0].port: expected an integer, got string "80"`,
	}
	// cluster.serviceCIDR is missing: reported at the cluster mapping.
	want = slices.Insert(want, 0, "all.yaml:4:3: cluster.serviceCIDR: required when services are defined")
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("got\n%v\nwant\n%s", err, strings.Join(want, "\n"))
	}
}

func TestResolveNil(t *testing.T) {
	if _, err := Resolve(nil, nil); err == nil {
		t.Error("nil topology accepted")
	}
}

func TestNamespaceOnlyUsedBySomething(t *testing.T) {
	top := baseTopology()
	top.Namespaces = nil
	top.Services[0].Namespace = "svc-only"
	top.Policies[0].Namespace = "pol-only"
	r, err := Resolve(top, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"x", "default", "svc-only", "pol-only"} {
		if r.Namespaces[ns][MetadataNameLabel] != ns {
			t.Errorf("namespace %s missing: %v", ns, r.Namespaces)
		}
	}
	if len(r.Namespaces) != 4 {
		t.Errorf("namespaces = %v", r.Namespaces)
	}
}

func TestErrorCap(t *testing.T) {
	top := baseTopology()
	for i := range 1200 {
		top.Pods = append(top.Pods, Pod{Name: fmt.Sprintf("Bad%d", i), Node: "node-a"})
	}
	_, err := Resolve(top, nil)
	var errs *Errors
	if !errors.As(err, &errs) || len(errs.List) != maxErrors+1 {
		t.Fatalf("want %d errors, got %v", maxErrors+1, err)
	}
	if !strings.Contains(errs.List[0].Msg, "too many errors; showing the first 1000") {
		t.Errorf("first error = %v", errs.List[0])
	}

	// Pods, services and policies are checked apart; the cap keeps what
	// checking them one after the other would: pods' problems first.
	count := func(errs *Errors, prefix string) int {
		n := 0
		for _, e := range errs.List {
			if strings.HasPrefix(e.Path, prefix) {
				n++
			}
		}
		return n
	}
	for _, c := range []struct{ pods, services, wantPods, wantServices int }{
		{1200, 10, 1000, 0},
		{10, 1200, 10, 990},
	} {
		top := baseTopology()
		top.Pods, top.Services = nil, nil
		for i := range c.pods {
			top.Pods = append(top.Pods, Pod{Name: fmt.Sprintf("Bad%d", i), Node: "node-a"})
		}
		for i := range c.services {
			top.Services = append(top.Services, Service{Name: fmt.Sprintf("Bad%d", i), ClusterIP: fmt.Sprintf("10.96.%d.%d", i/200, 1+i%200),
				Ports: []ServicePort{{Port: 80}}})
		}
		_, err := Resolve(top, nil)
		if !errors.As(err, &errs) || len(errs.List) != maxErrors+1 {
			t.Fatalf("%+v: want %d errors, got %v", c, maxErrors+1, err)
		}
		if p, s := count(errs, "pods["), count(errs, "services["); p != c.wantPods || s != c.wantServices {
			t.Errorf("%+v: %d pod and %d service errors kept", c, p, s)
		}
	}

	// The decoder stops walking and returns no topology.
	var b strings.Builder
	b.WriteString("x: 1\npods:\n")
	for range 1200 {
		b.WriteString("  - {bogus: 1}\n")
	}
	top2, _, err := Parse("t.yaml", []byte(b.String()))
	if top2 != nil || !errors.As(err, &errs) || len(errs.List) != maxErrors+1 {
		t.Fatalf("decoder: topology %v, %d errors", top2 != nil, len(errs.List))
	}
	if errs.List[0].Error() != "t.yaml: too many errors; showing the first 1000" {
		t.Errorf("first = %v", errs.List[0])
	}
}

// TestPastedNetworkPolicy: a NetworkPolicy pasted from Kubernetes is
// taken with its metadata's name and namespace; a wrong header or a name
// that contradicts metadata.name is a placed error.
func TestPastedNetworkPolicy(t *testing.T) {
	const head = `apiVersion: netreconcile/v1
kind: Topology
cluster: {podCIDR: 10.244.0.0/16}
nodes: [{name: n1, address: 172.31.1.2/24, podCIDR: 10.244.1.0/24}]
policies:
`
	r, err := LoadBytes("p.yaml", []byte(head+`  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: closed, namespace: x, labels: {team: a}}
    spec: {podSelector: {}}
`))
	if err != nil || len(r.Policies) != 1 || r.Policies[0].Key != "x/closed" {
		t.Fatalf("pasted policy: %v %+v", err, r)
	}
	for body, want := range map[string]string{
		"  - {apiVersion: networking.k8s.io/v1beta1, kind: NetworkPolicy, metadata: {name: a}, spec: {podSelector: {}}}\n": `p.yaml:6:18: policies[0].apiVersion: "networking.k8s.io/v1beta1": a NetworkPolicy here is networking.k8s.io/v1`,
		"  - {kind: Service, metadata: {name: a}, spec: {podSelector: {}}}\n":                                              `p.yaml:6:12: policies[0].kind: "Service": only NetworkPolicy objects belong in policies:`,
		"  - {name: a, metadata: {name: b}, spec: {podSelector: {}}}\n":                                                    `p.yaml:6:32: policies[0].metadata.name: "b" differs from name "a": write one of them`,
	} {
		_, err := LoadBytes("p.yaml", []byte(head+body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v\nwant %s", body, err, want)
		}
	}
}
