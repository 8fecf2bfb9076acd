package reach

import (
	"cmp"
	"slices"
	"strings"
)

type groupKey struct {
	from, to      string
	toService     bool
	port          int
	proto         string
	before, after bool
}

func namespaceOf(key string) string {
	ns, _, _ := strings.Cut(key, "/")
	return ns
}

// groups sums the cells by source namespace, destination namespace (or
// service), port and protocol, and change; it returns them in order with
// the total.
func (m *model) groups() ([]Group, int) {
	byKey := map[groupKey]*Group{}
	total := 0
	for i := range m.cells {
		c := &m.cells[i]
		k := groupKey{from: namespaceOf(c.from[0]), to: namespaceOf(c.to[0]), toService: c.toService,
			port: c.port, proto: c.proto, before: c.before, after: c.after}
		kind := "pod"
		if c.toService {
			k.to, kind = c.to[0], "service"
		}
		g := byKey[k]
		if g == nil {
			g = &Group{FromNamespace: k.from, To: k.to, ToKind: kind, Port: k.port, Protocol: k.proto,
				Before: word(k.before), After: word(k.after)}
			byKey[k] = g
		}
		n := c.count()
		g.Count += n
		total += n
		g.cells = append(g.cells, *c)
	}
	out := make([]Group, 0, len(byKey))
	for _, g := range byKey {
		out = append(out, *g)
	}
	slices.SortFunc(out, compareGroups)
	for i := range out {
		out[i].Examples = examples(out[i].cells, MaxExamples)
	}
	return out, total
}

func compareGroups(a, b Group) int {
	return cmp.Or(strings.Compare(a.FromNamespace, b.FromNamespace), strings.Compare(a.ToKind, b.ToKind),
		strings.Compare(a.To, b.To), cmp.Compare(a.Port, b.Port), strings.Compare(a.Protocol, b.Protocol),
		strings.Compare(a.Before, b.Before))
}

func compareConnections(a, b Connection) int {
	return cmp.Or(strings.Compare(a.From, b.From), strings.Compare(a.To, b.To), cmp.Compare(a.Port, b.Port),
		strings.Compare(a.Protocol, b.Protocol))
}

// examples returns the first n connections of the cells, in order.
func examples(cells []cell, n int) []Connection {
	var out []Connection
	for i := range cells {
		got := 0
		cells[i].each(func(c Connection) bool {
			out = append(out, c)
			got++
			return got < n
		})
	}
	slices.SortFunc(out, compareConnections)
	return out[:min(n, len(out))]
}

// list returns every changed connection when there are at most ListLimit,
// else the groups' examples; and whether the list is complete.
func list(groups []Group, total int) ([]Connection, bool) {
	out := []Connection{}
	if total > ListLimit {
		for _, g := range groups {
			out = append(out, g.Examples...)
		}
		slices.SortFunc(out, compareConnections)
		return out, false
	}
	for _, g := range groups {
		for i := range g.cells {
			g.cells[i].each(func(c Connection) bool {
				out = append(out, c)
				return true
			})
		}
	}
	slices.SortFunc(out, compareConnections)
	return out, true
}
