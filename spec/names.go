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
	for _, r := range s {
		if r == '/' || r == ':' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Sprintf("invalid interface name %q: must not contain '/', ':' or whitespace", s)
		}
	}
	return ""
}

// maxNetnsName bounds netns names, which become files under /var/run/netns
// and appear in link aliases; 64 leaves room for both.
const maxNetnsName = 64

// checkNetns validates a pod's netns: a plain name (a file under
// /var/run/netns) or an absolute path to an existing namespace file. A
// name must not be able to escape /var/run/netns.
func checkNetns(s string) string {
	if strings.HasPrefix(s, "/") {
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
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Sprintf("invalid netns name %q: must not contain whitespace or control characters", s)
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
