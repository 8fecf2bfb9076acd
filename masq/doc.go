// Package masq is the egress masquerade: pods' connections to
// destinations outside the cluster leave the node with the node's address,
// so the network needs no route back to pod CIDRs.
//
// Design notes.
//
// It is an nftables table, "netreconcile" (family ip), in the node's
// network namespace, written through github.com/google/nftables (netlink,
// no nft binary). nftables rather than eBPF because the kernel's
// connection tracking then does the hard parts for free: choosing a free
// source port per destination, collisions between pods, and translating
// ICMP errors and fragments of masqueraded connections back. Only the
// first packet of a connection traverses the chain; the rest follow its
// conntrack entry. Policy still judges at the pod's eBPF hooks, which run
// before postrouting: ipBlock rules see the pod's address and the real
// destination.
//
// The table holds one base chain, postrouting (type nat, hook
// postrouting, priority srcnat = 100):
//
//	ip daddr <each exception> return
//	ip saddr <this node's podCIDR> oifname <uplink> masquerade to :32768-60999
//
// Exceptions are the cluster's pod CIDR, the service CIDR, every node's
// underlay address and cluster.egress.nonMasqueradeCIDRs (merged: none
// inside another). A rule per exception rather than a set: an interval
// set refuses overlapping elements, and the chain is walked once per
// connection, so a list costs nothing per packet. The source ports are
// Linux's default ephemeral range: NodePorts (30000-32767 by default,
// below 32768 always) and the datapath's source NAT (61001-65535) use
// others, so a reply to a masqueraded connection is never taken for
// either.
//
// A second base chain, output (type nat, hook output, priority dstnat),
// serves the node's own processes reaching the node's own NodePorts:
//
//	ip daddr <node address> meta l4proto tcp th dport 30080 dnat to 10.96.0.10:80
//
// Such a connection is routed through the loopback, past every eBPF hook
// of the datapath, so it is sent to the service's clusterIP instead:
// rerouted after the DNAT, it takes the service device's route and the
// datapath balances it as any connection from the node (clusterIP
// semantics: internalTrafficPolicy applies, externalTrafficPolicy does
// not). Conntrack restores the nodePort on the replies, after the
// datapath restored the clusterIP. The table exists for these rules alone
// when masquerade is off.
//
// The table is the unit of change: apply replaces it whole in one
// netlink batch (add, delete, add again, then its chain and rules), which
// the kernel commits atomically, so no packet sees half a table; destroy
// deletes it. Observe reads the table back and decodes the rules into the
// same fields as the desired object, so a deleted table or an edited rule
// shows in plan and is repaired. No other table is read or changed.
package masq
