package spec

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// The Kubernetes expressions the loops in names.go implement.
var (
	dns1123LabelRe     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1123SubdomainRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	qualifiedNameRe    = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	hasLetterRe        = regexp.MustCompile(`[a-z]`)
)

// TestNameRulesMatchKubernetes holds each loop equal to its expression on
// random strings over the characters that matter, and on edge cases.
func TestNameRulesMatchKubernetes(t *testing.T) {
	const alphabet = "az09AZ-_./ é\n"
	cases := []string{"", "a", "-", "a-", "-a", "a-b", "a..b", ".a", "a.", "A", "a_b", "_a", "a_", "ab\n", "é"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		n := r.IntN(8)
		b := make([]byte, 0, n)
		for range n {
			b = append(b, alphabet[r.IntN(len(alphabet))])
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		if got, want := isDNSLabel(s), dns1123LabelRe.MatchString(s); got != want {
			t.Errorf("isDNSLabel(%q) = %v, regexp %v", s, got, want)
		}
		if got, want := isDNSSubdomain(s), dns1123SubdomainRe.MatchString(s); got != want {
			t.Errorf("isDNSSubdomain(%q) = %v, regexp %v", s, got, want)
		}
		if got, want := isQualifiedName(s), qualifiedNameRe.MatchString(s); got != want {
			t.Errorf("isQualifiedName(%q) = %v, regexp %v", s, got, want)
		}
		if got, want := hasLowerLetter(s), hasLetterRe.MatchString(s); got != want {
			t.Errorf("hasLowerLetter(%q) = %v, regexp %v", s, got, want)
		}
	}
}
