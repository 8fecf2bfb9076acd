// Package routing decides how a node reaches the pod CIDRs of the other
// nodes, and describes the kernel objects that carry it (cluster.routing).
// Like a driver it does no I/O: reconcile.Desired calls it with the file
// and the uplink's facts and diffs what it returns like any other object.
//
// Design notes. Every node decides from the file alone, so all nodes agree
// without talking to each other. For every other node (a peer):
//
//   - direct, when both underlay addresses lie in each other's subnet
//     (one L2 segment: Cilium's autoDirectNodeRoutes, flannel's
//     DirectRouting): one route "peer podCIDR via peer address dev uplink"
//     with protocol 154. Nothing else; the kernel resolves the peer's MAC.
//   - VXLAN otherwise (flannel's vxlan backend): one device per node,
//     "nrvxlan0" (VNI and UDP port from the file, local = the node address,
//     dev = the uplink, learning off, MTU = uplink - 50), carrying the
//     node's VTEP address. Per peer, in this order (the kinds' creation
//     order): a permanent neighbour "peer VTEP address -> peer VTEP MAC",
//     an FDB entry "peer VTEP MAC -> dst peer node address", then the route
//     "peer podCIDR via peer VTEP address dev nrvxlan0 onlink". The route
//     comes last so that no packet takes it before the kernel can resolve
//     and encapsulate it; deletion runs the other way round.
//
// VTEP addressing: a node's VTEP address is the network address of its pod
// CIDR (10.244.2.0 for 10.244.2.0/24), as a /32 on its nrvxlan0, and its
// VTEP MAC is 0e:58 followed by those four bytes (0e:58:0a:f4:02:00).
// Neither can be a pod's (pods never get the network address; pod MACs
// start 0a:58), both follow from the file, and a node that moves to
// another subnet keeps them: only its FDB entries' destination changes on
// its peers.
//
// Mode auto picks per peer; direct forces routes (spec rejects a file
// where a pair of nodes shares no subnet); vxlan tunnels to every peer.
//
// MTU rule: pod interfaces get cluster.mtu when set; otherwise the
// uplink's MTU, minus 50 (outer IPv4 20, UDP 8, VXLAN 8, inner Ethernet 14)
// when the cluster uses VXLAN anywhere: in mode vxlan always (even with one
// node, so that the first peer joining changes no MTU), in mode auto as soon
// as any two nodes of the file share no subnet, in mode direct never. The
// rule is cluster-wide rather than per node so that every pod of the
// cluster has the same MTU: a node with only direct peers still receives,
// from a direct peer, traffic that it forwards into its pods, and a pod
// sending 1500-byte datagrams to a pod behind a 1450 interface would need
// fragmentation (or lose them, with DF). With one MTU everywhere, TCP's MSS
// and every pod's sends fit every path. Changing the rule's outcome (the
// first node behind a router added to a flat cluster) updates every pod's
// MTU in place; nothing is recreated.
//
// Scale: per peer one route (direct) or one neighbour, one FDB entry and
// one route (VXLAN); adding, removing or moving a node changes only the
// objects of that peer on every other node.
package routing
