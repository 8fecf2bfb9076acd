package policy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/netreconcile/netreconcile/spec"
)

// ProtocolICMP is ICMP, which has no ports.
const ProtocolICMP = "ICMP"

// numberedPrefix spells an IP protocol by number: PROTO/47.
const numberedPrefix = "PROTO/"

// portProtocols maps the IP protocol numbers of the protocols that have
// ports to their names: PROTO/6 must be asked as PORT/TCP.
var portProtocols = map[int]string{6: spec.ProtocolTCP, 17: spec.ProtocolUDP, 132: spec.ProtocolSCTP}

// Portless reports whether proto (as ParseProtocol returns it) has no
// ports: ICMP or a numbered protocol. NetworkPolicy ports cannot name
// them, so the datapath denies them in each direction in which a pod is
// isolated (bpf/policy.h), whatever the rules say.
func Portless(proto string) bool {
	return proto == ProtocolICMP || strings.HasPrefix(proto, numberedPrefix)
}

// parsePortless reads a protocol without ports: ICMP (any case) or
// PROTO/N for an IP protocol number N (0-255; 1 is ICMP). ok is false
// when s is neither.
func parsePortless(s string) (proto string, ok bool, err error) {
	up := strings.ToUpper(s)
	if up == ProtocolICMP {
		return ProtocolICMP, true, nil
	}
	num, found := strings.CutPrefix(up, numberedPrefix)
	if !found {
		return "", false, nil
	}
	n, err := strconv.Atoi(num)
	switch {
	case err != nil || n < 0 || n > 255:
		return "", true, fmt.Errorf("%w %q: want PROTO/N with N an IP protocol number (0-255)", ErrBadProtocol, s)
	case portProtocols[n] != "":
		return "", true, fmt.Errorf("%w %q: protocol %d is %s, which has ports: give PORT/%s", ErrBadProtocol, s, n,
			portProtocols[n], portProtocols[n])
	case n == 1:
		return ProtocolICMP, true, nil
	}
	return numberedPrefix + strconv.Itoa(n), true, nil
}

// portlessReason is the line explain prints for a protocol without ports.
func portlessReason(proto string) string {
	if proto == ProtocolICMP {
		return "ICMP has no ports: denied where a pod is isolated; ICMP errors of allowed connections pass"
	}
	return "protocol " + strings.TrimPrefix(proto, numberedPrefix) + " has no ports: denied where a pod is isolated"
}

// target checks a port and protocol as Evaluate takes them and returns
// the protocol's canonical spelling (PROTO/1 is ICMP).
func target(port int, proto string) (string, error) {
	if Portless(proto) {
		p, _, err := parsePortless(proto)
		if err != nil {
			return "", err
		}
		if port != 0 {
			return "", fmt.Errorf("%w %s on port %d: it has no ports (give port 0)", ErrBadProtocol, p, port)
		}
		return p, nil
	}
	if err := checkPort(port); err != nil {
		return "", err
	}
	return proto, checkProtocol(proto)
}
