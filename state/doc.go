// Package state is the kernel object model shared by the desired and the
// observed side of a reconcile: network namespaces, links, addresses,
// neighbours, routes and sysctls, each keyed the same way on both sides so
// that a diff is a comparison of two maps.
//
// Objects hold only the fields netreconcile sets. The kernel fills in many
// more attributes (see controller-runtime's warning about server-defaulted
// fields); observe copies just ours, so comparing is plain equality.
package state
