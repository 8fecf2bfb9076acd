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

// judgeService judges a member of a against backends list (nil: no such
// service port in the file, which is denied like one without backends).
func (m *model) judgeService(inNew bool, a *class, list []backend, proto string) serviceVerdict {
	if len(list) == 0 {
		return serviceVerdict{}
	}
	denying, first := 0, ""
	for _, b := range list {
		if !m.allowed(inNew, a, m.classOf[b.pod], b.port, proto) {
			denying++
			if denying == 1 {
				first = b.pod
			} else {
				break
			}
		}
	}
	v := serviceVerdict{allowed: denying == 0}
	if denying == 1 && len(list) > 0 && m.classOf[first] == a {
		v.except = first
	}
	return v
}

// service records the members of a whose verdict to service port k
// changed.
func (m *model) service(a *class, k portKey, ob, nb []backend) {
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
