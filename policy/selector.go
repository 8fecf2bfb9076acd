package policy

import (
	"maps"
	"slices"
	"strings"

	"github.com/netreconcile/netreconcile/spec"
)

// Matches reports whether labels satisfy sel, with the semantics of
// metav1.LabelSelector: a nil selector matches nothing, an empty one
// matches everything, and matchLabels and every matchExpressions entry must
// all hold. NotIn and DoesNotExist hold when the key is absent, so
// `pod NotIn [a]` selects a namespace that has no pod label at all. An
// unknown operator matches nothing; spec rejects it before we get here,
// and failing closed keeps a bad selector from widening a rule.
func Matches(sel *spec.LabelSelector, labels map[string]string) bool {
	if sel == nil {
		return false
	}
	for k, v := range sel.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, req := range sel.MatchExpressions {
		got, ok := labels[req.Key]
		switch req.Operator {
		case "In":
			if !ok || !slices.Contains(req.Values, got) {
				return false
			}
		case "NotIn":
			if ok && slices.Contains(req.Values, got) {
				return false
			}
		case "Exists":
			if !ok {
				return false
			}
		case "DoesNotExist":
			if ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// FormatSelector writes sel the way kubectl prints a label selector
// (`ns=x,pod in (a,b),!team`), with `{}` for the empty selector that
// selects everything, so that explain's output can be pasted into
// `kubectl get -l`.
func FormatSelector(sel *spec.LabelSelector) string {
	if sel == nil {
		return "<none>"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(sel.MatchLabels)) {
		parts = append(parts, k+"="+sel.MatchLabels[k])
	}
	for _, req := range sel.MatchExpressions {
		switch req.Operator {
		case "In":
			parts = append(parts, req.Key+" in ("+strings.Join(req.Values, ",")+")")
		case "NotIn":
			parts = append(parts, req.Key+" notin ("+strings.Join(req.Values, ",")+")")
		case "Exists":
			parts = append(parts, req.Key)
		case "DoesNotExist":
			parts = append(parts, "!"+req.Key)
		default:
			parts = append(parts, req.Key+" "+req.Operator+" ("+strings.Join(req.Values, ",")+")")
		}
	}
	if len(parts) == 0 {
		return "{}"
	}
	return strings.Join(parts, ",")
}
