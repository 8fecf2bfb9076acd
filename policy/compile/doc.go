// Package compile turns a topology file's NetworkPolicies into what one
// node's eBPF datapath needs to enforce them (the maps of bpf/policy.h):
// identities for addresses, and for each isolated side of each local pod
// the rules that allow.
//
// It shares no code with package policy's evaluator, which is the
// reference it is tested against: the compiler resolves selectors ahead of
// time into address classes, the evaluator walks the rules per
// connection; a mistake in either shows up as a disagreement.
//
// # Design notes
//
// Identities. Every address the datapath may see as the remote end of a
// connection belongs to one class, and a class is what rules name. Two
// addresses are in one class when no rule can tell them apart:
//
//   - a pod's class is its namespace, its labels, its declared ports (egress
//     rules resolve named ports on the peer) and the ipBlocks it is in;
//   - an address outside the pods is classed by the ipBlocks it is in
//     alone; outside every ipBlock it is the world (identity 0, no entry);
//   - this node's own addresses (underlay address, pod CIDR gateway) are
//     the host (identity 1), which Kubernetes always lets through.
//
// The identity map is an LPM trie: every ipBlock cidr and except as its
// prefix (the longest match decides, so an except is a longer prefix whose
// class lacks the block) and, as a /32, the address of every pod of the
// node and of every pod whose class a rule of the node names. Another
// node's pod that no rule here names is left out: the longest match for
// its address is then a block prefix that lies in exactly the blocks the
// pod does (or the world), a class no rule here names either, so it meets
// the same rules (those for ANY) as its own class would. A node's entries
// thus grow with the peers its pods' policies name, not with the cluster.
// An identity is a
// 32-bit hash of its class's description, so it does not depend on the
// other classes: changing one policy or one pod's labels changes only the
// entries that involve them, not a renumbering of everything. Only the
// ipBlocks of rules that apply on this node count, and only IPv4 ones: the
// datapath is IPv4, so an IPv6 block matches nothing it sees. A node whose
// pods no policy isolates holds no identities at all.
//
// Rules. For a local pod's isolated side, each rule of each selecting
// policy becomes entries {pod, direction, remote identity or ANY,
// protocol, port block}: peers become the identities of the classes they
// select (no peers: ANY), ports become aligned power-of-two blocks (a
// range is at most 30 of them, every port is one entry), named ports are
// resolved on the destination: the pod itself for ingress, each peer class
// for egress (so a named egress port to "any peer" names every pod class
// that declares it, and never the world). No ports means TCP, UDP and SCTP
// on every port. The datapath then answers a new connection with at most
// three lookups, however many policies there are.
//
// Revision. A hash of everything above: the control plane writes it after
// the entries, and the datapath re-judges each tracked connection once
// when it changes.
//
// Carrying. The class table is the whole file's (50,000 classes at 1000
// nodes: 75 ms to build); a watch daemon keeps it between passes
// (NewClusterFrom) and moves only the pods that changed between its
// classes. A table depends on the policies only through its blocks, its
// key, so a policy edit needs no rebuild; the peers and rules of the
// policies that did not change are kept too, patched for the classes
// that came and went. Identities stay those a build gives: a class made
// takes the hash of its description when nobody holds it, and a class
// dropped must free no identity that a rehashed class passed over;
// otherwise the table is built again. Between passes the table is
// compacted (Cluster.Compact): the pod classes' descriptions, half of its
// memory, are made again for the classes a node's identities name.
package compile
