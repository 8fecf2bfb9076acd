// Package lab simulates a cluster's underlay on one machine, for
// `netreconcile lab up|down -f FILE`.
//
// Every node of the topology gets its own network namespace (NodeNetns),
// which stands in for the node's host namespace: the reconciler is then run
// against it with --node-netns. One more namespace (UnderlayNetns) plays
// the physical network: it holds one Linux bridge per distinct node subnet
// and routes between them, so nodes that share a subnet share an L2
// segment (direct routes work between them) and nodes in different subnets
// only reach each other through a router (they need VXLAN).
//
// Layout of a lab with nodes a, b in 172.31.1.0/24 and c in 172.31.2.0/24:
//
//	nrlab-a            nrlab-b            nrlab-c
//	eth0 172.31.1.2    eth0 172.31.1.3    eth0 172.31.2.2
//	  |                  |                  |
//	  u<hash>            u<hash>            u<hash>           (veth peers)
//	  +---- br-<hash> ---+                  br-<hash>
//	        172.31.1.254                    172.31.2.254
//	nrlab-ul-<hash>: ip_forward=1 routes between the bridges
//
// Each node's default route points at its subnet's router: the highest
// usable host address of the subnet that no node uses.
//
// The lab owns these namespaces entirely, so Build converges them by
// simple rules (what is missing is created, what is wrong is replaced) and
// Teardown deletes the namespaces, which removes every device in them. The
// pods' namespaces are the reconciler's business, not the lab's.
//
// Nothing here touches the calling process's own namespace: all netlink
// work goes through one netlink.Handle per lab namespace, veths are created
// with their peer directly in the other namespace, and the only sysctl
// (forwarding) is written from a thread inside the underlay namespace.
package lab
