// Package reconcile converges one node's kernel state to the topology
// file: observe (netlink dumps, no decisions), desired (drivers, no I/O),
// diff (a Plan value, no I/O), apply (kernel calls in dependency order, no
// diffing) and verify (observe again; the plan must be empty).
//
// Ownership: links carry the alias "netreconcile/<node>/<owner>", routes
// the protocol state.RouteProtocol, namespaces created here are recorded
// under the state directory before they are created. Everything else is
// foreign: read for clash checks, never changed.
package reconcile
