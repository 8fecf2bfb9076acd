package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/netreconcile/netreconcile/internal/attack"
)

// TestExplainICMPMatchesDatapath: between every ordered pair of the
// defences lab's pods (v ingress-isolated, e egress-isolated, the others
// not isolated), an ICMP echo gets its reply exactly when `explain ...
// icmp` says ALLOWED: the datapath drops ICMP wherever a side is
// isolated, even towards a port the policies open.
func TestExplainICMPMatchesDatapath(t *testing.T) {
	l := newDefLab(t)
	denied := 0
	for _, from := range defPods {
		for _, to := range defPods {
			if from.name == to.name {
				continue
			}
			word := l.explainWord(t, "t/"+from.name, "t/"+to.name, "icmp")
			wait := 3 * time.Second // an allowed echo: its reply comes
			if word == "DENIED" {
				denied++
				wait = time.Second // nothing tells a dropped echo: wait a while
			}
			got, err := attack.Ping(l.ns(from.name), l.ip(to.name), wait)
			if err != nil {
				t.Fatal(err)
			}
			if got != (word == "ALLOWED") {
				t.Errorf("%s -> %s ICMP echo: explain says %s, but the reply came: %v", from.name, to.name, word, got)
			}
		}
	}
	// v is isolated for 4 sources and e for 4 destinations, one pair
	// being both: a check that explain denies what it should.
	if denied != 7 {
		t.Errorf("explain denied ICMP for %d pairs, want 7 (to v, from e)", denied)
	}
}

// explainWord runs explain on the lab's file and returns ALLOWED or DENIED.
func (l *defLab) explainWord(t *testing.T, from, to, what string) string {
	t.Helper()
	word, _, _ := strings.Cut(l.mustRun("explain", "-f", l.file, from, to, what), " ")
	return word
}
