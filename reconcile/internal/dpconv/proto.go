package dpconv

import "strconv"

var protoNumbers = map[string]uint8{"TCP": 6, "UDP": 17, "SCTP": 132}

// ProtoNumber is the IP protocol number of a service's or a rule's
// protocol name (0 for an unknown name).
func ProtoNumber(name string) uint8 { return protoNumbers[name] }

// ProtoName names IP protocol p as the plan does: TCP, UDP, SCTP, or
// the number.
func ProtoName(p uint8) string {
	for name, n := range protoNumbers {
		if n == p {
			return name
		}
	}
	return strconv.Itoa(int(p))
}
