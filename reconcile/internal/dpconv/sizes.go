// Package dpconv converts between the plan's datapath objects and what
// the datapath's maps hold: map sizes (the file's spec.MapSizes, the
// datapath's Sizes and state.Datapath's MapSizes text) and protocols.
package dpconv

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/netreconcile/netreconcile/datapath"
	"github.com/netreconcile/netreconcile/spec"
)

// Map sizes: the file's (spec.MapSizes, cluster.datapath.maps), the
// datapath's (datapath.Sizes) and the plan's attribute (state.Datapath's
// MapSizes text, the sizes that differ from the defaults), one table for
// the three.
var mapSizeFields = []struct {
	name string // as in cluster.datapath.maps
	file func(*spec.MapSizes) *int
	dp   func(*datapath.Sizes) *uint32
}{
	{"affinity", func(m *spec.MapSizes) *int { return &m.Affinity }, func(s *datapath.Sizes) *uint32 { return &s.Affinity }},
	{"backends", func(m *spec.MapSizes) *int { return &m.Backends }, func(s *datapath.Sizes) *uint32 { return &s.Backends }},
	{"conntrack", func(m *spec.MapSizes) *int { return &m.Conntrack }, func(s *datapath.Sizes) *uint32 { return &s.Conntrack }},
	{"endpoints", func(m *spec.MapSizes) *int { return &m.Endpoints }, func(s *datapath.Sizes) *uint32 { return &s.Endpoints }},
	{"policyIdentities", func(m *spec.MapSizes) *int { return &m.PolicyIdentities }, func(s *datapath.Sizes) *uint32 { return &s.PolicyIdentities }},
	{"policyPods", func(m *spec.MapSizes) *int { return &m.PolicyPods }, func(s *datapath.Sizes) *uint32 { return &s.PolicyPods }},
	{"policyRules", func(m *spec.MapSizes) *int { return &m.PolicyRules }, func(s *datapath.Sizes) *uint32 { return &s.PolicyRules }},
	{"services", func(m *spec.MapSizes) *int { return &m.Services }, func(s *datapath.Sizes) *uint32 { return &s.Services }},
}

// Text lists the sizes of m that differ from the defaults.
func Text(m spec.MapSizes) string {
	def := spec.DefaultMapSizes
	var parts []string
	for _, f := range mapSizeFields {
		if v := *f.file(&m); v != *f.file(&def) {
			parts = append(parts, f.name+"="+strconv.Itoa(v))
		}
	}
	return strings.Join(parts, ",")
}

// Parse reads Text back, defaults for the sizes it omits.
func Parse(text string) (spec.MapSizes, error) {
	m := spec.DefaultMapSizes
	for part := range strings.SplitSeq(text, ",") {
		if part == "" {
			continue
		}
		name, val, _ := strings.Cut(part, "=")
		v, err := strconv.Atoi(val)
		found := false
		for _, f := range mapSizeFields {
			if f.name == name && err == nil {
				*f.file(&m), found = v, true
			}
		}
		if !found {
			return m, fmt.Errorf("datapath map size %q: not name=entries", part)
		}
	}
	return m, nil
}

// ToDatapath converts the file's sizes for the datapath.
func ToDatapath(m spec.MapSizes) datapath.Sizes {
	var s datapath.Sizes
	for _, f := range mapSizeFields {
		*f.dp(&s) = uint32(*f.file(&m))
	}
	return s
}

// FromDatapath converts the datapath's sizes, defaults for the unknown (0).
func FromDatapath(s datapath.Sizes) spec.MapSizes {
	m := spec.DefaultMapSizes
	for _, f := range mapSizeFields {
		if v := *f.dp(&s); v != 0 {
			*f.file(&m) = int(v)
		}
	}
	return m
}
