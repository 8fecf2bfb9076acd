package dpconv

import (
	"testing"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/spec"
)

// TestMapSizeDefaultsMatchObject: spec's defaults are the sizes the eBPF
// object declares (NR_MAX_* in bpf/), so that the capacity check and an
// unset cluster.datapath.maps mean the maps as built.
func TestMapSizeDefaultsMatchObject(t *testing.T) {
	obj, err := datapath.DefaultSizes()
	if err != nil {
		t.Fatal(err)
	}
	if got := ToDatapath(spec.DefaultMapSizes); got != obj {
		t.Errorf("spec.DefaultMapSizes %+v, the object declares %+v", got, obj)
	}
	if Text(FromDatapath(obj)) != "" {
		t.Errorf("the object's sizes read as changed: %q", Text(FromDatapath(obj)))
	}
}

func TestMapSizesText(t *testing.T) {
	m := spec.DefaultMapSizes
	m.PolicyRules, m.Services = 1024, 70000
	text := Text(m)
	if text != "policyRules=1024,services=70000" {
		t.Errorf("text %q", text)
	}
	back, err := Parse(text)
	if err != nil || back != m {
		t.Errorf("parsed back %+v, %v; want %+v", back, err, m)
	}
	if got := FromDatapath(ToDatapath(m)); got != m {
		t.Errorf("through datapath.Sizes: %+v, want %+v", got, m)
	}
	for _, bad := range []string{"rules=5", "policyRules=x", "policyRules"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}
