package policy

import (
	"testing"

	"github.com/netreconcile/netreconcile/spec"
)

func TestMatches(t *testing.T) {
	labels := map[string]string{"app": "web", "tier": "front"}
	req := func(key, op string, values ...string) spec.LabelSelectorRequirement {
		return spec.LabelSelectorRequirement{Key: key, Operator: op, Values: values}
	}
	tests := []struct {
		name   string
		sel    *spec.LabelSelector
		labels map[string]string
		want   bool
	}{
		{"nil selects nothing", nil, labels, false},
		{"nil selects nothing, even unlabelled", nil, nil, false},
		{"empty selects everything", &spec.LabelSelector{}, labels, true},
		{"empty selects unlabelled", &spec.LabelSelector{}, nil, true},
		{"matchLabels equal", &spec.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, labels, true},
		{"matchLabels all must hold", &spec.LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "back"}}, labels, false},
		{"matchLabels absent key", &spec.LabelSelector{MatchLabels: map[string]string{"zone": "a"}}, labels, false},
		{"matchLabels empty value is not absence", &spec.LabelSelector{MatchLabels: map[string]string{"zone": ""}}, labels, false},
		{"In holds", &spec.LabelSelector{MatchExpressions: []spec.LabelSelectorRequirement{req("app", "In", "db", "web")}}, labels, true},
		{"In other value", &spec.LabelSelector{MatchExpressions: []spec.LabelSelectorRequirement{req("app", "In", "db")}}, labels, false},
		{"In absent key", &spec.LabelSelector{MatchExpressions: []spec.LabelSelectorRequirement{req("zone", "In", "a")}}, labels, false},
		{"NotIn holds", &spec.LabelSelector{MatchExpressions: []spec.LabelSelectorRequirement{req("app", "NotIn", "db")}}, labels, true},
		{"NotIn fails", &spec.LabelSelector{MatchExpressions: []spec.LabelSelectorRequirement{req("app", "NotIn", "web")}}, labels, false},
		{"NotIn absent key holds", &spec.LabelSelector{MatchExpressions: []spec.LabelSelectorRequirement{req("zone", "NotIn", "a")}}, labels, true},
		{"Exists", &spec.LabelSelector{MatchExpressions: []spec.LabelSelectorRequirement{req("tier", "Exists")}}, labels, true},
		{"Exists absent", &spec.LabelSelector{MatchExpressions: []spec.LabelSelectorRequirement{req("zone", "Exists")}}, labels, false},
		{"DoesNotExist absent", &spec.LabelSelector{MatchExpressions: []spec.LabelSelectorRequirement{req("zone", "DoesNotExist")}}, labels, true},
		{"DoesNotExist present", &spec.LabelSelector{MatchExpressions: []spec.LabelSelectorRequirement{req("app", "DoesNotExist")}}, labels, false},
		{"DoesNotExist on no labels", &spec.LabelSelector{MatchExpressions: []spec.LabelSelectorRequirement{req("app", "DoesNotExist")}}, nil, true},
		{"matchLabels AND expressions, both hold", &spec.LabelSelector{
			MatchLabels:      map[string]string{"app": "web"},
			MatchExpressions: []spec.LabelSelectorRequirement{req("tier", "In", "front")},
		}, labels, true},
		{"matchLabels AND expressions, one fails", &spec.LabelSelector{
			MatchLabels:      map[string]string{"app": "web"},
			MatchExpressions: []spec.LabelSelectorRequirement{req("tier", "NotIn", "front")},
		}, labels, false},
		{"expressions AND each other", &spec.LabelSelector{MatchExpressions: []spec.LabelSelectorRequirement{
			req("app", "Exists"), req("zone", "Exists"),
		}}, labels, false},
		{"unknown operator fails closed", &spec.LabelSelector{MatchExpressions: []spec.LabelSelectorRequirement{req("app", "Gt", "1")}}, labels, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Matches(tt.sel, tt.labels); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFormatSelector(t *testing.T) {
	tests := []struct {
		sel  *spec.LabelSelector
		want string
	}{
		{nil, "<none>"},
		{&spec.LabelSelector{}, "{}"},
		{&spec.LabelSelector{MatchLabels: map[string]string{"pod": "a", "ns": "x"}}, "ns=x,pod=a"},
		{&spec.LabelSelector{
			MatchLabels: map[string]string{"ns": "x"},
			MatchExpressions: []spec.LabelSelectorRequirement{
				{Key: "pod", Operator: "In", Values: []string{"a", "b"}},
				{Key: "tier", Operator: "NotIn", Values: []string{"db"}},
				{Key: "app", Operator: "Exists"},
				{Key: "team", Operator: "DoesNotExist"},
			},
		}, "ns=x,pod in (a,b),tier notin (db),app,!team"},
	}
	for _, tt := range tests {
		if got := FormatSelector(tt.sel); got != tt.want {
			t.Errorf("FormatSelector = %q, want %q", got, tt.want)
		}
	}
}
