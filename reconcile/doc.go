// Package reconcile converges one node's kernel state to the topology
// file. The Engine runs the steps, each in its own package:
//
//   - desired: file -> desired state (drivers, routing, datapath, policy;
//     no I/O)
//   - observe: kernel -> observed state (netlink dumps, the datapath's
//     maps; reads what a Scope names, no decisions)
//   - plan: Diff and rendering (a Plan value, no I/O)
//   - apply: plan -> kernel (kernel calls in the plan's order, no diffing)
//
// and verifies (observe again; the plan must be empty).
//
// Ownership: links carry the alias "netreconcile/<node>/<owner>", routes
// the protocol state.RouteProtocol, namespaces created here are recorded
// under the state directory before they are created. Everything else is
// foreign: read for clash checks, never changed.
package reconcile
