package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/netreconcile/netreconcile/spec"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrUnknownPod marks a namespace/pod that the file does not declare.
	ErrUnknownPod = errors.New("no such pod in the topology")
	// ErrBadEndpoint marks text that is neither namespace/pod nor an address.
	ErrBadEndpoint = errors.New("want namespace/pod or an IP address")
	// ErrBadPort marks a port outside 1-65535 or malformed PORT/PROTO text.
	ErrBadPort = errors.New("invalid port")
	// ErrBadProtocol marks a protocol other than TCP, UDP and SCTP (with
	// a port), ICMP and PROTO/N (without).
	ErrBadProtocol = errors.New("unsupported protocol")
	// ErrBadMatrix marks a reachability table that cannot be parsed or
	// whose shape does not fit its pod list.
	ErrBadMatrix = errors.New("invalid reachability matrix")
)

// Endpoint is one end of a connection: a pod declared in the file, named
// by its key (namespace/name), or a bare address. An address that belongs
// to a declared pod is judged as that pod; any other address is outside
// the cluster.
type Endpoint struct {
	// Pod is the pod key; empty for a bare address.
	Pod string `json:"pod,omitempty"`
	// IP is the address; Evaluate fills it in for pods.
	IP netip.Addr `json:"ip,omitzero"`
}

// PodEndpoint returns the endpoint for the pod with key namespace/name.
func PodEndpoint(key string) Endpoint { return Endpoint{Pod: key} }

// AddrEndpoint returns the endpoint for a bare address.
func AddrEndpoint(ip netip.Addr) Endpoint { return Endpoint{IP: ip} }

// String prints the pod key, or the address for a bare address.
func (e Endpoint) String() string {
	if e.Pod != "" {
		return e.Pod
	}
	if e.IP.IsValid() {
		return e.IP.String()
	}
	return "<nowhere>"
}

// ParseEndpoint reads FROM/TO as the command line gives them: namespace/pod
// or an IP address. The pod must exist in r; an address is resolved to the
// pod that has it, so that messages name the pod.
func ParseEndpoint(r *spec.Resolved, s string) (Endpoint, error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		ip = ip.Unmap()
		for _, p := range r.Pods {
			if p.IP == ip {
				return Endpoint{Pod: p.Key, IP: ip}, nil
			}
		}
		return AddrEndpoint(ip), nil
	}
	if _, err := netip.ParsePrefix(s); err == nil {
		return Endpoint{}, fmt.Errorf("parse endpoint %q: give a bare address, without a prefix length: %w", s, ErrBadEndpoint)
	}
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return Endpoint{}, fmt.Errorf("parse endpoint %q: %w", s, ErrBadEndpoint)
	}
	if !slices.ContainsFunc(r.Pods, func(p spec.ResolvedPod) bool { return p.Key == s }) {
		return Endpoint{}, fmt.Errorf("find pod %q: %w", s, ErrUnknownPod)
	}
	return PodEndpoint(s), nil
}

// ParsePort reads PORT/PROTO (80/TCP, 53/udp) or a bare PORT, which means
// TCP as in Kubernetes, or a protocol without ports (see Portless): ICMP,
// or PROTO/N for IP protocol number N, whose port is 0. The protocol comes
// back in upper case.
func ParsePort(s string) (int, string, error) {
	if proto, ok, err := parsePortless(s); ok {
		if err != nil {
			return 0, "", fmt.Errorf("parse port %q: %w", s, err)
		}
		return 0, proto, nil
	}
	num, proto, hasProto := strings.Cut(s, "/")
	port, err := strconv.Atoi(num)
	if err != nil {
		return 0, "", fmt.Errorf("parse port %q: want PORT, PORT/PROTO (like 80/TCP), ICMP or PROTO/N: %w", s, ErrBadPort)
	}
	if err := checkPort(port); err != nil {
		return 0, "", fmt.Errorf("parse port %q: %w", s, err)
	}
	if !hasProto {
		return port, spec.ProtocolTCP, nil
	}
	proto = strings.ToUpper(proto)
	if err := checkProtocol(proto); err != nil {
		return 0, "", fmt.Errorf("parse port %q: %w", s, err)
	}
	return port, proto, nil
}

func checkPort(port int) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("%w %d: must be between 1 and 65535", ErrBadPort, port)
	}
	return nil
}

func checkProtocol(proto string) error {
	if p, ok, err := parsePortless(proto); ok && err == nil {
		return fmt.Errorf("%w %q: %s has no ports: give %s alone", ErrBadProtocol, proto, p, p)
	}
	if !slices.Contains(spec.Protocols, proto) {
		return fmt.Errorf("%w %q (valid: %s with a port; ICMP or PROTO/N alone)", ErrBadProtocol, proto, strings.Join(spec.Protocols, ", "))
	}
	return nil
}
