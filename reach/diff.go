package reach

import (
	"github.com/netreconcile/netreconcile/spec"
)

// FormatVersion is the version of the JSON document; its major changes
// when a field changes meaning or goes away.
const FormatVersion = "1.1"

// ListLimit is the most changed connections the reachability list holds
// one by one. Beyond it the list holds each group's examples only, and
// Complete is false: the groups still count every connection.
const ListLimit = 1000

// MaxExamples is how many connections each group names.
const MaxExamples = 3

// Object actions, spelled as in plans.
const (
	Create = "create"
	Update = "update"
	Delete = "delete"
)

// Verdict words.
const (
	Allowed = "allowed"
	Denied  = "denied"
)

// Diff is everything that differs between two files.
type Diff struct {
	FormatVersion string          `json:"format_version"`
	Objects       []ObjectChange  `json:"objects"`
	Backends      []BackendChange `json:"backends"`
	// Reachability lists the connections whose verdict changed: every one
	// when Complete, else the groups' examples.
	Reachability []Connection `json:"reachability"`
	Complete     bool         `json:"reachability_complete"`
	// Connections counts every changed connection, listed or not.
	Connections int     `json:"reachability_total"`
	Groups      []Group `json:"reachability_groups"`
	// NodePlans summarises, for every node of either file, the plan that
	// moving it from the old file to the new one means (since 1.1).
	NodePlans []NodePlan `json:"node_plans"`
	// NodePlansSkipped says why NodePlans is empty although the files
	// have nodes (too many to plan, see NodePlanLimit).
	NodePlansSkipped string `json:"node_plans_skipped,omitempty"`
}

// ObjectChange is one object of the file added, changed or removed.
type ObjectChange struct {
	Action string `json:"action"`
	// Kind is namespace, node, pod, service or policy.
	Kind string `json:"kind"`
	Key  string `json:"key"`
	// Fields names what changed in an update, as the file spells it,
	// with label changes spelled out: "labels (+team=a, ~app: x -> y)".
	Fields []string `json:"fields,omitempty"`
}

// BackendChange is one port of a service whose backends differ: pods (as
// namespace/pod:targetPort) that now serve it, and pods that no longer do.
type BackendChange struct {
	Service  string   `json:"service"`
	Port     int      `json:"port"`
	Protocol string   `json:"protocol"`
	Gained   []string `json:"gained,omitempty"`
	Lost     []string `json:"lost,omitempty"`
	// Frontends are the ways into the port besides the clusterIP, in the
	// new file: "nodePort N" (every node's address) and "IP:port" for
	// each external IP.
	Frontends []string `json:"frontends,omitempty"`
}

// Connection is one connection whose verdict changed. To is a pod or a
// service (namespace/name both); Port is the pod's declared port, or the
// service port.
type Connection struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
	Before   string `json:"before"`
	After    string `json:"after"`
}

// Group counts the changed connections from one namespace to another
// namespace's pods (ToKind pod, To the namespace) or to one service
// (ToKind service, To its key), on one port and protocol, with the same
// before and after.
type Group struct {
	FromNamespace string       `json:"from_namespace"`
	To            string       `json:"to"`
	ToKind        string       `json:"to_kind"`
	Port          int          `json:"port"`
	Protocol      string       `json:"protocol"`
	Before        string       `json:"before"`
	After         string       `json:"after"`
	Count         int          `json:"count"`
	Examples      []Connection `json:"examples"`

	cells []cell
}

// Empty reports whether the files do not differ in anything Diff shows.
func (d *Diff) Empty() bool {
	return len(d.Objects) == 0 && len(d.Backends) == 0 && d.Connections == 0 && d.ChangedNodes() == 0
}

// ChangedNodes counts the nodes whose plan has changes.
func (d *Diff) ChangedNodes() int {
	n := 0
	for _, p := range d.NodePlans {
		if !p.Empty() {
			n++
		}
	}
	return n
}

// Compute compares old with new. It fails when a node's desired state
// cannot be built from either file.
func Compute(old, new *spec.Resolved) (*Diff, error) {
	d := &Diff{FormatVersion: FormatVersion, Objects: objectChanges(old, new)}
	bo, bn := backendsOf(old), backendsOf(new)
	d.Backends = backendChanges(bo, bn)
	addFrontends(d.Backends, new)
	m := newModel(old, new, bo, bn)
	m.podConnections()
	m.serviceConnections()
	d.Groups, d.Connections = m.groups()
	d.Reachability, d.Complete = list(d.Groups, d.Connections)
	// Empty lists, not null, so that JSON readers need not tell them apart.
	d.Objects = nonNil(d.Objects)
	d.Backends = nonNil(d.Backends)
	d.Groups = nonNil(d.Groups)
	names := nodeNames(old, new)
	if d.NodePlansSkipped = skipNodePlans(names); d.NodePlansSkipped == "" {
		var err error
		if d.NodePlans, err = nodePlans(old, new, names); err != nil {
			return nil, err
		}
	}
	d.NodePlans = nonNil(d.NodePlans)
	return d, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func word(allowed bool) string {
	if allowed {
		return Allowed
	}
	return Denied
}
