package reach

import (
	"maps"
	"slices"

	"github.com/netreconcile/netreconcile/policy"
	"github.com/netreconcile/netreconcile/spec"
)

// model holds both files, the pods' classes and the changed connections
// found so far.
type model struct {
	old, new side
	classes  []*class
	classOf  map[string]*class // pod key -> class
	memo     map[memoKey]bool
	cells    []cell
}

// memoKey packs a question into one word, which hashes far faster than
// a struct with a string: class ids (22 bits each, some four million
// classes), port (16), protocol (2) and file (1).
type memoKey uint64

func newMemoKey(inNew bool, a, b *class, port int, proto string) memoKey {
	k := uint64(a.id)<<41 | uint64(b.id)<<19 | uint64(port)<<3 | uint64(protoIndex(proto))<<1
	if inNew {
		k |= 1
	}
	return memoKey(k)
}

func protoIndex(p string) int {
	switch p {
	case spec.ProtocolUDP:
		return 1
	case spec.ProtocolSCTP:
		return 2
	}
	return 0
}

// cell is a block of changed connections: from every pod of from to every
// pod of to (a service key when toService), the pods themselves aside
// when skipSelf.
type cell struct {
	from, to      []string
	skipSelf      bool
	toService     bool
	port          int
	proto         string
	before, after bool
}

func (c *cell) count() int {
	n := len(c.from) * len(c.to)
	if c.skipSelf {
		n -= len(c.from)
	}
	return n
}

// each calls fn for the cell's connections, in order, until fn is false.
func (c *cell) each(fn func(Connection) bool) {
	for _, f := range c.from {
		for _, t := range c.to {
			if c.skipSelf && f == t {
				continue
			}
			if !fn(Connection{From: f, To: t, Port: c.port, Protocol: c.proto, Before: word(c.before), After: word(c.after)}) {
				return
			}
		}
	}
}

func newModel(old, new *spec.Resolved, bo, bn map[portKey][]backend) *model {
	m := &model{
		old:  side{r: old, judge: policy.NewJudge(old), backends: bo},
		new:  side{r: new, judge: policy.NewJudge(new), backends: bn},
		memo: map[memoKey]bool{},
	}
	m.buildClasses()
	m.markPolicies()
	m.markSensitive()
	return m
}

func (m *model) common() []*class {
	var out []*class
	for _, c := range m.classes {
		if c.inOld && c.inNew {
			out = append(out, c)
		}
	}
	return out
}

// podConnections compares every pair of classes whose verdicts may have
// changed (mayChange), once per destination port: first the pairs whose
// source is rowish, then the others, so that no pair is compared twice.
func (m *model) podConnections() {
	common := m.common()
	for _, a := range common {
		if !m.rowish(a) {
			continue
		}
		for _, b := range common {
			if m.mayChange(a, b) {
				m.pair(a, b)
			}
		}
	}
	for _, b := range common {
		if !b.col && !b.nsChanged {
			continue
		}
		for _, a := range common {
			if !m.rowish(a) && m.mayChange(a, b) {
				m.pair(a, b)
			}
		}
	}
}

func (m *model) pair(a, b *class) {
	if a == b && len(a.members) < 2 {
		return // a pod may always talk to itself
	}
	for _, pp := range b.ports {
		before := m.allowed(false, a, b, pp.port, pp.proto)
		after := m.allowed(true, a, b, pp.port, pp.proto)
		if before != after {
			m.cells = append(m.cells, cell{from: a.members, to: b.members, skipSelf: a == b,
				port: pp.port, proto: pp.proto, before: before, after: after})
		}
	}
}

// allowed asks the evaluator, once per pair of classes, port and file,
// whether a member of a may connect to another pod of b.
func (m *model) allowed(inNew bool, a, b *class, port int, proto string) bool {
	k := newMemoKey(inNew, a, b, port, proto)
	if v, ok := m.memo[k]; ok {
		return v
	}
	src, dst := a.members[0], b.members[0]
	v := true // a class of one pod talking to itself
	if a == b && len(a.members) > 1 {
		dst = a.members[1]
	}
	if a != b || len(a.members) > 1 {
		j := m.old.judge
		if inNew {
			j = m.new.judge
		}
		v = j.Allowed(policy.PodEndpoint(src), policy.PodEndpoint(dst), port, proto)
	}
	m.memo[k] = v
	return v
}

// serviceConnections compares, for every service port of either file,
// the sources whose verdict may have changed: all of them when the
// backends changed, else those for which mayChange holds toward a backend.
func (m *model) serviceConnections() {
	keys := slices.Collect(maps.Keys(m.old.backends))
	for k := range m.new.backends {
		if _, ok := m.old.backends[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, comparePortKey)
	common := m.common()
	var rows []*class
	for _, c := range common {
		if m.rowish(c) {
			rows = append(rows, c)
		}
	}
	for _, k := range keys {
		ob, nb := m.old.backends[k], m.new.backends[k]
		ot, nt := m.targets(ob), m.targets(nb)
		all := !slices.Equal(ob, nb)
		sources := rows
		if all || slices.ContainsFunc(slices.Concat(ot, nt), func(t target) bool { return t.c.col || t.c.nsChanged }) {
			sources = common
		}
		for _, a := range sources {
			if all || m.towards(a, ot) || m.towards(a, nt) {
				m.service(a, k, ot, nt)
			}
		}
	}
}

// towards reports whether a verdict from a to one of the targets may
// have changed.
func (m *model) towards(a *class, targets []target) bool {
	return slices.ContainsFunc(targets, func(t target) bool { return m.mayChange(a, t.c) })
}
