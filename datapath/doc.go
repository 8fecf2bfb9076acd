// Package datapath loads, attaches and programs netreconcile's eBPF service
// datapath (the C source and generated objects live in package bpf).
//
// It is the kernel side of services for the reconcile engine: every piece of
// state is observable (Attachments, Services, Endpoints, Conntrack, Config)
// and every change is per entry and idempotent (Attach/Detach, SetService/
// DeleteService, SetEndpoint/DeleteEndpoint), so the engine can diff what is
// programmed against what is desired and converge entry by entry. Nothing
// here decides what should exist.
//
// # Design notes
//
// Objects. One pin directory per node (default /sys/fs/bpf/netreconcile/
// <node>) holds that node's maps, pinned by name, and its links under
// links/. The maps, the links and therefore the programs live in bpffs, not
// in our process: the datapath keeps forwarding while netreconcile is
// stopped, restarted or upgraded, and Open finds it again.
//
//	nr_services   hash  {frontend IP, port, proto} -> {id, backend count, flags
//	              (affinity, hash, SNAT), affinity timeout}; frontends are
//	              clusterIPs, the node's address for NodePorts, external IPs
//	nr_backends   hash  {service id, slot}       -> {backend IP, port}
//	nr_svc_ids    hash  service id -> service key (control plane only: an
//	              exclusive insert claims an id, so writers never share one)
//	nr_ct         hash  5-tuple -> translation; two entries per connection
//	              (131072 entries): FWD keyed as the client sends (-> backend),
//	              REV keyed as the backend answers (-> service, client)
//	nr_affinity   LRU   {service id, client IP} -> backend, last use (3 h)
//	nr_endpoints  hash  pod IP -> host-side veth ifindex (fast path)
//	nr_config     array layout version, hairpin address, fast path switch,
//	              conntrack entries per source, the node's address (SNAT)
//	nr_scratch    percpu array: room the 512-byte stack lacks (FIB lookup,
//	              refusals, the edge hooks' packet)
//	nr_src        hash  {device's netns cookie, ifindex} -> the pod's address
//	              and MAC (source validation, bpf/guard.h; Bind)
//	nr_drops      percpu hash {local pod, reason} -> packets dropped
//	nr_frag       LRU   {addresses, protocol, IP ID, direction} -> how a
//	              datagram's first fragment went (bpf/frag.h)
//	nr_ct_count   hash  source address -> entries it holds in nr_ct and
//	              nr_pol_ct (bpf/ct.h)
//	nr_gc         array the conntrack collector's bpf_timer and its stats
//
// Network policy (bpf/policy.h; contents from package policy/compile):
//
//	nr_pol_ids    LPM   address prefix -> identity (pods /32, ipBlock
//	              prefixes; the node's own addresses are the host, 1)
//	nr_pol_pods   hash  {local pod IP, direction} -> isolated
//	nr_pol_rules  LPM   {local pod IP, remote identity or ANY, direction,
//	              protocol, port block} -> allow
//	nr_pol_ct     hash  5-tuple + direction -> revision judged under
//	              (131072 entries): allowed connections, per hook direction
//	nr_pol_state  array the current revision of the policy entries
//
// Programs and hooks. Six entry points over one body of C:
//
//	nr_from_pod     tcx ingress, host-side veth  (veth, bridge): leaving pod
//	nr_to_pod       tcx egress,  host-side veth  (veth, bridge): entering pod
//	nr_pod_egress   tcx egress,  pod's interface (macvlan, ipvlan): leaving
//	nr_pod_ingress  tcx ingress, pod's interface (macvlan, ipvlan): entering
//	nr_uplink_in    tcx ingress, the node's uplink (UplinkIngress)
//	nr_from_host    tcx egress,  the node's service device nrsvc0 (ServiceEgress)
//
// The edge. A NodePort or external IP is an ordinary nr_services entry
// keyed by the node's address or the external IP. nr_uplink_in serves a
// new connection from outside as a pod's hook would (pick, FWD and REV
// entries charged to the client), SNATs it to Config.NodeAddr and a port
// in 61001-65535 when the entry says SNAT, and sends it with
// bpf_fib_lookup + bpf_redirect_neigh (a local backend through its
// host-side veth, so its nr_to_pod judges policy; a remote one as the
// node routes it). It follows those connections' FWD entries, and
// restores replies that match REV entries of edge connections (SNATed
// flows with remote backends; the node's own connections): delivered to
// the node, or routed out. An entry without backends drops from outside.
// Conntrack entries record where a connection was opened (uplink, node,
// pod): the uplink uses only edge entries, so a packet from outside
// cannot ride a pod's translation. The node reaches services through
// routes to nrsvc0 (a veth pair, both ends in the node, NOARP, source
// the node's address): nr_from_host balances, refuses (the RST or ICMP
// goes back in through nrsvc0's ingress) and routes as above; replies
// of local backends are restored by their nr_from_pod and delivered by
// the stack, those of remote backends by nr_uplink_in. A pod's reply
// whose restored source is the node's address (NodePort without SNAT;
// SNATed flows to a local backend) leaves by bpf_redirect_neigh too: the
// stack's input routing would drop it as a martian. Why a tc hook on a
// device rather than socket hooks: cgroup programs serve a cgroup, and a
// lab node's processes live in the machine's root cgroup.
//
// Leaving a pod: a packet that matches a REV entry is a reply and gets the
// service as source back; one that matches a FWD entry follows its
// connection's backend; one to a service picks a backend (affinity, then
// random or hash), records FWD and REV, and is DNATed. A pod reaching
// itself is also SNATed to 169.254.42.1 (else it drops its own address as a
// martian); the REV entry undoes both. A service without backends answers
// at once: a TCP RST, or an ICMP port unreachable for UDP, sent back into
// the pod. Entering a pod: REV entries translate replies whose backend is on
// another node (or not behind our programs). Packets we do not translate
// return TC_ACT_UNSPEC so that later programs on the hook still run.
//
// Fast path. At host-side ingress, a packet whose (translated) destination
// is in nr_endpoints goes straight to that pod with bpf_redirect_peer,
// skipping the host's routing, netfilter and the destination's nr_to_pod.
// Network policy therefore has two hooks (bpf/policy.h): egress for every
// packet leaving a pod, ingress in nr_to_pod and just before a fast-path
// redirect. Macvlan pods have no fast path (redirect_peer needs tc ingress);
// instead a translated packet leaving one is re-sent with
// bpf_redirect_neigh, addressed to the backend's next hop rather than the
// clusterIP's (the node's shim): a backend on the same segment is reached
// straight over the uplink's macvlan bridge, as pod IPs are. That second
// pass through nr_pod_egress is recognised by skb mark bit 0x00400000,
// which it clears.
//
// Policy. Each node judges its own pods only: the egress side of a pod
// when a packet leaves it, the ingress side when a packet reaches it, on
// the connection as the pods see it (after DNAT to the backend; a reply
// before its service address is restored, also when our program on the
// backend restored it already and the node routes it to a local client).
// Cross-node traffic is judged twice, on each node for its own pod; the
// identity map holds every pod of the cluster (addresses are known from
// the file), so the destination node knows the source pod's identity from
// its address. A new connection costs one LPM lookup for the remote
// identity and at most two rule lookups; every other packet one or two
// conntrack lookups. Connections are tracked whatever the isolation, so
// that isolating a pod later never cuts the replies of its allowed
// connections. After a policy change the control plane writes the new
// revision last; each tracked connection's next packet is judged again,
// so allowed connections carry on and no longer allowed ones stop. Every
// protocol is judged: TCP, UDP and SCTP by port, others denied where a pod
// is isolated (ICMP errors of tracked connections aside); fragments follow
// their first fragment.
//
// Hostile pods (bpf/guard.h, frag.h, ct.h). Frames leaving a pod must
// carry the pod's MAC and address (ARP's sender too), from the binding of
// the hook's device; the device's namespace cookie is read from the kernel's
// sk_buff through bpf_cast_to_kern_ctx and CO-RE, because
// bpf_get_netns_cookie answers for the packet's socket instead (a pod's
// namespace, or the root's for a packet without one). Only IPv4 and ARP
// pass. Connection state is written only after an allow verdict, expires by
// protocol and TCP state, is charged to the source that opened it (a share
// per source, no eviction), and is collected in the kernel by a bpf_timer.
//
// Why conntrack before the service map: an established connection keeps
// its backend while the backend stays in the service, like netfilter NAT;
// a TCP SYN re-picks unless its recorded backend still holds its slot, so
// recycled 4-tuples never stick to a removed backend. When a service loses
// backends, SetService writes the new slots before shrinking the count and
// expires the conntrack entries of removed backends: their connections end
// (the next packet finds no state; TCP is reset, UDP picks a new backend). Entries expire by
// protocol and TCP state (bpf/ct.h). A client that later
// reaches the same backend address and port directly (pod IP) from the
// same source port would have that connection's replies rewritten by the
// old REV entry, so a packet to a pod IP drops the REV entry of its
// reverse tuple (TCP on its SYN, UDP on every packet).
//
// Upgrades. Pinned maps are reused when their layout version and spec
// match; otherwise they are replaced (services, endpoints and conntrack
// start empty: a returned note says so) and pinned links still running an
// older program are switched in place with link.Update. Attach never
// detaches a live link to replace a program.
//
// Namespaces. tcx resolves ifindexes in the calling thread's namespace, so
// Attach looks up the interface and attaches on one locked thread inside
// the target namespace (nsutil.Do). A link's pin name records the
// namespace reference, the interface name and the hook; the kernel reports
// the ifindex (0 once the interface is gone: the link is defunct and holds
// only memory until Detach).
//
// Scale. Per packet: one conntrack lookup, plus for new connections one
// service lookup, one backend lookup and two conntrack inserts; the cost
// does not depend on the number of services. One service change writes
// only the slots that change. Policy adds one or two conntrack lookups per
// hook, and for a new connection at most three LPM lookups and an insert,
// whatever the number of policies.
//
// Loading. Verifying this build's programs is the dearest step of a new
// datapath (about 2 s of CPU here, 1.9 s of it nr_from_pod, which Open
// verifies beside the others). Open pins them under progs/<object hash>,
// so a later Open reuses them without verifying; OpenMapsWith opens the
// maps alone (entries can be written, nothing attached), so that a
// caller fills them while OpenWith verifies. SetServices writes new
// service ports with batched map updates (BPF_MAP_UPDATE_BATCH).
//
// Upgrades from a build without the policy maps: Open adds them (empty)
// beside the pinned service maps, and Inspect reads them as empty, so
// services keep running across the upgrade.
//
// Requirements: BTF (/sys/kernel/btf/vmlinux) and the bpf_cast_to_kern_ctx
// kfunc (Linux 6.3) for source validation, bpf_timer (5.15) for the
// collector; tcx (6.6) for the node's own hooks, clsact filters for the pods' by
// default (--attach-mode auto: see Datapath.PodsTC; tcx waits for an RCU grace
// period per attach under rtnl).
//
// Limits: IPv4 only; ICMP errors about translated connections are not
// translated. Replies that the node routes (fast path off, or backends
// elsewhere) carry a clusterIP source: strict rp_filter (1) on the pods'
// host-side interfaces and on the uplink drops them, loose (2) or off (0)
// is needed. A node reaching a host-network backend on itself through a
// service is dropped (no-route). Macvlan and ipvlan backends' replies
// restored to the node's address enter the node through its shim: that
// needs accept_local on the shim. Each SNAT flow tries 8 ports (a hash
// of its tuple and the next ones): a client is refused (snat-ports)
// only when all 8 are taken toward the same backend. A
// client's connections from one source port to two services that resolve
// to the same backend collide (as they would on the backend itself).
// Conntrack holds 65536 service connections (two entries each) and 131072
// policy entries, each source at most 32768 open ones of each: beyond that new
// connections of that source are refused, never another's state evicted.
// An established TCP connection idle for 6 h loses its state. Macvlan and
// ipvlan pods holding CAP_NET_RAW can bypass their tc egress hook with
// PACKET_QDISC_BYPASS (README, Security model).
package datapath
