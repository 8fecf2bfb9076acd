package spec

import (
	"fmt"
	"net/netip"
	"path"
	"strings"
	"unicode"
)

// Syntax rules for names, shared with Kubernetes where the concept is
// Kubernetes' (object names, label keys and values, port names) so that a
// file written for one reads the same in the other. Each check returns ""
// when the value is valid and a message otherwise.

// The Kubernetes rules below are written as loops: the regular
// expressions they replace (kept in names_test.go, which holds both equal)
// cost most of validating a file of thousands of services.

// isDNSLabel is ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ (also IANA_SVC_NAME's
// characters).
func isDNSLabel(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(s)-1) {
			return false
		}
	}
	return true
}

// isDNSSubdomain is dot-separated DNS labels.
func isDNSSubdomain(s string) bool {
	for part := range strings.SplitSeq(s, ".") {
		if !isDNSLabel(part) {
			return false
		}
	}
	return true
}

// isQualifiedName is ^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$.
func isQualifiedName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && !((c == '-' || c == '_' || c == '.') && i > 0 && i < len(s)-1) {
			return false
		}
	}
	return true
}

func hasLowerLetter(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' })
}

// checkDNSLabel validates an object name (RFC 1123 label).
func checkDNSLabel(s string) string {
	if len(s) > 63 || !isDNSLabel(s) {
		return fmt.Sprintf("invalid name %q: must be a lowercase RFC 1123 label "+
			"(letters a-z, digits and '-', starting and ending with a letter or digit, at most 63 characters)", s)
	}
	return ""
}

// checkLabelKey validates a label key: an optional DNS subdomain prefix
// and '/', then a name of at most 63 characters.
func checkLabelKey(k string) string {
	prefix, name, slashed := strings.Cut(k, "/")
	if !slashed {
		prefix, name = "", k
	}
	switch {
	case k == "":
		return "label key must not be empty"
	case slashed && prefix == "":
		return fmt.Sprintf("invalid label key %q: the prefix before '/' must not be empty", k)
	case prefix != "" && (len(prefix) > 253 || !isDNSSubdomain(prefix)):
		return fmt.Sprintf("invalid label key %q: the prefix must be a lowercase DNS subdomain (e.g. example.com)", k)
	case name == "":
		return fmt.Sprintf("invalid label key %q: the name after the prefix must not be empty", k)
	case len(name) > 63 || !isQualifiedName(name):
		return fmt.Sprintf("invalid label key %q: the name must be at most 63 characters of letters, digits, '-', '_' and '.', "+
			"starting and ending with a letter or digit", k)
	}
	return ""
}

// checkLabelValue validates a label value, which may be empty.
func checkLabelValue(v string) string {
	if v == "" {
		return ""
	}
	if len(v) > 63 || !isQualifiedName(v) {
		return fmt.Sprintf("invalid label value %q: must be empty or at most 63 characters of letters, digits, '-', '_' and '.', "+
			"starting and ending with a letter or digit", v)
	}
	return ""
}

// checkPortName validates a named port (IANA_SVC_NAME, RFC 6335), which is
// what policies and targetPort refer to.
func checkPortName(s string) string {
	switch {
	case len(s) == 0 || len(s) > 15:
		return fmt.Sprintf("invalid port name %q: must be 1 to 15 characters", s)
	case !isDNSLabel(s):
		return fmt.Sprintf("invalid port name %q: must be lowercase letters, digits and '-', starting and ending with a letter or digit", s)
	case strings.Contains(s, "--"):
		return fmt.Sprintf("invalid port name %q: must not contain \"--\"", s)
	case !hasLowerLetter(s):
		return fmt.Sprintf("invalid port name %q: must contain at least one letter", s)
	}
	return ""
}

// checkIfName applies the kernel's rule for interface names
// (dev_valid_name): 1 to 15 bytes, not "." or "..", no '/', ':' or
// whitespace.
func checkIfName(s string) string {
	if s == "" || len(s) > 15 {
		return fmt.Sprintf("invalid interface name %q: must be 1 to 15 characters", s)
	}
	if s == "." || s == ".." {
		return fmt.Sprintf("invalid interface name %q", s)
	}
	if msg := invisible(s); msg != "" {
		return fmt.Sprintf("invalid interface name %q: %s", s, msg)
	}
	for _, r := range s {
		if r == '/' || r == ':' || unicode.IsSpace(r) {
			return fmt.Sprintf("invalid interface name %q: must not contain '/', ':' or whitespace", s)
		}
	}
	return ""
}

// invisibleRunes are format characters that change how a name reads
// without being seen: bidirectional controls reorder what a terminal
// shows (a name can display as another), zero-width characters make two
// names that look the same differ. Names that reach the kernel or the
// file system must mean what they show.
var invisibleRunes = map[rune]string{
	0x061C: "arabic letter mark, a bidirectional control",
	0x200E: "left-to-right mark, a bidirectional control",
	0x200F: "right-to-left mark, a bidirectional control",
	0x202A: "left-to-right embedding, a bidirectional control",
	0x202B: "right-to-left embedding, a bidirectional control",
	0x202C: "pop directional formatting, a bidirectional control",
	0x202D: "left-to-right override, a bidirectional control",
	0x202E: "right-to-left override, a bidirectional control",
	0x2066: "left-to-right isolate, a bidirectional control",
	0x2067: "right-to-left isolate, a bidirectional control",
	0x2068: "first strong isolate, a bidirectional control",
	0x2069: "pop directional isolate, a bidirectional control",
	0x200B: "zero width space",
	0x200C: "zero width non-joiner",
	0x200D: "zero width joiner",
	0x2060: "word joiner, a zero-width character",
	0xFEFF: "zero width no-break space (byte order mark)",
}

// invisible names the first control, bidirectional or zero-width
// character of s and its position (1-based, in characters), or returns ""
// when there is none.
func invisible(s string) string {
	pos := 0
	for _, r := range s {
		pos++
		what, bad := invisibleRunes[r]
		if !bad && unicode.IsControl(r) {
			what, bad = "a control character", true
		}
		if bad {
			return fmt.Sprintf("character U+%04X (%s) at position %d is not allowed", r, what, pos)
		}
	}
	return ""
}

// Link names netreconcile creates in a node namespace: an uplink of one
// of these names would be a device it manages. drivers/names_test.go
// keeps them in step with the drivers.
var ownLinkNames = map[string]string{
	"nrbr0":    "netreconcile's bridge (bridge mode)",
	"nrmv0":    "netreconcile's macvlan shim",
	"nrip0":    "netreconcile's ipvlan shim",
	"nrvxlan0": "netreconcile's VXLAN device",
}

// OwnLinkName says which of netreconcile's own devices name is named
// like, or returns "" when it is none: the bridge, the shims, the VXLAN
// device, or a pod's host-side veth ("nr" and eight hex digits).
func OwnLinkName(name string) string {
	if what, ok := ownLinkNames[name]; ok {
		return what
	}
	if rest, ok := strings.CutPrefix(name, "nr"); ok && len(rest) == 8 && isLowerHex(rest) {
		return `a pod's host-side veth ("nr" and eight hex digits)`
	}
	return ""
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// maxNetnsName bounds netns names, which become files under /var/run/netns
// and appear in link aliases; 64 leaves room for both.
const maxNetnsName = 64

// checkNetns validates a pod's netns: a plain name (a file under
// /var/run/netns) or an absolute path to an existing namespace file. A
// name must not be able to escape /var/run/netns.
func checkNetns(s string) string {
	if strings.HasPrefix(s, "/") {
		if under := kernelFS(path.Clean(s)); under != "" {
			return fmt.Sprintf("invalid netns path %q: a path under %s names a process's or a device's namespace, not a pod's; "+
				"give a name, or a namespace bind-mounted elsewhere (e.g. /run/netns/NAME)", s, under)
		}
		if msg := invisible(s); msg != "" {
			return fmt.Sprintf("invalid netns path %q: %s", s, msg)
		}
		if s == "/" || path.Clean(s) != s {
			return fmt.Sprintf("invalid netns path %q: an absolute path must be clean (no '.', '..', '//' or trailing '/')", s)
		}
		return ""
	}
	switch {
	case strings.Contains(s, "/"):
		return fmt.Sprintf("invalid netns %q: must be a plain name (no '/') or an absolute path", s)
	case strings.Contains(s, ".."), s == ".":
		return fmt.Sprintf("invalid netns name %q: must not be '.' or contain \"..\"", s)
	case len(s) > maxNetnsName:
		return fmt.Sprintf("invalid netns name %q: longer than %d characters", s, maxNetnsName)
	}
	if msg := invisible(s); msg != "" {
		return fmt.Sprintf("invalid netns name %q: %s", s, msg)
	}
	if strings.ContainsFunc(s, unicode.IsSpace) {
		return fmt.Sprintf("invalid netns name %q: must not contain whitespace", s)
	}
	return ""
}

// kernelFS returns the kernel file system a clean absolute path lies in
// ("/proc" or "/dev"), or "". A pod given /proc/1/ns/net would be wired
// into the host's own namespace.
func kernelFS(clean string) string {
	for _, dir := range []string{"/proc", "/dev"} {
		if clean == dir || strings.HasPrefix(clean, dir+"/") {
			return dir
		}
	}
	return ""
}

// netnsIdentity maps a netns to what it names on disk, so that "x" and
// "/var/run/netns/x" count as the same namespace.
func netnsIdentity(s string) string {
	for _, dir := range []string{"/var/run/netns/", "/run/netns/"} {
		if rest, ok := strings.CutPrefix(s, dir); ok && rest != "" && !strings.Contains(rest, "/") {
			return rest
		}
	}
	return s
}

// broadcast returns the last address of an IPv4 prefix.
func broadcast(p netip.Prefix) netip.Addr {
	network := addrToU32(p.Masked().Addr())
	return u32ToAddr(network | (1<<(32-p.Bits()) - 1))
}
