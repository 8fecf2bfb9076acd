// Source validation and drop accounting (datapath.c includes this file
// before the service and policy code; it needs only the parsed frame).
//
// A pod may only send as itself. Each pod interface that carries our
// programs has a binding in nr_src, keyed by the interface (the network
// namespace cookie and ifindex of the hook's device, so that ifindexes of
// different namespaces never meet): the pod's IPv4 address and its MAC.
// Leaving a pod, a frame is dropped unless
//
//   - its Ethernet source is the pod's MAC;
//   - it is ARP whose sender is the pod (address and MAC; an ARP probe,
//     sender 0.0.0.0, may ask), or IPv4 whose source is the pod's address;
//     any other EtherType (IPv6 included: there is no dual stack yet) is
//     dropped in both directions.
//
// So a pod cannot claim another pod's address, the hairpin address, the
// pods' gateway or the node's address, on any hook, in any mode. A hook
// whose device has no binding drops what leaves the pod: fail closed.
//
// Every drop is counted in nr_drops per local pod (the binding's address,
// never an address the packet claims) and reason.

#ifndef NR_GUARD_H
#define NR_GUARD_H

// Drop reasons (drop_key.reason); mirrored in package datapath.
#define NR_DROP_SOURCE 1     // source address or MAC not the pod's
#define NR_DROP_ARP 2        // ARP sender not the pod
#define NR_DROP_NOT_IPV4 3   // neither IPv4 nor ARP
#define NR_DROP_MALFORMED 4  // IPv4 header or L4 header unreadable
#define NR_DROP_FRAGMENT 5   // a later fragment without its first
#define NR_DROP_EGRESS 6     // policy: egress denied
#define NR_DROP_INGRESS 7    // policy: ingress denied
#define NR_DROP_CT_FULL 8    // connection state refused: source over its share, or map full
#define NR_DROP_NO_BINDING 9 // the interface has no source binding yet
#define NR_DROP_NAT 10       // translation failed
#define NR_DROP_NO_BACKEND 11 // from outside, to a service without backends here
#define NR_DROP_ROUTE 12     // a translated packet has no route (or a local one at the service device)
#define NR_DROP_SNAT_PORTS 13 // no free SNAT port for a new connection from outside

#define NR_MAX_SRC 16384
#define NR_MAX_DROPS 65536

struct src_key {
	__u64 netns; // bpf_get_netns_cookie of the hook's device
	__u32 ifindex;
	__u32 pad;
};

struct src_binding {
	__be32 ip;
	__u8 mac[ETH_ALEN];
	__u16 pad;
	__u32 pad1;
	// For the control plane only: the namespace inode and ifindex, so it
	// can match bindings to attachments without entering namespaces.
	__u64 netns_ino;
	__u32 ifindex;
	__u32 pad2;
};

struct drop_key {
	__be32 pod; // the local pod (0 if the hook has no binding)
	__u32 reason;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NR_MAX_SRC);
	__type(key, struct src_key);
	__type(value, struct src_binding);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nr_src SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, NR_MAX_DROPS);
	__type(key, struct drop_key);
	__type(value, __u64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nr_drops SEC(".maps");

struct arp_eth_ipv4 {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
	__u8 sha[ETH_ALEN];
	__u8 spa[4];
	__u8 tha[ETH_ALEN];
	__u8 tpa[4];
} __attribute__((packed));

// The few kernel types dev_netns reads, relocated against the running
// kernel's BTF (CO-RE): only the fields named here must exist.
struct net {
	__u64 net_cookie;
} __attribute__((preserve_access_index));

typedef struct {
	struct net *net;
} possible_net_t;

struct net_device {
	possible_net_t nd_net;
} __attribute__((preserve_access_index));

struct sk_buff {
	struct net_device *dev;
} __attribute__((preserve_access_index));

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

// dev_netns returns the cookie of the namespace of the device the hook
// runs on. (bpf_get_netns_cookie answers for the packet's socket, which
// for a pod's packet is the pod's namespace, or the root's without one.)
static __always_inline __u64 dev_netns(struct __sk_buff *ctx)
{
	struct sk_buff *skb = bpf_cast_to_kern_ctx(ctx);
	struct net_device *dev = skb->dev;
	struct net *net;

	if (!dev)
		return 0;
	net = dev->nd_net.net;
	if (!net)
		return 0;
	return net->net_cookie;
}

static __always_inline struct src_binding *binding(struct __sk_buff *skb)
{
	struct src_key k = {
		.netns = dev_netns(skb),
		.ifindex = skb->ifindex,
	};
	return bpf_map_lookup_elem(&nr_src, &k);
}

// drop counts a drop for pod and returns TC_ACT_SHOT.
static __always_inline int drop(__be32 pod, __u32 reason)
{
	struct drop_key k = { .pod = pod, .reason = reason };
	__u64 one = 1, *n;

	n = bpf_map_lookup_elem(&nr_drops, &k);
	if (n)
		*n += 1; // per CPU: no atomics needed
	else
		bpf_map_update_elem(&nr_drops, &k, &one, BPF_NOEXIST);
	return TC_ACT_SHOT;
}

// mac_eq compares bytewise: a MAC in a frame is not aligned.
static __always_inline bool mac_eq(const __u8 *a, const __u8 *b)
{
	__u8 diff = 0;

#pragma unroll
	for (int i = 0; i < ETH_ALEN; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

// guard_arp checks an ARP frame leaving the pod: the sender must be the
// pod (an ARP probe, RFC 5227, has sender address 0.0.0.0).
static __always_inline int guard_arp(struct __sk_buff *skb, const struct src_binding *b)
{
	struct arp_eth_ipv4 arp;
	__be32 spa;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &arp, sizeof(arp)) < 0)
		return drop(b->ip, NR_DROP_ARP);
	if (arp.htype != bpf_htons(1) || arp.ptype != bpf_htons(ETH_P_IP) ||
	    arp.hlen != ETH_ALEN || arp.plen != 4)
		return drop(b->ip, NR_DROP_ARP);
	__builtin_memcpy(&spa, arp.spa, 4);
	if (!mac_eq(arp.sha, b->mac))
		return drop(b->ip, NR_DROP_ARP);
	if (spa != b->ip && !(spa == 0 && arp.op == bpf_htons(1)))
		return drop(b->ip, NR_DROP_ARP);
	return TC_ACT_UNSPEC;
}

// NR_GUARD_IPV4 tells the caller to go on with an IPv4 packet.
#define NR_GUARD_IPV4 1000

// guard_from_pod validates the frame's L2 source and EtherType, and ARP
// whole. It returns NR_GUARD_IPV4 for IPv4 (whose source address the
// caller checks once parsed), or the verdict for anything else.
static __always_inline int guard_from_pod(struct __sk_buff *skb, const struct src_binding *b)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if (!b)
		return drop(0, NR_DROP_NO_BINDING);
	// Read in place: the header is in the linear part of any frame a pod
	// sends (cheaper than copying it out).
	if ((void *)(eth + 1) > end)
		return drop(b->ip, NR_DROP_MALFORMED);
	if (!mac_eq(eth->h_source, b->mac))
		return drop(b->ip, NR_DROP_SOURCE);
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return NR_GUARD_IPV4;
	if (eth->h_proto == bpf_htons(ETH_P_ARP))
		return guard_arp(skb, b);
	return drop(b->ip, NR_DROP_NOT_IPV4);
}

// guard_to_pod lets ARP and IPv4 into a pod, nothing else.
static __always_inline int guard_to_pod(struct __sk_buff *skb, const struct src_binding *b)
{
	__be32 pod = b ? b->ip : 0;

	if (skb->protocol == bpf_htons(ETH_P_IP))
		return NR_GUARD_IPV4;
	if (skb->protocol == bpf_htons(ETH_P_ARP))
		return TC_ACT_UNSPEC;
	return drop(pod, NR_DROP_NOT_IPV4);
}

#endif
