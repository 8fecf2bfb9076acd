package reach

import (
	"cmp"
	"slices"
	"strings"
)

// serviceVerdict is how a class's members fare connecting to a service
// port in one file: all allowed (every backend allows it, as explain's
// ALLOWED), save that a member which is the only backend denying the
// others talks to itself there and so is allowed.
type serviceVerdict struct {
	allowed bool
	except  string // the member that is the one denying backend, or ""
}

func (v serviceVerdict) of(pod string) bool {
	if pod != "" && pod == v.except {
		return true
	}
	return v.allowed
}

// target is the backends of a service port that the policies cannot
// tell apart: one class, one target port.
type target struct {
	c    *class
	port int
	pods []string
}

// targets groups a service port's backends by class and target port.
func (m *model) targets(list []backend) []target {
	var out []target
	for _, b := range list {
		c := m.classOf[b.pod]
		i := slices.IndexFunc(out, func(t target) bool { return t.c == c && t.port == b.port })
		if i < 0 {
			out = append(out, target{c: c, port: b.port})
			i = len(out) - 1
		}
		out[i].pods = append(out[i].pods, b.pod)
	}
	return out
}

// judgeService judges a member of a against a service port's backends
// (none: no such service port in the file, which is denied like one
// without backends).
func (m *model) judgeService(inNew bool, a *class, targets []target, proto string) serviceVerdict {
	if len(targets) == 0 {
		return serviceVerdict{}
	}
	denying, first := 0, ""
	for _, t := range targets {
		if !m.allowed(inNew, a, t.c, t.port, proto) {
			denying += len(t.pods)
			first = t.pods[0]
			if denying > 1 {
				break
			}
		}
	}
	v := serviceVerdict{allowed: denying == 0}
	if denying == 1 && m.classOf[first] == a {
		v.except = first
	}
	return v
}

// service records the members of a whose verdict to service port k
// changed.
func (m *model) service(a *class, k portKey, ob, nb []target) {
	before := m.judgeService(false, a, ob, k.proto)
	after := m.judgeService(true, a, nb, k.proto)
	var except []string
	for _, e := range []string{before.except, after.except} {
		if e != "" && !slices.Contains(except, e) {
			except = append(except, e)
		}
	}
	add := func(from []string, b, f bool) {
		m.cells = append(m.cells, cell{from: from, to: []string{k.svc}, toService: true,
			port: k.port, proto: k.proto, before: b, after: f})
	}
	if before.allowed != after.allowed {
		from := a.members
		if len(except) > 0 {
			from = slices.DeleteFunc(slices.Clone(from), func(p string) bool { return slices.Contains(except, p) })
		}
		if len(from) > 0 {
			add(from, before.allowed, after.allowed)
		}
	}
	for _, e := range except {
		if b, f := before.of(e), after.of(e); b != f {
			add([]string{e}, b, f)
		}
	}
}

func comparePortKey(a, b portKey) int {
	return cmp.Or(strings.Compare(a.svc, b.svc), cmp.Compare(a.port, b.port), strings.Compare(a.proto, b.proto))
}
