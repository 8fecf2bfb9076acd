package plan

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/netreconcile/netreconcile/policy/compile"
	"github.com/netreconcile/netreconcile/state"
)

func side(ip string, isolated bool, rules ...string) *state.PodPolicy {
	return &state.PodPolicy{IP: netip.MustParseAddr(ip), Direction: "ingress", Isolated: isolated, Rules: rules,
		OwnerK: "policy/x/" + ip}
}

// sideChange is the change Diff makes from have to want (nil: absent).
func sideChange(have, want *state.PodPolicy) Change {
	c := Change{Action: Update, Kind: state.KindPodPolicy.String(), Desired: want, Observed: have}
	switch {
	case have == nil:
		c.Action, c.Observed = Create, nil
	case want == nil:
		c.Action, c.Desired = Delete, nil
	}
	if want != nil {
		c.Key, c.Owner = want.Key(), want.Owner()
	} else {
		c.Key, c.Owner = have.Key(), have.Owner()
	}
	return c
}

func writesText(ws []PolicyWrite) string {
	var out []string
	for _, w := range ws {
		out = append(out, w.String())
	}
	return strings.Join(out, "; ")
}

// TestSideWrites: each kind of change to a side, split into the part that
// closes and the part that opens.
func TestSideWrites(t *testing.T) {
	const a, b = "0000000a/TCP/80", "0000000b/TCP/80"
	for _, tc := range []struct {
		name        string
		have, want  *state.PodPolicy
		close, open string
	}{
		{"newly isolated: isolation, then rules", nil, side("10.0.0.1", true, a, b),
			"isolate; add rule " + a + "; add rule " + b, ""},
		{"isolation lifted, then its dead rules go", side("10.0.0.1", true, a, b), nil,
			"", "lift isolation; delete rule " + a + "; delete rule " + b},
		{"a rule removed: deleted while isolated", side("10.0.0.1", true, a, b), side("10.0.0.1", true, a),
			"delete rule " + b, ""},
		{"a rule added: opens", side("10.0.0.1", true, a), side("10.0.0.1", true, a, b),
			"", "add rule " + b},
		{"narrowed: the narrow rule before the wide one goes", side("10.0.0.1", true, "any/TCP/all"),
			side("10.0.0.1", true, a), "add rule " + a + "; delete rule any/TCP/all", ""},
		{"widened: the wide rule before the narrow one goes", side("10.0.0.1", true, a),
			side("10.0.0.1", true, "any/TCP/64-127"), "", "add rule any/TCP/64-127; delete rule " + a},
		{"left open by a failure: isolation first, stale rules go", side("10.0.0.1", false, b),
			side("10.0.0.1", true, a), "isolate; add rule " + a + "; delete rule " + b, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sideChange(tc.have, tc.want)
			if got := writesText(sideWrites(c, partClose)); got != tc.close {
				t.Errorf("close part: %q, want %q", got, tc.close)
			}
			if got := writesText(sideWrites(c, partOpen)); got != tc.open {
				t.Errorf("open part: %q, want %q", got, tc.open)
			}
		})
	}
}

// mapModel is the policy maps of the datapath, as far as verdicts go.
type mapModel struct {
	isolated map[string]bool            // side key
	rules    map[string]map[string]bool // side key -> rule texts
}

func modelOf(sides []*state.PodPolicy) *mapModel {
	m := &mapModel{isolated: map[string]bool{}, rules: map[string]map[string]bool{}}
	for _, s := range sides {
		if s == nil {
			continue
		}
		m.isolated[s.Key()] = s.Isolated
		m.rules[s.Key()] = map[string]bool{}
		for _, r := range s.Rules {
			m.rules[s.Key()][r] = true
		}
	}
	return m
}

func (m *mapModel) write(key string, w PolicyWrite) {
	if m.rules[key] == nil {
		m.rules[key] = map[string]bool{}
	}
	switch w.Op {
	case OpIsolate:
		m.isolated[key] = true
	case OpUnisolate:
		delete(m.isolated, key)
	case OpAddRule:
		m.rules[key][w.Rule] = true
	case OpDeleteRule:
		delete(m.rules[key], w.Rule)
	}
}

// allows reports whether side key lets conn ("remote/proto/port") in.
func (m *mapModel) allows(key string, conn compile.Rule) bool {
	if !m.isolated[key] {
		return true
	}
	for r := range m.rules[key] {
		if x, err := compile.ParseRule(r); err == nil && contains(x, conn) {
			return true
		}
	}
	return false
}

// TestPolicyBlockNeverMixes applies the steps of random policy changes to
// several sides through a model of the maps and checks the rule written in
// policyorder.go after every write: the node allows at most what the old
// policies allowed, or at most what the new ones allow; what both allow on
// a side isolated before and after is never refused.
func TestPolicyBlockNeverMixes(t *testing.T) {
	pool := []string{"any/TCP/all", "any/TCP/80", "any/UDP/64-127", "0000000a/TCP/80", "0000000a/TCP/64-127",
		"0000000b/TCP/all", "0000000b/UDP/80", "0000000a/UDP/all", "any/TCP/64-127"}
	var conns []compile.Rule
	for _, remote := range []uint32{0xa, 0xb, 0xc} {
		for _, proto := range []string{"TCP", "UDP"} {
			for _, port := range []uint16{80, 81, 100, 443} {
				conns = append(conns, compile.Rule{Remote: remote, Proto: proto, Port: port, PortBits: 16})
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 14))
	randomSide := func(ip string) *state.PodPolicy {
		if rng.IntN(4) == 0 {
			return nil
		}
		var rules []string
		for _, r := range pool {
			if rng.IntN(3) == 0 {
				rules = append(rules, r)
			}
		}
		slices.Sort(rules)
		return side(ip, rng.IntN(8) != 0, rules...)
	}
	ips := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}
	for round := range 2000 {
		var olds, news []*state.PodPolicy
		var dels, puts []Change
		for _, ip := range ips {
			have, want := randomSide(ip), randomSide(ip)
			if want != nil {
				want.Isolated = true // as desiredPolicy makes them
			}
			olds, news = append(olds, have), append(news, want)
			switch {
			case have == nil && want == nil:
			case want == nil:
				dels = append(dels, sideChange(have, want))
			case have == nil || !slices.Equal(have.Rules, want.Rules) || !have.Isolated:
				puts = append(puts, sideChange(have, want))
			}
		}
		block, _, _ := policyBlock(dels, puts)
		before, after, live := modelOf(olds), modelOf(news), modelOf(olds)
		check := func(step string) {
			subOld, subNew := true, true
			for _, ip := range ips {
				key := ip + "/ingress"
				wasIsolated := before.isolated[key]
				for _, conn := range conns {
					got := live.allows(key, conn)
					subOld = subOld && (!got || before.allows(key, conn))
					subNew = subNew && (!got || after.allows(key, conn))
					if wasIsolated && after.isolated[key] && before.allows(key, conn) && after.allows(key, conn) && !got {
						t.Fatalf("round %d, after %s: %s to %s refused, though both the old and the new rules allow it",
							round, step, conn, ip)
					}
				}
			}
			if !subOld && !subNew {
				t.Fatalf("round %d, after %s: more open than both the old and the new policies\nold %v\nnew %v",
					round, step, describe3(olds), describe3(news))
			}
		}
		for _, c := range block {
			for _, w := range c.writes {
				live.write(c.Key, w)
				check(fmt.Sprintf("%s on %s", w, c.Key))
			}
		}
		for _, ip := range ips {
			key := ip + "/ingress"
			for _, conn := range conns {
				if live.allows(key, conn) != after.allows(key, conn) {
					t.Fatalf("round %d: %s to %s: the block does not end at the new policies", round, conn, ip)
				}
			}
		}
	}
}

func describe3(sides []*state.PodPolicy) string {
	var out []string
	for _, s := range sides {
		if s == nil {
			out = append(out, "open")
			continue
		}
		out = append(out, fmt.Sprintf("isolated=%v %v", s.Isolated, s.Rules))
	}
	return strings.Join(out, " | ")
}
