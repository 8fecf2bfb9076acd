package plan

import (
	"slices"
	"strings"

	"github.com/netreconcile/netreconcile/policy/compile"
	"github.com/netreconcile/netreconcile/state"
)

// The order of policy map writes. A connection is allowed when the
// egress side of its source and the ingress side of its destination both
// allow it; a side allows everything until it is isolated, and then what
// one of its rules allows. Rules are blocks {remote identity or any,
// protocol, aligned port block}: two rules either nest or are disjoint.
//
// The rule: while a plan's policy entries are written, every side allows
// no more than it did before, until every side allows no more than both
// before and after; only then does any side open up, to no more than it
// allows after. Every state in between allows at most what the old
// policies allowed or at most what the new ones allow (never a mix of
// the two, which could let through a connection that neither allows, as
// when the source's egress opens before the destination's ingress
// closes), and a write that fails leaves every pod no more open than the
// old or the new policies make it. Steps, in the plan's order:
//
//  1. close, side by side: isolate a side that the file newly isolates;
//     add the new rules the old state already allows (all of them on a
//     side that was not isolated: a newly isolated pod gets isolation
//     first, then rules, so a gap denies and never allows); add, for a
//     time, the overlap of each old rule about to go with each new rule
//     still to come (it allows only what both allow); delete the old
//     rules that no new rule covers (a tightening deletes its allow rules
//     while isolation stays in force).
//  2. identities: deletions, then creations and updates. Every side now
//     holds only rules that both the old and the new policies cover, so
//     a remote's identity moving from old to new changes no verdict
//     beyond what one of them gives.
//  3. open, side by side: add the remaining new rules; lift the isolation
//     of a side that the file no longer isolates (its rules are then
//     dead, and go after it, so nothing both allow is refused meanwhile);
//     delete the old rules that new ones cover, and the overlaps.
//  4. the revision, last: tracked connections are judged again only
//     against complete maps.
//
// A connection that both the old and the new policies allow on a side
// stays allowed throughout (an old rule and a new rule that allow it are
// both in place, or their overlap is, from step 1 to 3), except on a
// newly isolated side, which refuses new connections for the moment
// between its isolation and its rules. The block runs after the node's datapath and attachments and
// before any pod's endpoint, addresses and routes (see state.Kind), and
// after the deletions that make deleted pods unreachable.

// stepPart is the part of a pod side's change that a step runs.
type stepPart uint8

const (
	partWhole stepPart = iota // every write (a change applied on its own)
	partClose                 // step 1
	partOpen                  // step 3
)

// PolicyOp is one kind of write to a side.
type PolicyOp uint8

const (
	OpIsolate PolicyOp = iota
	OpUnisolate
	OpAddRule
	OpDeleteRule
)

// PolicyWrite is one map write of a side's change.
type PolicyWrite struct {
	Op   PolicyOp
	Rule string // rules: the rule's text
}

func (w PolicyWrite) String() string {
	switch w.Op {
	case OpIsolate:
		return "isolate"
	case OpUnisolate:
		return "lift isolation"
	case OpAddRule:
		return "add rule " + w.Rule
	}
	return "delete rule " + w.Rule
}

// policyBlock orders the policy changes among dels and puts (implied
// deletions excepted: the datapath's removal does them) as the rule above
// says, and returns the other changes of each apart. The steps of a side
// whose change has two parts carry more on the first.
func policyBlock(dels, puts []Change) (block, otherDels, otherPuts []Change) {
	// Counted first, so that each list is made once at its size: plans
	// at scale hold thousands of identities.
	n := map[state.Kind]int{}
	for _, cs := range [][]Change{dels, puts} {
		for i := range cs {
			if cs[i].ImpliedBy == "" {
				n[kindOf(&cs[i])]++
			}
		}
	}
	sides := make([]Change, 0, n[state.KindPodPolicy])
	ids := make([]Change, 0, n[state.KindPolicyIdentity])
	revs := make([]Change, 0, n[state.KindPolicyRevision])
	otherDels, otherPuts = make([]Change, 0, len(dels)), make([]Change, 0, len(puts))
	sort := func(cs []Change, others *[]Change) {
		for i := range cs {
			c := &cs[i]
			if c.ImpliedBy != "" {
				*others = append(*others, *c)
				continue
			}
			switch kindOf(c) {
			case state.KindPodPolicy:
				sides = append(sides, *c)
			case state.KindPolicyIdentity:
				ids = append(ids, *c)
			case state.KindPolicyRevision:
				revs = append(revs, *c)
			default:
				*others = append(*others, *c)
			}
		}
	}
	sort(dels, &otherDels)
	sort(puts, &otherPuts)
	// A side's change may run in two parts.
	block = make([]Change, 0, 2*len(sides)+len(ids)+len(revs))
	var open []Change
	for _, c := range sides {
		cw, ow := sideParts(c)
		if len(cw) > 0 {
			first := c
			first.part, first.writes, first.more = partClose, cw, len(ow) > 0
			block = append(block, first)
		}
		if len(ow) > 0 || len(cw) == 0 {
			c.part, c.writes = partOpen, ow
			open = append(open, c)
		}
	}
	block = append(block, ids...)
	block = append(block, open...)
	return append(block, revs...), otherDels, otherPuts
}

// sideWrites lists the writes of part of a pod side's change (see the
// rule above).
func sideWrites(c Change, part stepPart) []PolicyWrite {
	closing, opening := sideParts(c)
	if part == partClose {
		return closing
	}
	return opening
}

// sideParts returns the writes of the two parts of a pod side's change.
func sideParts(c Change) (closing, opening []PolicyWrite) {
	have, _ := c.Observed.(*state.PodPolicy)
	want, _ := c.Desired.(*state.PodPolicy)
	if c.Action == Delete {
		want = nil
	}
	oldOpen := have == nil || !have.Isolated
	newOpen := want == nil || !want.Isolated
	var haveRules, wantRules []string
	if have != nil {
		haveRules = have.Rules
	}
	if want != nil {
		wantRules = want.Rules
	}
	added, gone := ruleDiff(haveRules, wantRules)
	// Rules that the old state covers allow nothing it does not: they go
	// in while closing. Old rules that no new one covers go while
	// closing; the others, covered by new ones, once those are in.
	var lateAdds, earlyDels []string
	if !newOpen && oldOpen {
		closing = append(closing, PolicyWrite{Op: OpIsolate})
	}
	for _, r := range added {
		if oldOpen || covered(r, haveRules) {
			closing = append(closing, PolicyWrite{Op: OpAddRule, Rule: r})
		} else {
			lateAdds = append(lateAdds, r)
		}
	}
	for _, r := range gone {
		if !newOpen && !covered(r, wantRules) {
			earlyDels = append(earlyDels, r)
		}
	}
	// A connection that an old rule deleted early and a new rule added
	// late both allow would be refused in between: their overlap, a rule
	// that both the old and the new state cover, bridges the gap.
	bridges := bridgeRules(earlyDels, lateAdds, haveRules, wantRules)
	for _, r := range bridges {
		closing = append(closing, PolicyWrite{Op: OpAddRule, Rule: r})
	}
	for _, r := range earlyDels {
		closing = append(closing, PolicyWrite{Op: OpDeleteRule, Rule: r})
	}
	for _, r := range lateAdds {
		opening = append(opening, PolicyWrite{Op: OpAddRule, Rule: r})
	}
	if want == nil {
		opening = append(opening, PolicyWrite{Op: OpUnisolate})
	}
	for _, r := range gone {
		if !slices.Contains(earlyDels, r) {
			opening = append(opening, PolicyWrite{Op: OpDeleteRule, Rule: r})
		}
	}
	for _, r := range bridges {
		opening = append(opening, PolicyWrite{Op: OpDeleteRule, Rule: r})
	}
	return closing, opening
}

// bridgeRules returns the overlaps of rules of olds with rules of news
// that neither have nor want holds, once each, in order.
func bridgeRules(olds, news, have, want []string) []string {
	var out []string
	for _, o := range olds {
		x, err := compile.ParseRule(o)
		if err != nil {
			continue
		}
		for _, n := range news {
			y, err := compile.ParseRule(n)
			if err != nil {
				continue
			}
			both, ok := overlap(x, y)
			if !ok {
				continue
			}
			if r := both.String(); !slices.Contains(have, r) && !slices.Contains(want, r) && !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return out
}

// overlap returns the rule allowing what both a and b allow, if any
// connection is: remotes and aligned port blocks either nest or are
// disjoint, so the overlap is one rule.
func overlap(a, b compile.Rule) (compile.Rule, bool) {
	if a.Proto != b.Proto || (a.Remote != b.Remote && a.Remote != compile.Any && b.Remote != compile.Any) {
		return compile.Rule{}, false
	}
	both := a
	if a.Remote == compile.Any {
		both.Remote = b.Remote
	}
	wide, narrow := a, b
	if a.PortBits > b.PortBits {
		wide, narrow = b, a
	}
	if !contains(compile.Rule{Remote: compile.Any, Proto: a.Proto, Port: wide.Port, PortBits: wide.PortBits},
		compile.Rule{Remote: compile.Any, Proto: a.Proto, Port: narrow.Port, PortBits: narrow.PortBits}) {
		return compile.Rule{}, false
	}
	both.Port, both.PortBits = narrow.Port, narrow.PortBits
	return both, true
}

// ruleDiff returns the rules of want that have lacks, and those of have
// that want lacks, each in its list's order.
func ruleDiff(have, want []string) (added, gone []string) {
	in := func(xs []string) map[string]bool {
		m := make(map[string]bool, len(xs))
		for _, x := range xs {
			m[x] = true
		}
		return m
	}
	had, wanted := in(have), in(want)
	for _, r := range want {
		if !had[r] {
			added = append(added, r)
		}
	}
	for _, r := range have {
		if !wanted[r] {
			gone = append(gone, r)
		}
	}
	return added, gone
}

// covered reports whether one rule of rules allows every connection that
// rule r allows. A rule that does not parse is covered by nothing, which
// puts its addition late and its deletion early.
func covered(r string, rules []string) bool {
	x, err := compile.ParseRule(r)
	if err != nil {
		return false
	}
	for _, text := range rules {
		if !strings.Contains(text, "/"+x.Proto+"/") {
			continue
		}
		y, err := compile.ParseRule(text)
		if err == nil && contains(y, x) {
			return true
		}
	}
	return false
}

// contains reports whether rule outer allows every connection inner does.
func contains(outer, inner compile.Rule) bool {
	if outer.Proto != inner.Proto || (outer.Remote != compile.Any && outer.Remote != inner.Remote) ||
		outer.PortBits > inner.PortBits {
		return false
	}
	mask := ^uint16(0) << (16 - min(outer.PortBits, 16)) // 0 for every port
	return inner.Port&mask == outer.Port&mask
}
