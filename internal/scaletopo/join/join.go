// Package join resolves the documents scaletopo.Split makes as one file.
// It is apart from scaletopo so that spec's own tests can use scaletopo.
package join

import (
	"fmt"

	"github.com/netreconcile/netreconcile/spec"
)

// Join parses the documents scaletopo.Split made and resolves them as one file
// (spec.Resolve, without positions): the model of a file over the
// parser's limit, built in memory. It also returns the joined topology,
// for edits.
func Join(parts [][]byte) (*spec.Topology, *spec.Resolved, error) {
	t := &spec.Topology{}
	for i, data := range parts {
		p, _, err := spec.Parse(fmt.Sprintf("part%d.yaml", i), data)
		if err != nil {
			return nil, nil, err
		}
		if i == 0 {
			t.APIVersion, t.Kind, t.Cluster = p.APIVersion, p.Kind, p.Cluster
		}
		t.Namespaces = append(t.Namespaces, p.Namespaces...)
		t.Nodes = append(t.Nodes, p.Nodes...)
		t.Pods = append(t.Pods, p.Pods...)
		t.Services = append(t.Services, p.Services...)
		t.Policies = append(t.Policies, p.Policies...)
	}
	r, err := spec.Resolve(t, nil)
	return t, r, err
}
