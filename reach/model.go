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

type memoKey struct {
	new   bool
	a, b  int
	port  int
	proto string
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
// changed (a changed source row or destination column), once per
// destination port.
func (m *model) podConnections() {
	common := m.common()
	for _, a := range common {
		if !a.row {
			continue
		}
		for _, b := range common {
			m.pair(a, b)
		}
	}
	for _, b := range common {
		if !b.col {
			continue
		}
		for _, a := range common {
			if !a.row {
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
	k := memoKey{new: inNew, a: a.id, b: b.id, port: port, proto: proto}
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
		v = j.Evaluate(policy.PodEndpoint(src), policy.PodEndpoint(dst), port, proto).Allowed
	}
	m.memo[k] = v
	return v
}

// serviceConnections compares, for every service port of either file,
// the sources whose verdict may have changed: all of them when the
// backends changed or a backend's ingress may have, else the changed rows.
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
		if c.row {
			rows = append(rows, c)
		}
	}
	for _, k := range keys {
		ob, nb := m.old.backends[k], m.new.backends[k]
		sources := rows
		if !slices.Equal(ob, nb) || m.anyCol(ob) || m.anyCol(nb) {
			sources = common
		}
		for _, a := range sources {
			m.service(a, k, ob, nb)
		}
	}
}

func (m *model) anyCol(list []backend) bool {
	return slices.ContainsFunc(list, func(b backend) bool { return m.classOf[b.pod].col })
}
