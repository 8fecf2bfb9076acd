//go:build ignore

// netreconcile service datapath: clusterIP load balancing with connection
// tracking and reverse NAT, ClientIP affinity, hairpin, prompt refusal of
// services without backends, and the same-node fast path.
//
// Before any of that, every frame leaving a pod is checked to come from it
// (guard.h), fragments follow their first fragment (frag.h), and
// connection state is written only once policy has allowed the connection,
// with lifetimes, per-source shares and in-kernel garbage collection
// (ct.h).
//
// Six entry points share the code below; they differ only in the hook they
// run at, which decides what a packet is (leaving or entering a pod,
// arriving from outside the node, sent by the node itself) and how a
// translated packet goes on:
//
//   nr_from_pod     tcx ingress of a pod's host-side veth   (veth, bridge)
//   nr_to_pod       tcx egress  of a pod's host-side veth   (veth, bridge)
//   nr_pod_egress   tcx egress  of the pod's own interface  (macvlan, ipvlan)
//   nr_pod_ingress  tcx ingress of the pod's own interface  (macvlan, ipvlan)
//   nr_uplink_in    tcx ingress of the node's uplink: NodePort and external
//                   IP frontends reached from outside, and the replies of
//                   connections that entered at the node's edge
//   nr_from_host    tcx egress of the node's service device (nrsvc0, where
//                   the node routes the service CIDR and external IPs): the
//                   node's own connections to services
//
// Every map is pinned by name and shared by all attachments of one node.
// Their layout is versioned by enum layout: bump NR_LAYOUT_VERSION whenever
// a key or value changes meaning, even if its size does not, so that the Go
// side (package datapath) replaces maps pinned by an older build.

#include <stdbool.h>
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/time.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char __license[] SEC("license") = "Dual MIT/GPL";

enum layout {
	NR_LAYOUT_VERSION = 3,
};

enum cfg_flags {
	NR_CFG_FASTPATH = 1, // redirect to local endpoints with bpf_redirect_peer
};

// Service flags (svc_value.flags); mirrored in package datapath.
#define NR_SVC_AFFINITY 1 // sessionAffinity: ClientIP
#define NR_SVC_HASH 2     // pick by a hash of the 5-tuple, not at random
#define NR_SVC_SNAT 4     // new connections from the uplink: source NAT to the node

// A translated frame sent again through its pod's egress hook (see
// from_pod) carries this skb mark bit until that second pass clears it.
#define NR_MARK_READDRESSED 0x00400000

// Conntrack entry kinds (ct_value.type) and flags; mirrored in Go.
#define NR_CT_FWD 1 // client -> clusterIP, as the client sends it
#define NR_CT_REV 2 // backend -> client, as the backend answers
#define NR_CT_HAIRPIN 1 // the client is its own backend: source is the hairpin address
#define NR_CT_SNAT 2    // source translated to the node's address and a port of its own
#define NR_CT_UPLINK 4  // opened from outside the node (nr_uplink_in)
#define NR_CT_NODE 8    // opened by the node itself (nr_from_host)

// SNAT source ports: above Linux's ephemeral range (32768-60999), so never
// a node socket's, nor the masquerade's. A new flow tries NR_SNAT_TRIES
// ports from a hash of its tuple.
#define NR_SNAT_MIN 61001
#define NR_SNAT_RANGE (65535 - NR_SNAT_MIN + 1)
#define NR_SNAT_TRIES 8

#define NR_MAX_SERVICES 65536
#define NR_MAX_BACKENDS 65536
#define NR_MAX_CT 131072
#define NR_MAX_AFFINITY 16384
#define NR_MAX_ENDPOINTS 16384

// 169.254.42.1: the source a pod sees when it reaches itself through a
// service (unless nr_config says otherwise).
#define NR_HAIRPIN_DEFAULT 0xa9fe2a01

// nr_now is the clock of every lifetime here: CLOCK_MONOTONIC at tick
// resolution, a few nanoseconds to read where bpf_ktime_get_ns costs tens
// per call; lifetimes are seconds.
#define nr_now() bpf_ktime_get_coarse_ns()
#define NR_AFFINITY_TIMEOUT_S 10800 // a service's default (svc_value.affinity_s 0)

// Every key and value spells out its padding: keys are hashed bytewise and
// the Go side builds them too.

struct svc_key {
	__be32 ip;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct svc_value {
	__u32 id;    // names the service in nr_backends, nr_affinity, nr_ct
	__u16 count; // backends in slots [0, count)
	__u8 flags;  // NR_SVC_*
	__u8 pad;
	__u32 affinity_s; // ClientIP affinity idle timeout, s; 0: NR_AFFINITY_TIMEOUT_S
};

struct backend_key {
	__u32 svc_id;
	__u32 slot;
};

struct backend {
	__be32 ip;
	__be16 port;
	__u16 pad;
};

struct ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct ct_value {
	// FWD: the backend (new destination). REV: the service (new source).
	__be32 addr;
	__be16 port;
	__u8 type;  // NR_CT_FWD or NR_CT_REV
	__u8 flags; // NR_CT_*
	// FWD: new source address (hairpin, SNAT), else 0.
	// REV: the client's address to restore as destination, else 0.
	__be32 nat_addr;
	__u32 svc_id;
	__u16 slot; // FWD: backend slot at selection time
	__u8 state;   // NR_CT_STATE_* (ct.h)
	__u8 charged; // counted in its owner's share (ct.h)
	__be32 owner; // the client, charged for the entry (ct.h)
	// FWD: new source port (SNAT), else 0. REV: the client's port to
	// restore as destination, else 0.
	__be16 nat_port;
	__u16 pad;
	__u32 pad2;
	__u64 seen_ns; // last packet, nr_now()
};

struct affinity_key {
	__u32 svc_id;
	__be32 client;
};

struct affinity_value {
	__u64 last_ns;
	__be32 ip;
	__be16 port;
	__u16 slot;
};

struct endpoint {
	__u32 ifindex; // host-side veth in the node's namespace
	__u32 flags;
};

struct config {
	enum layout version;
	__be32 hairpin_ip;
	enum cfg_flags flags;
	__u32 ct_per_source; // entries one source may hold per table; 0: default
	__be32 node_ip;      // the node's underlay address (SNAT source); 0: none
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NR_MAX_SERVICES);
	__type(key, struct svc_key);
	__type(value, struct svc_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nr_services SEC(".maps");

// Control plane only: claims service ids (insert with BPF_NOEXIST) and
// names the service of a conntrack entry. No program reads it.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NR_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct svc_key);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nr_svc_ids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NR_MAX_BACKENDS);
	__type(key, struct backend_key);
	__type(value, struct backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nr_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NR_MAX_CT);
	__type(key, struct ct_key);
	__type(value, struct ct_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nr_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NR_MAX_AFFINITY);
	__type(key, struct affinity_key);
	__type(value, struct affinity_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nr_affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NR_MAX_ENDPOINTS);
	__type(key, __be32);
	__type(value, struct endpoint);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nr_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nr_config SEC(".maps");

enum hook {
	HOOK_HOST_INGRESS, // leaving the pod, seen on its host-side veth
	HOOK_HOST_EGRESS,  // entering the pod, seen on its host-side veth
	HOOK_POD_EGRESS,   // leaving the pod, seen on its own interface
	HOOK_POD_INGRESS,  // entering the pod, seen on its own interface
	HOOK_UPLINK,       // arriving from outside, on the node's uplink
	HOOK_SERVICE,      // sent by the node to a service, on its service device
};

// edge_hook: the hooks at the node's edge, where no pod sends.
#define edge_hook(hook) ((hook) == HOOK_UPLINK || (hook) == HOOK_SERVICE)

#define IP_OFF ETH_HLEN
#define IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define IP_SRC_OFF (ETH_HLEN + offsetof(struct iphdr, saddr))
#define IP_DST_OFF (ETH_HLEN + offsetof(struct iphdr, daddr))

// linux/icmp.h drags in glibc's socket headers, which bpf targets lack.
#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_PORT_UNREACH 3
#define ICMP_ECHO 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

struct icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 unused;
};

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

// pkt is a parsed IPv4 packet; t always holds the addresses and ports the
// packet carries now (rewrite keeps it current). Ports: TCP, UDP and SCTP
// ports; an ICMP echo's identifier as the source port of a request and the
// destination port of a reply (so a reply is the reverse of its request);
// zero otherwise, and in later fragments.
struct pkt {
	struct ct_key t;
	struct ct_key inner; // ICMP error: the quoted datagram, as it was sent
	__u32 l4_off;
	__u32 csum_off;
	__be16 ip_id;
	__u8 tcp_flags;
	__u8 frag;     // NR_FRAG_* (frag.h)
	__u8 icmp_err; // an ICMP error whose quoted datagram is in inner
	__u8 nat;      // TCP or UDP with its header here: translatable
	__u8 refused;  // turned into a refusal (refuse)
	__u8 pad;
};

#include "guard.h"
#include "policy.h"
#include "frag.h"

// ports loads the two 16-bit fields at off: the ports of TCP, UDP and
// SCTP alike.
static __always_inline int ports(struct __sk_buff *skb, __u32 off, struct ct_key *t)
{
	__be16 pp[2];

	if (bpf_skb_load_bytes(skb, off, pp, sizeof(pp)) < 0)
		return -1;
	t->sport = pp[0];
	t->dport = pp[1];
	return 0;
}

// parse_icmp reads an echo's identifier, or the datagram an error quotes.
static __always_inline int parse_icmp(struct __sk_buff *skb, struct pkt *p)
{
	struct icmphdr ic;
	struct iphdr in;

	if (bpf_skb_load_bytes(skb, p->l4_off, &ic, sizeof(ic)) < 0)
		return -1;
	switch (ic.type) {
	case ICMP_ECHO:
		p->t.sport = ((__be16 *)&ic.unused)[0];
		return 0;
	case ICMP_ECHOREPLY:
		p->t.dport = ((__be16 *)&ic.unused)[0];
		return 0;
	case ICMP_DEST_UNREACH:
	case ICMP_TIME_EXCEEDED:
	case ICMP_PARAMETERPROB:
		break;
	default:
		return 0;
	}
	if (bpf_skb_load_bytes(skb, p->l4_off + sizeof(ic), &in, sizeof(in)) < 0 ||
	    in.version != 4 || in.ihl < 5)
		return 0; // quotes nothing we can read: judged as plain ICMP
	p->inner.saddr = in.saddr;
	p->inner.daddr = in.daddr;
	p->inner.proto = in.protocol;
	if (has_ports(in.protocol) &&
	    ports(skb, p->l4_off + sizeof(ic) + in.ihl * 4, &p->inner) < 0)
		return 0;
	p->icmp_err = 1;
	return 0;
}

// l4_room reports whether the packet holds len bytes of L4 header at off.
static __always_inline __u8 l4_room(struct __sk_buff *skb, __u32 off, __u32 len)
{
	return skb->len >= off + len;
}

// parse reads an IPv4 packet; -1 when its headers cannot be read.
static __always_inline int parse(struct __sk_buff *skb, struct pkt *p)
{
	struct iphdr ip;
	__u16 off;

	if (bpf_skb_load_bytes(skb, IP_OFF, &ip, sizeof(ip)) < 0)
		return -1;
	if (ip.version != 4 || ip.ihl < 5)
		return -1;
	p->l4_off = IP_OFF + ip.ihl * 4;
	p->t.saddr = ip.saddr;
	p->t.daddr = ip.daddr;
	p->t.proto = ip.protocol;
	p->ip_id = ip.id;
	off = bpf_ntohs(ip.frag_off);
	if (off & 0x1fff) {
		p->frag = NR_FRAG_LATER; // no L4 header: frag.h
		return 0;
	}
	if (off & 0x2000)
		p->frag = NR_FRAG_FIRST;

	switch (ip.protocol) {
	case IPPROTO_TCP: {
		// Ports and flags are what policy needs: a first fragment cut
		// short of the checksum is judged, but cannot be translated.
		__u8 th[14];
		if (bpf_skb_load_bytes(skb, p->l4_off, th, sizeof(th)) < 0)
			return -1;
		__builtin_memcpy(&p->t.sport, th, 2);
		__builtin_memcpy(&p->t.dport, th + 2, 2);
		p->tcp_flags = th[13];
		p->csum_off = p->l4_off + offsetof(struct tcphdr, check);
		p->nat = l4_room(skb, p->l4_off, sizeof(struct tcphdr));
		return 0;
	}
	case IPPROTO_UDP:
		if (ports(skb, p->l4_off, &p->t) < 0)
			return -1;
		p->csum_off = p->l4_off + offsetof(struct udphdr, check);
		p->nat = l4_room(skb, p->l4_off, sizeof(struct udphdr));
		return 0;
	case IPPROTO_SCTP:
		return ports(skb, p->l4_off, &p->t);
	case IPPROTO_ICMP:
		return parse_icmp(skb, p);
	}
	return 0;
}

static __always_inline struct config *config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&nr_config, &zero);
}

static __always_inline __u64 l4_flags(const struct pkt *p)
{
	// A UDP checksum of 0 means "none": keep it so, and never produce 0.
	return p->t.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
}

static __always_inline int set_addr(struct __sk_buff *skb, const struct pkt *p,
				    __u32 off, __be32 from, __be32 to)
{
	if (bpf_l4_csum_replace(skb, p->csum_off, from, to,
				BPF_F_PSEUDO_HDR | sizeof(to) | l4_flags(p)) < 0)
		return -1;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, from, to, sizeof(to)) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, off, &to, sizeof(to), 0);
}

static __always_inline int set_port(struct __sk_buff *skb, const struct pkt *p,
				    __u32 off, __be16 from, __be16 to)
{
	if (bpf_l4_csum_replace(skb, p->csum_off, from, to,
				sizeof(to) | l4_flags(p)) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, off, &to, sizeof(to), 0);
}

// set_sport changes the source port: only SNAT does. Not inlined: clang
// then lays its caller's stack out far larger than the 512 bytes allowed.
static __noinline int set_sport(struct __sk_buff *skb, struct pkt *p, __be16 sport)
{
	if (set_port(skb, p, p->l4_off, p->t.sport, sport) < 0)
		return -1;
	p->t.sport = sport;
	return 0;
}

// rewrite sets the packet's addresses and ports, fixing both checksums.
static __always_inline int rewrite(struct __sk_buff *skb, struct pkt *p,
				   __be32 saddr, __be32 daddr,
				   __be16 sport, __be16 dport)
{
	if (saddr != p->t.saddr) {
		if (set_addr(skb, p, IP_SRC_OFF, p->t.saddr, saddr) < 0)
			return -1;
		p->t.saddr = saddr;
	}
	if (daddr != p->t.daddr) {
		if (set_addr(skb, p, IP_DST_OFF, p->t.daddr, daddr) < 0)
			return -1;
		p->t.daddr = daddr;
	}
	if (sport != p->t.sport && set_sport(skb, p, sport) < 0)
		return -1;
	if (dport != p->t.dport) {
		if (set_port(skb, p, p->l4_off + 2, p->t.dport, dport) < 0)
			return -1;
		p->t.dport = dport;
	}
	return 0;
}

// judge applies the policy to a packet leaving a pod: the egress side of
// the sender, and for a local destination that the fast path will reach
// (skipping its to-pod hook) the ingress side of that pod, whose host-side
// veth it returns in *ifindex (0: no fast path). Policy judges conn, the
// connection as the pods see it: p itself, or for a reply whose source was
// just restored to the service, p before that. 0, or TC_ACT_SHOT.
static __always_inline int judge(const struct pkt *p, const struct pkt *conn,
				 const int hook, __be32 pod, __u32 *ifindex)
{
	struct config *cfg;
	struct endpoint *ep;
	int v;

	*ifindex = 0;
	if (edge_hook(hook))
		return 0; // the outside and the node have no egress policy
	v = policy_egress(NULL, conn);
	if (v != NR_POLICY_ALLOW)
		return drop(pod, v == NR_POLICY_FULL ? NR_DROP_CT_FULL : NR_DROP_EGRESS);
	if (hook != HOOK_HOST_INGRESS)
		return 0;
	cfg = config();
	if (!cfg || !(cfg->flags & NR_CFG_FASTPATH))
		return 0;
	ep = bpf_map_lookup_elem(&nr_endpoints, &p->t.daddr);
	if (!ep)
		return 0;
	v = policy_ingress(NULL, conn);
	if (v != NR_POLICY_ALLOW)
		return drop(p->t.daddr, v == NR_POLICY_FULL ? NR_DROP_CT_FULL : NR_DROP_INGRESS);
	*ifindex = ep->ifindex;
	return 0;
}

// forward sends a judged packet on: straight into a local pod (ifindex,
// from judge), or to the host stack.
static __always_inline int forward(struct __sk_buff *skb, __u32 ifindex, bool translated)
{
	if (ifindex) {
		// The frame was addressed to the gateway (or, on a bridge, to
		// the peer's MAC as seen by the bridge port): make the peer
		// accept it.
		bpf_skb_change_type(skb, PACKET_HOST);
		return bpf_redirect_peer(ifindex, 0);
	}
	return translated ? TC_ACT_OK : TC_ACT_UNSPEC;
}

struct pseudo_hdr {
	__be32 saddr;
	__be32 daddr;
	__u8 zero;
	__u8 proto;
	__be16 len;
};

// reply_buf holds the headers refuse builds a reply from.
struct reply_buf {
	struct ethhdr eth;
	__u16 pad;
	struct iphdr ip, rip;
	struct tcphdr th, rst;
	struct pseudo_hdr ph;
	struct udphdr uh;
	struct icmphdr ic;
};

// conn_tmp holds commit_conn's working copies: on the stack for a pod's
// hooks, in scratch at the edge (whose frames have no room left).
struct conn_tmp {
	struct ct_key client, rk;
	struct ct_value rev;
};

// edge_state is what the edge hooks keep of a packet (edge).
struct edge_state {
	struct pkt p;
	struct ct_value fwd;
	struct conn_tmp tmp; // right after fwd: uplink_commit finds it there
	struct ct_key orig;
};

// scratch is per-CPU room for what does not fit the 512-byte stack beside
// the rest of a program: fib_route's lookup, refuse's headers, the edge
// hooks' packet. Raw bytes (cast where used): the Go bindings have no use
// for these types, and cannot express some of them.
struct scratch {
	__u8 fib[sizeof(struct bpf_fib_lookup)];
	__u8 reply[sizeof(struct reply_buf)];
	__u8 edge[sizeof(struct edge_state)];
} __attribute__((aligned(8)));

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nr_scratch SEC(".maps");

#define AF_INET 2

static __always_inline __be32 node_addr(void)
{
	struct config *cfg = config();

	return cfg ? cfg->node_ip : 0;
}

// fib_out sends a translated packet on as the node would route it, without
// the stack's input routing: that drops a packet whose source is one of
// the node's addresses as a martian (an SNATed packet, a reply restored to
// the node's address), and at the service device the packet is leaving
// the node's stack already. The kernel resolves the next hop's neighbour.
// A destination on the node itself is delivered (TC_ACT_OK), except from
// the service device, whose packets came from the node. A function of its
// own (not inlined): the lookup's parameters would not fit the callers'
// stack.
static __noinline int fib_route(struct __sk_buff *skb, __be32 saddr, __be32 daddr, __u32 hook)
{
	__u32 zero = 0;
	struct scratch *sc = bpf_map_lookup_elem(&nr_scratch, &zero);
	struct bpf_fib_lookup *f;
	struct bpf_redir_neigh nh = { .nh_family = AF_INET };
	long ret;

	if (!sc)
		return TC_ACT_SHOT;
	f = (struct bpf_fib_lookup *)sc->fib;
	__builtin_memset(f, 0, sizeof(*f));
	f->family = AF_INET;
	f->ipv4_src = saddr;
	f->ipv4_dst = daddr;
	f->ifindex = skb->ifindex;
	ret = bpf_fib_lookup(skb, f, sizeof(*f), BPF_FIB_LOOKUP_SKIP_NEIGH);
	if (ret == BPF_FIB_LKUP_RET_SUCCESS) {
		nh.ipv4_nh = f->ipv4_dst; // the gateway, if the route has one
		return bpf_redirect_neigh(f->ifindex, &nh, sizeof(nh), 0);
	}
	if (ret == BPF_FIB_LKUP_RET_NOT_FWDED && hook != HOOK_SERVICE)
		return TC_ACT_OK;
	return drop(0, NR_DROP_ROUTE);
}

static __always_inline int fib_out(struct __sk_buff *skb, const struct pkt *p, const int hook)
{
	return fib_route(skb, p->t.saddr, p->t.daddr, hook);
}

// At the edge, the service code asks its caller (edge) to route or to
// refuse a packet: done one call deeper, fib_route or refuse_here would
// not fit the stack.
#define NR_ROUTE 1002
#define NR_REFUSE 1003

// deliver sends a judged packet on from any hook: at the edge, translated
// packets leave by fib_out and others are not ours; from a pod, forward.
static __always_inline int deliver(struct __sk_buff *skb, const struct pkt *p, const int hook,
				   __u32 ifindex, bool translated)
{
	if (edge_hook(hook))
		return translated ? NR_ROUTE : TC_ACT_UNSPEC;
	return forward(skb, ifindex, translated);
}

static __always_inline __u16 csum_fold(__s64 sum)
{
	__u32 s = (__u32)sum;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

static __always_inline void swap_eth(struct ethhdr *eth)
{
	__u8 tmp[ETH_ALEN];

	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
}

static __always_inline void reply_ip(struct iphdr *rip, const struct iphdr *ip,
				     __u8 proto, __u16 len)
{
	rip->version = 4;
	rip->ihl = 5;
	rip->tot_len = bpf_htons(len);
	rip->frag_off = bpf_htons(0x4000); // DF
	rip->ttl = 64;
	rip->protocol = proto;
	rip->saddr = ip->daddr;
	rip->daddr = ip->saddr;
	rip->check = csum_fold(bpf_csum_diff(0, 0, (__be32 *)rip, sizeof(*rip), 0));
}

// refuse_tcp turns the packet into the RST its sender would get from a
// closed port (RFC 9293 3.10.7.1), addressed from the service.
static __always_inline int refuse_tcp(struct __sk_buff *skb, __u32 l4_off, struct reply_buf *b)
{
	struct ethhdr *eth = &b->eth;
	struct iphdr *ip = &b->ip, *rip = &b->rip;
	struct tcphdr *th = &b->th, *rst = &b->rst;
	struct pseudo_hdr *ph = &b->ph;
	__u32 seglen;
	__s64 sum;

	__builtin_memset(rip, 0, sizeof(*rip));
	__builtin_memset(rst, 0, sizeof(*rst));
	__builtin_memset(ph, 0, sizeof(*ph));

	if (bpf_skb_load_bytes(skb, 0, eth, sizeof(*eth)) < 0 ||
	    bpf_skb_load_bytes(skb, IP_OFF, ip, sizeof(*ip)) < 0 ||
	    bpf_skb_load_bytes(skb, l4_off, th, sizeof(*th)) < 0)
		return -1;
	if (th->rst)
		return -1;
	seglen = bpf_ntohs(ip->tot_len) - ip->ihl * 4 - th->doff * 4 + th->syn + th->fin;

	rst->source = th->dest;
	rst->dest = th->source;
	rst->doff = 5;
	rst->rst = 1;
	if (th->ack) {
		rst->seq = th->ack_seq;
	} else {
		rst->ack = 1;
		rst->ack_seq = bpf_htonl(bpf_ntohl(th->seq) + seglen);
	}
	reply_ip(rip, ip, IPPROTO_TCP, sizeof(*rip) + sizeof(*rst));
	ph->saddr = rip->saddr;
	ph->daddr = rip->daddr;
	ph->proto = IPPROTO_TCP;
	ph->len = bpf_htons(sizeof(*rst));
	sum = bpf_csum_diff(0, 0, (__be32 *)ph, sizeof(*ph), 0);
	sum = bpf_csum_diff(0, 0, (__be32 *)rst, sizeof(*rst), (__u32)sum);
	rst->check = csum_fold(sum);
	swap_eth(eth);

	if (bpf_skb_change_tail(skb, ETH_HLEN + sizeof(*rip) + sizeof(*rst), 0) < 0)
		return -1;
	if (bpf_skb_store_bytes(skb, 0, eth, sizeof(*eth), BPF_F_RECOMPUTE_CSUM) < 0 ||
	    bpf_skb_store_bytes(skb, IP_OFF, rip, sizeof(*rip), BPF_F_RECOMPUTE_CSUM) < 0 ||
	    bpf_skb_store_bytes(skb, IP_OFF + sizeof(*rip), rst, sizeof(*rst), BPF_F_RECOMPUTE_CSUM) < 0)
		return -1;
	return 0;
}

// refuse_udp turns the datagram into an ICMP port unreachable carrying its
// IP header and first 8 bytes (RFC 792), addressed from the service.
static __always_inline int refuse_udp(struct __sk_buff *skb, __u32 l4_off, struct reply_buf *b)
{
	struct ethhdr *eth = &b->eth;
	struct iphdr *ip = &b->ip, *rip = &b->rip;
	struct udphdr *uh = &b->uh;
	struct icmphdr *ic = &b->ic;
	__u32 room = sizeof(*rip) + sizeof(*ic);
	__s64 sum;

	__builtin_memset(rip, 0, sizeof(*rip));
	__builtin_memset(ic, 0, sizeof(*ic));

	if (bpf_skb_load_bytes(skb, 0, eth, sizeof(*eth)) < 0 ||
	    bpf_skb_load_bytes(skb, IP_OFF, ip, sizeof(*ip)) < 0 ||
	    bpf_skb_load_bytes(skb, l4_off, uh, sizeof(*uh)) < 0)
		return -1;
	if (ip->ihl != 5)
		return -1; // quoting options is not worth it: dropped instead

	ic->type = ICMP_DEST_UNREACH;
	ic->code = ICMP_PORT_UNREACH;
	sum = bpf_csum_diff(0, 0, (__be32 *)ic, sizeof(*ic), 0);
	sum = bpf_csum_diff(0, 0, (__be32 *)ip, sizeof(*ip), (__u32)sum);
	sum = bpf_csum_diff(0, 0, (__be32 *)uh, sizeof(*uh), (__u32)sum);
	ic->checksum = csum_fold(sum);
	reply_ip(rip, ip, IPPROTO_ICMP, room + sizeof(*ip) + sizeof(*uh));
	swap_eth(eth);

	// Room for the new IP and ICMP headers in front of the original IP
	// header, which with the UDP header becomes the quoted datagram.
	if (bpf_skb_adjust_room(skb, room, BPF_ADJ_ROOM_MAC, 0) < 0)
		return -1;
	if (bpf_skb_change_tail(skb, ETH_HLEN + room + sizeof(*ip) + sizeof(*uh), 0) < 0)
		return -1;
	if (bpf_skb_store_bytes(skb, 0, eth, sizeof(*eth), BPF_F_RECOMPUTE_CSUM) < 0 ||
	    bpf_skb_store_bytes(skb, IP_OFF, rip, sizeof(*rip), BPF_F_RECOMPUTE_CSUM) < 0 ||
	    bpf_skb_store_bytes(skb, IP_OFF + sizeof(*rip), ic, sizeof(*ic), BPF_F_RECOMPUTE_CSUM) < 0)
		return -1;
	return 0;
}

// refuse_here answers for a service without backends, back into the
// sender. A function of its own (not inlined): the replies it builds
// would not fit the callers' stack.
static __noinline int refuse_here(struct __sk_buff *skb, __u32 l4_off, __u32 proto, __u32 hook)
{
	int err;

	__u32 zero = 0;
	struct scratch *sc = bpf_map_lookup_elem(&nr_scratch, &zero);

	if (!sc)
		return TC_ACT_SHOT;
	if (proto == IPPROTO_TCP)
		err = refuse_tcp(skb, l4_off, (struct reply_buf *)sc->reply);
	else
		err = refuse_udp(skb, l4_off, (struct reply_buf *)sc->reply);
	if (err < 0)
		return TC_ACT_SHOT;
	if (hook == HOOK_HOST_INGRESS) {
		bpf_skb_change_type(skb, PACKET_HOST);
		return bpf_redirect_peer(skb->ifindex, 0);
	}
	return bpf_redirect(skb->ifindex, BPF_F_INGRESS);
}

static __always_inline int refuse(struct __sk_buff *skb, struct pkt *p, const int hook)
{
	p->refused = 1;
	if (edge_hook(hook))
		return NR_REFUSE;
	return refuse_here(skb, p->l4_off, p->t.proto, hook);
}

static __always_inline __u32 mix32(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

static __always_inline __u32 hash_tuple(const struct ct_key *t)
{
	__u32 h = mix32(t->saddr);

	h = mix32(h ^ t->daddr);
	h = mix32(h ^ (((__u32)t->sport << 16) | t->dport));
	return mix32(h ^ t->proto);
}

// backend_at returns the backend in slot of the service, if the slot is
// still in use and still holds ip:port (when ip is not 0).
static __always_inline struct backend *backend_at(const struct svc_value *svc,
						  __u32 slot, __be32 ip, __be16 port)
{
	struct backend_key bk = { .svc_id = svc->id, .slot = slot };
	struct backend *b;

	if (slot >= svc->count)
		return NULL;
	b = bpf_map_lookup_elem(&nr_backends, &bk);
	if (!b || (ip && (b->ip != ip || b->port != port)))
		return NULL;
	return b;
}

// pick chooses a backend for a new connection: the client's affine backend
// while it is still in the service, else a random or hashed slot.
static __always_inline int pick(const struct pkt *p, const struct svc_value *svc,
				struct backend *out, __u32 *slot)
{
	struct affinity_key ak = { .svc_id = svc->id, .client = p->t.saddr };
	struct affinity_value *av;
	struct backend *b = NULL;
	__u64 timeout = (svc->affinity_s ? svc->affinity_s : NR_AFFINITY_TIMEOUT_S) * NR_SEC;

	if (svc->flags & NR_SVC_AFFINITY) {
		av = bpf_map_lookup_elem(&nr_affinity, &ak);
		if (av && nr_now() - av->last_ns < timeout) {
			*slot = av->slot;
			b = backend_at(svc, av->slot, av->ip, av->port);
		}
	}
	if (!b) {
		if (svc->flags & NR_SVC_HASH)
			*slot = hash_tuple(&p->t) % svc->count;
		else
			*slot = bpf_get_prandom_u32() % svc->count;
		b = backend_at(svc, *slot, 0, 0);
		if (!b)
			return -1;
	}
	*out = *b;
	return 0;
}

// remember_affinity records the client's backend, once the connection is
// allowed.
static __always_inline void remember_affinity(const struct ct_key *client, const struct ct_value *fwd)
{
	struct affinity_key ak = { .svc_id = fwd->svc_id, .client = client->saddr };
	struct affinity_value nav = {
		.last_ns = nr_now(), .ip = fwd->addr, .port = fwd->port, .slot = fwd->slot,
	};

	bpf_map_update_elem(&nr_affinity, &ak, &nav, BPF_ANY);
}

// ct_find looks a service conntrack entry up, deleting an expired one.
static __always_inline struct ct_value *ct_find(const struct ct_key *k, __u64 now)
{
	struct ct_value *v = bpf_map_lookup_elem(&nr_ct, k);

	if (v && ct_expired(k->proto, v->state, v->seen_ns, now)) {
		ct_delete(&nr_ct, k, v->owner, false, v->charged);
		return NULL;
	}
	return v;
}

static __always_inline void ct_touch(struct ct_value *v, const struct pkt *p, __u64 now)
{
	ct_advance(&v->state, &v->charged, &v->seen_ns, v->owner, false, p->t.proto, p->tcp_flags, now);
}

// ct_store writes a service conntrack entry, charging its owner for a new
// key (or a key whose closed entry it reopens); false when the owner has
// no room left or the table none.
static __always_inline bool ct_store(const struct ct_key *k, struct ct_value *v)
{
	struct ct_value *old = bpf_map_lookup_elem(&nr_ct, k);

	if (old) {
		v->charged = old->charged;
		if (!v->charged && v->state != NR_CT_STATE_CLOSING && ct_charge(v->owner, false, 1))
			v->charged = 1;
		return bpf_map_update_elem(&nr_ct, k, v, BPF_ANY) == 0;
	}
	if (!ct_charge(v->owner, false, 1))
		return false;
	v->charged = 1;
	if (bpf_map_update_elem(&nr_ct, k, v, BPF_NOEXIST) == 0)
		return true;
	// Another CPU stored it meanwhile, charged: its charge stands for ours.
	ct_refund(v->owner, false, 1);
	return bpf_map_update_elem(&nr_ct, k, v, BPF_EXIST) == 0;
}

// reverse_of builds the REV entry of a FWD entry for client packet c: the
// key a backend's reply carries, and the service and client to restore.
static __always_inline void reverse_of(const struct ct_key *c, const struct ct_value *fwd,
				       struct ct_key *rk, struct ct_value *rev)
{
	rk->saddr = fwd->addr;
	rk->daddr = fwd->nat_addr ? fwd->nat_addr : c->saddr;
	rk->sport = fwd->port;
	rk->dport = fwd->nat_port ? fwd->nat_port : c->sport;
	rk->proto = c->proto;
	rev->addr = c->daddr;
	rev->port = c->dport;
	rev->type = NR_CT_REV;
	rev->flags = fwd->flags;
	rev->nat_addr = fwd->nat_addr ? c->saddr : 0;
	rev->nat_port = fwd->nat_port ? c->sport : 0;
	rev->svc_id = fwd->svc_id;
	rev->state = fwd->state;
	rev->owner = c->saddr;
	rev->seen_ns = fwd->seen_ns;
}

// forget_stale_rev deletes the REV entry of an earlier service connection
// that a packet to a pod IP (no service) would inherit: the same client
// address and port to the same backend address and port. Linux hands the
// same ephemeral port out again for another destination, and conntrack
// entries outlive their connections, so without this the replies of a
// direct connection would be rewritten as coming from the service. TCP is
// checked on its SYN only (a live service connection and a new direct one
// cannot share the tuple on the backend either); UDP on every packet. The
// source is validated, so a pod can only forget its own connections.
static __always_inline void forget_stale_rev(const struct pkt *p)
{
	struct ct_key rk = {};
	struct ct_value *ct;

	if (p->t.proto == IPPROTO_TCP &&
	    (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) != TCP_FLAG_SYN)
		return;
	rk.saddr = p->t.daddr;
	rk.daddr = p->t.saddr;
	rk.sport = p->t.dport;
	rk.dport = p->t.sport;
	rk.proto = p->t.proto;
	ct = bpf_map_lookup_elem(&nr_ct, &rk);
	if (ct && ct->type == NR_CT_REV)
		ct_delete(&nr_ct, &rk, ct->owner, false, ct->charged);
}

// readdressed reports whether a packet marked NR_MARK_READDRESSED really is
// the second pass of a translated one (see from_pod): a connection to the
// backend it is addressed to must be tracked. A pod can set the mark on
// its own packets (SO_MARK), so the mark alone proves nothing.
static __always_inline bool readdressed(const struct pkt *p)
{
	struct ct_key rk = {
		.saddr = p->t.daddr, .daddr = p->t.saddr, .sport = p->t.dport,
		.dport = p->t.sport, .proto = p->t.proto,
	};
	struct ct_value *ct = bpf_map_lookup_elem(&nr_ct, &rk);

	return ct && ct->type == NR_CT_REV;
}

// service_reply gives a backend's reply its service address back.
static __always_inline int service_reply(struct __sk_buff *skb, struct pkt *p, struct ct_value *ct,
					 const int hook, __be32 pod, __u64 now)
{
	__be32 daddr = ct->nat_addr ? ct->nat_addr : p->t.daddr;
	__be16 dport = ct->nat_port ? ct->nat_port : p->t.dport;
	struct pkt reply = *p;
	__u32 ifindex;

	if (rewrite(skb, p, ct->addr, daddr, ct->port, dport) < 0)
		return drop(pod, NR_DROP_NAT);
	if (judge(p, &reply, hook, pod, &ifindex) != 0)
		return TC_ACT_SHOT;
	ct_touch(ct, p, now);
	// The reply of a NodePort or external IP connection now comes from
	// the node's address: the stack would drop it as a martian.
	if (hook == HOOK_HOST_INGRESS && !ifindex && p->t.saddr == node_addr())
		return fib_out(skb, p, hook);
	return deliver(skb, p, hook, ifindex, true);
}

// snat_port gives a new SNAT connection a source port whose reply tuple
// (as reverse_of builds it) is free: the hash of the client's tuple, then
// the next ports.
static __always_inline int snat_port(const struct ct_key *client, struct ct_value *fwd, __u64 now)
{
	struct ct_key rk = {
		.saddr = fwd->addr, .daddr = fwd->nat_addr, .sport = fwd->port, .proto = client->proto,
	};
	__u32 base = hash_tuple(client) % NR_SNAT_RANGE;

	for (int i = 0; i < NR_SNAT_TRIES; i++) {
		rk.dport = bpf_htons(NR_SNAT_MIN + (base + i) % NR_SNAT_RANGE);
		if (!ct_find(&rk, now)) {
			fwd->nat_port = rk.dport;
			return 0;
		}
	}
	return -1;
}

// NR_OPENED: open_conn chose a backend; any other value is the packet's
// verdict.
#define NR_OPENED 1001

// open_conn fills fwd for a new connection (or a retransmitted SYN, which
// keeps its backend and source translation): the service's backend, and at
// the node's edge who opened it and whether its source becomes the node's.
// A packet to no service is not a service packet; a service without
// backends refuses it (dropped when it comes from outside).
static __always_inline int open_conn(struct __sk_buff *skb, struct pkt *p, struct ct_value *ct,
				     const int hook, __be32 pod, __u64 now, struct ct_value *fwd,
				     bool *affinity)
{
	struct svc_key sk = { .ip = p->t.daddr, .port = p->t.dport, .proto = p->t.proto };
	struct svc_value *svc;
	struct backend b;
	struct config *cfg;
	__u32 slot, ifindex;

	svc = bpf_map_lookup_elem(&nr_services, &sk);
	if (!svc) {
		if (hook == HOOK_UPLINK)
			return TC_ACT_UNSPEC;
		if (hook == HOOK_SERVICE) {
			// Routed to the service device, yet no service: fail now
			// rather than loop between the device's two ends.
			return refuse(skb, p, hook);
		}
		forget_stale_rev(p);
		if (judge(p, p, hook, pod, &ifindex) != 0)
			return TC_ACT_SHOT;
		return forward(skb, ifindex, false);
	}
	if (ct && ct->type == NR_CT_FWD && ct->svc_id == svc->id &&
	    backend_at(svc, ct->slot, ct->addr, ct->port)) {
		*fwd = *ct; // a retransmitted SYN: same backend, same source
		fwd->seen_ns = now;
		return NR_OPENED;
	}
	if (svc->count == 0) {
		if (hook == HOOK_UPLINK)
			return drop(0, NR_DROP_NO_BACKEND);
		return refuse(skb, p, hook);
	}
	if (pick(p, svc, &b, &slot) < 0)
		return TC_ACT_SHOT; // slots being rewritten: the sender retries
	cfg = config();
	fwd->addr = b.ip;
	fwd->port = b.port;
	fwd->type = NR_CT_FWD;
	fwd->svc_id = svc->id;
	fwd->slot = slot;
	fwd->owner = p->t.saddr;
	fwd->seen_ns = now;
	if (hook == HOOK_SERVICE) {
		fwd->flags = NR_CT_NODE;
	} else if (hook == HOOK_UPLINK) {
		fwd->flags = NR_CT_UPLINK;
		if (svc->flags & NR_SVC_SNAT) {
			if (!cfg || !cfg->node_ip)
				return drop(0, NR_DROP_NAT);
			fwd->flags |= NR_CT_SNAT;
			fwd->nat_addr = cfg->node_ip;
			if (snat_port(&p->t, fwd, now) < 0)
				return drop(0, NR_DROP_SNAT_PORTS);
		}
	} else if (b.ip == p->t.saddr) {
		// A pod reaching itself would drop its own address as a
		// martian source: it sees the hairpin address instead.
		fwd->flags = NR_CT_HAIRPIN;
		fwd->nat_addr = cfg && cfg->hairpin_ip ? cfg->hairpin_ip : bpf_htonl(NR_HAIRPIN_DEFAULT);
	}
	*affinity = svc->flags & NR_SVC_AFFINITY;
	return NR_OPENED;
}


// syn_only: a TCP SYN that is not a SYN-ACK.
static __always_inline bool syn_only(const struct pkt *p)
{
	return p->t.proto == IPPROTO_TCP &&
	       (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
}


// commit_conn translates a packet of the connection fwd (fresh: just
// opened; else ct, its entry) and, once policy allows it, writes the
// connection's state.
static __always_inline int commit_conn(struct __sk_buff *skb, struct pkt *p, struct ct_value *ct,
				       struct ct_value *fwd, const int hook, __be32 pod, bool fresh,
				       bool affinity, struct conn_tmp *tmp)
{
	struct ct_value *have;
	__u64 now = nr_now();
	__u32 ifindex;

	__builtin_memset(tmp, 0, sizeof(*tmp));
	tmp->client = p->t;

	// Only connections from outside are SNATed (open_conn chose the
	// port). Saying so where it holds keeps the verifier from exploring
	// SNAT at every other hook.
	if (hook != HOOK_UPLINK)
		fwd->nat_port = 0;
	fwd->state = ct_next(p->t.proto, fwd->state, p->tcp_flags);
	reverse_of(&tmp->client, fwd, &tmp->rk, &tmp->rev);

	if (rewrite(skb, p, fwd->nat_addr ? fwd->nat_addr : p->t.saddr, fwd->addr,
		    fwd->nat_port ? fwd->nat_port : p->t.sport, fwd->port) < 0)
		return drop(pod, NR_DROP_NAT);
	if (judge(p, p, hook, pod, &ifindex) != 0)
		return TC_ACT_SHOT;
	if (fresh) {
		// Reverse entry first: a reply can never find a connection
		// whose reverse translation is missing.
		if (!ct_store(&tmp->rk, &tmp->rev) || !ct_store(&tmp->client, fwd))
			return drop(pod, NR_DROP_CT_FULL);
		if (affinity)
			remember_affinity(&tmp->client, fwd);
	} else {
		ct_touch(ct, p, now);
		// The reverse entry is put back if it went missing (deleted
		// by the control plane, expired while the client spoke alone).
		have = bpf_map_lookup_elem(&nr_ct, &tmp->rk);
		if (have)
			ct_touch(have, p, now);
		else if (!ct_store(&tmp->rk, &tmp->rev))
			return drop(pod, NR_DROP_CT_FULL);
	}
	// Leaving a macvlan or ipvlan pod, the frame is addressed to the next
	// hop of the clusterIP: the gateway, the node's shim. Send it to the
	// next hop of the backend instead, as the pod's own packets to that
	// address go: straight over the pod's segment to a backend on it,
	// without a detour through the node (the kernel resolves the
	// neighbour). The frame passes this hook once more, marked, and
	// readdressed lets it through untouched. Not for a pod reaching
	// itself: that goes through the node.
	if (hook == HOOK_POD_EGRESS && !fwd->nat_addr) {
		skb->mark |= NR_MARK_READDRESSED;
		return bpf_redirect_neigh(skb->ifindex, NULL, 0, 0);
	}
	return deliver(skb, p, hook, ifindex, true);
}

// service_packet translates a packet of a service connection: an
// established one keeps its backend; a new one picks one. State is written
// only once policy allows the translated connection.
static __always_inline struct ct_value *ct_copy(struct ct_value *dst, const struct ct_value *src)
{
	*dst = *src;
	return dst;
}

static __always_inline int service_packet(struct __sk_buff *skb, struct pkt *p, struct ct_value *ct,
					  const int hook, __be32 pod, __u64 now)
{
	struct ct_value fwd = {};
	struct conn_tmp tmp;
	bool affinity = false;
	int ret;

	// An established connection keeps its backend, even one that left the
	// service. A SYN reuses it only while the backend still is in the
	// service: the 4-tuple may be recycled.
	if (ct && ct->type == NR_CT_FWD && !syn_only(p))
		return commit_conn(skb, p, ct, ct_copy(&fwd, ct), hook, pod, false, false, &tmp);
	ret = open_conn(skb, p, ct, hook, pod, now, &fwd, &affinity);
	if (ret != NR_OPENED)
		return ret;
	return commit_conn(skb, p, ct, &fwd, hook, pod, true, affinity, &tmp);
}

// The edge hooks run open_conn and commit_conn each in a frame of its own
// (one frame has no room for both), specialised to one hook (so that each
// holds only its own code). NR_OPENED_AFFINE: opened, remember affinity.
#define NR_OPENED_AFFINE 1004
#define NR_COMMIT_FRESH 1
#define NR_COMMIT_AFFINITY 2

static __always_inline int edge_open(struct __sk_buff *skb, struct pkt *p, struct ct_value *ct,
				     struct ct_value *fwd, const int hook)
{
	bool affinity = false;
	int ret = open_conn(skb, p, ct, hook, 0, nr_now(), fwd, &affinity);

	return ret == NR_OPENED && affinity ? NR_OPENED_AFFINE : ret;
}

static __noinline int uplink_open(struct __sk_buff *skb, struct pkt *p, struct ct_value *ct, struct ct_value *fwd)
{
	return edge_open(skb, p, ct, fwd, HOOK_UPLINK);
}

static __noinline int host_open(struct __sk_buff *skb, struct pkt *p, struct ct_value *ct, struct ct_value *fwd)
{
	return edge_open(skb, p, ct, fwd, HOOK_SERVICE);
}

static __noinline int uplink_commit(struct __sk_buff *skb, struct pkt *p, struct ct_value *ct,
				    struct ct_value *fwd, __u32 how)
{
	struct conn_tmp *tmp = (struct conn_tmp *)(fwd + 1); // edge_state.tmp

	return commit_conn(skb, p, ct, fwd, HOOK_UPLINK, 0, how & NR_COMMIT_FRESH,
			   how & NR_COMMIT_AFFINITY, tmp);
}

static __noinline int host_commit(struct __sk_buff *skb, struct pkt *p, struct ct_value *ct,
				  struct ct_value *fwd, __u32 how)
{
	struct conn_tmp tmp;

	return commit_conn(skb, p, ct, fwd, HOOK_SERVICE, 0, how & NR_COMMIT_FRESH,
			   how & NR_COMMIT_AFFINITY, &tmp);
}

static __noinline int uplink_reply(struct __sk_buff *skb, struct pkt *p, struct ct_value *ct)
{
	return service_reply(skb, p, ct, HOOK_UPLINK, 0, nr_now());
}

// edge_service is service_packet at an edge hook.
static __always_inline int edge_service(struct __sk_buff *skb, struct pkt *p, struct ct_value *ct,
					const int hook, struct ct_value *fwd)
{
	__u32 how = 0;
	int ret;

	__builtin_memset(fwd, 0, sizeof(*fwd));
	if (ct && ct->type == NR_CT_FWD && !syn_only(p)) {
		*fwd = *ct;
	} else {
		ret = hook == HOOK_UPLINK ? uplink_open(skb, p, ct, fwd) : host_open(skb, p, ct, fwd);
		if (ret != NR_OPENED && ret != NR_OPENED_AFFINE)
			return ret;
		how = NR_COMMIT_FRESH | (ret == NR_OPENED_AFFINE ? NR_COMMIT_AFFINITY : 0);
	}
	if (hook == HOOK_UPLINK)
		return uplink_commit(skb, p, ct, fwd, how);
	return host_commit(skb, p, ct, fwd, how);
}

// from_pod_packet handles an unfragmented packet, or a first fragment,
// leaving a pod whose source is validated.
static __always_inline int from_pod_packet(struct __sk_buff *skb, struct pkt *p, const int hook,
					   __be32 pod)
{
	__u64 now = nr_now();
	struct ct_value *ct = NULL;
	__u32 ifindex;

	if (p->nat) {
		ct = ct_find(&p->t, now);
		if (ct && ct->type == NR_CT_REV)
			return service_reply(skb, p, ct, hook, pod, now);
		return service_packet(skb, p, ct, hook, pod, now);
	}
	if (judge(p, p, hook, pod, &ifindex) != 0)
		return TC_ACT_SHOT;
	return forward(skb, ifindex, false);
}

// from_pod_fragment sends a later fragment the way its first went.
static __always_inline int from_pod_fragment(struct __sk_buff *skb, const struct pkt *p, __be32 pod)
{
	struct frag_value *v = frag_lookup(p, NR_FRAG_FROM_POD);
	bool translated;

	if (!v)
		return pol_isolated(pod, NR_POL_EGRESS) ? drop(pod, NR_DROP_FRAGMENT) : TC_ACT_UNSPEC;
	if (!v->allowed)
		return drop(pod, NR_DROP_FRAGMENT);
	translated = v->saddr != p->t.saddr || v->daddr != p->t.daddr;
	if (frag_rewrite(skb, p, v) < 0)
		return drop(pod, NR_DROP_NAT);
	return forward(skb, v->ifindex, translated);
}

// from_pod handles a frame leaving a pod: its source is checked; replies
// of translated connections get their service address back; packets to a
// service are sent to the connection's backend, chosen on its first
// packet; policy judges what the pods see.
static __always_inline int from_pod(struct __sk_buff *skb, const int hook)
{
	struct src_binding *b;
	struct pkt p = {};
	struct ct_key orig;
	__u32 ifindex = 0;
	int ret;

	b = binding(skb);
	ret = guard_from_pod(skb, b);
	if (ret != NR_GUARD_IPV4 || !b)
		return ret;
	if (parse(skb, &p) < 0)
		return drop(b->ip, NR_DROP_MALFORMED);
	if (p.t.saddr != b->ip)
		return drop(b->ip, NR_DROP_SOURCE);
	if (p.frag == NR_FRAG_LATER)
		return from_pod_fragment(skb, &p, b->ip);
	if (hook == HOOK_POD_EGRESS && (skb->mark & NR_MARK_READDRESSED) && readdressed(&p)) {
		skb->mark &= ~NR_MARK_READDRESSED;
		return TC_ACT_UNSPEC; // translated and judged on its first pass
	}
	orig = p.t;
	ret = from_pod_packet(skb, &p, hook, b->ip);
	if (p.frag == NR_FRAG_FIRST) {
		if (ret == TC_ACT_REDIRECT && hook == HOOK_HOST_INGRESS) {
			struct endpoint *ep = bpf_map_lookup_elem(&nr_endpoints, &p.t.daddr);
			ifindex = ep ? ep->ifindex : 0;
		}
		frag_record(&orig, &p, NR_FRAG_FROM_POD, ret != TC_ACT_SHOT && !p.refused, ifindex);
	}
	return ret;
}

// to_pod_packet: ingress policy (judged before any translation: a reply
// is recognised by the backend's address), then replies of connections
// translated elsewhere (backend on another node, or without our program)
// get their service address back here.
static __always_inline int to_pod_packet(struct __sk_buff *skb, struct pkt *p, __be32 pod)
{
	struct pkt conn = *p;
	struct ct_value *ct = NULL, *fwd;
	struct ct_key fk = {};
	__u64 now = nr_now();
	int v;

	if (p->nat)
		ct = ct_find(&p->t, now);
	if (p->nat && (!ct || ct->type != NR_CT_REV)) {
		// A reply that our program on the backend (same node, routed)
		// has already given the service address back: judged as the
		// backend sent it.
		fk.saddr = p->t.daddr;
		fk.daddr = p->t.saddr;
		fk.sport = p->t.dport;
		fk.dport = p->t.sport;
		fk.proto = p->t.proto;
		fwd = bpf_map_lookup_elem(&nr_ct, &fk);
		if (fwd && fwd->type == NR_CT_FWD) {
			conn.t.saddr = fwd->addr;
			conn.t.sport = fwd->port;
			if (fwd->nat_addr)
				conn.t.daddr = fwd->nat_addr;
		}
	}
	v = policy_ingress(NULL, &conn);
	if (v != NR_POLICY_ALLOW)
		return drop(pod, v == NR_POLICY_FULL ? NR_DROP_CT_FULL : NR_DROP_INGRESS);
	if (ct && ct->type == NR_CT_REV) {
		__be32 daddr = ct->nat_addr ? ct->nat_addr : p->t.daddr;
		__be16 dport = ct->nat_port ? ct->nat_port : p->t.dport;
		ct_touch(ct, p, now);
		if (rewrite(skb, p, ct->addr, daddr, ct->port, dport) < 0)
			return drop(pod, NR_DROP_NAT);
		return TC_ACT_OK;
	}
	return TC_ACT_UNSPEC;
}

// to_pod_fragment lets a later fragment in the way its first came.
static __always_inline int to_pod_fragment(struct __sk_buff *skb, const struct pkt *p, __be32 pod)
{
	struct frag_value *v = frag_lookup(p, NR_FRAG_TO_POD);

	if (!v)
		return pol_isolated(p->t.daddr, NR_POL_INGRESS) ? drop(pod, NR_DROP_FRAGMENT) : TC_ACT_UNSPEC;
	if (!v->allowed)
		return drop(pod, NR_DROP_FRAGMENT);
	if (frag_rewrite(skb, p, v) < 0)
		return drop(pod, NR_DROP_NAT);
	return v->saddr != p->t.saddr || v->daddr != p->t.daddr ? TC_ACT_OK : TC_ACT_UNSPEC;
}

// to_pod handles a frame entering a pod.
static __always_inline int to_pod(struct __sk_buff *skb, const int hook)
{
	struct src_binding *b = binding(skb);
	__be32 pod = b ? b->ip : 0;
	struct pkt p = {};
	struct ct_key orig;
	int ret;

	ret = guard_to_pod(skb, b);
	if (ret != NR_GUARD_IPV4)
		return ret;
	if (parse(skb, &p) < 0)
		return drop(pod, NR_DROP_MALFORMED);
	if (p.frag == NR_FRAG_LATER)
		return to_pod_fragment(skb, &p, pod);
	orig = p.t;
	ret = to_pod_packet(skb, &p, pod);
	if (p.frag == NR_FRAG_FIRST)
		frag_record(&orig, &p, NR_FRAG_TO_POD, ret != TC_ACT_SHOT, 0);
	return ret;
}

// edge_owns reports whether a conntrack entry found at an edge hook is
// one that hook serves: at the uplink, the connections opened from
// outside (both ways) and the replies to the node's own; at the service
// device, the node's own. The others are the pods' (their hooks translate
// them), and must not be usable by a packet from outside.
static __always_inline bool edge_owns(const struct ct_value *ct, const int hook)
{
	if (hook == HOOK_SERVICE)
		return ct->type == NR_CT_FWD && (ct->flags & NR_CT_NODE);
	if (ct->type == NR_CT_FWD)
		return ct->flags & NR_CT_UPLINK;
	return ct->flags & (NR_CT_UPLINK | NR_CT_NODE);
}

// edge_fragment sends a later fragment the way its first went.
static __always_inline int edge_fragment(struct __sk_buff *skb, struct pkt *p, const int hook)
{
	struct frag_value *v = frag_lookup(p, NR_FRAG_EDGE);

	if (!v)
		return hook == HOOK_SERVICE ? drop(0, NR_DROP_FRAGMENT) : TC_ACT_UNSPEC;
	if (!v->allowed)
		return drop(0, NR_DROP_FRAGMENT);
	if (frag_rewrite(skb, p, v) < 0)
		return drop(0, NR_DROP_NAT);
	p->t.saddr = v->saddr;
	p->t.daddr = v->daddr;
	return fib_out(skb, p, hook);
}

// edge handles a packet at the node's edge: arriving on the uplink, or
// sent by the node to its service device. What is not a service
// connection of that hook is left alone at the uplink, and refused or
// dropped at the service device (nothing else is routed there).
static __always_inline int edge(struct __sk_buff *skb, const int hook)
{
	__u32 zero = 0;
	struct scratch *sc = bpf_map_lookup_elem(&nr_scratch, &zero);
	struct edge_state *st;
	struct ct_value *ct;
	struct pkt *p;
	int ret;

	if (skb->protocol != bpf_htons(ETH_P_IP) || !sc)
		return TC_ACT_UNSPEC;
	// The packet is kept in scratch, not on the stack: the frames of the
	// service code below need nearly all of it.
	st = (struct edge_state *)sc->edge;
	p = &st->p;
	__builtin_memset(p, 0, sizeof(*p));
	if (parse(skb, p) < 0)
		return hook == HOOK_SERVICE ? drop(0, NR_DROP_MALFORMED) : TC_ACT_UNSPEC;
	if (p->frag == NR_FRAG_LATER)
		return edge_fragment(skb, p, hook);
	if (!p->nat)
		return hook == HOOK_SERVICE ? TC_ACT_SHOT : TC_ACT_UNSPEC;
	st->orig = p->t;
	ct = ct_find(&st->orig, nr_now());
	if (ct && !edge_owns(ct, hook))
		ct = NULL;
	if (hook == HOOK_UPLINK && ct && ct->type == NR_CT_REV)
		ret = uplink_reply(skb, p, ct); // edge_owns: never at the service device
	else
		ret = edge_service(skb, p, ct, hook, &st->fwd);
	if (ret == NR_ROUTE)
		ret = fib_out(skb, p, hook);
	else if (ret == NR_REFUSE)
		ret = refuse_here(skb, p->l4_off, p->t.proto, hook);
	if (p->frag == NR_FRAG_FIRST && ret != TC_ACT_UNSPEC)
		frag_record(&st->orig, p, NR_FRAG_EDGE, ret != TC_ACT_SHOT && !p->refused, 0);
	return ret;
}

SEC("tc")
int nr_from_pod(struct __sk_buff *skb)
{
	return from_pod(skb, HOOK_HOST_INGRESS);
}

SEC("tc")
int nr_to_pod(struct __sk_buff *skb)
{
	return to_pod(skb, HOOK_HOST_EGRESS);
}

SEC("tc")
int nr_pod_egress(struct __sk_buff *skb)
{
	return from_pod(skb, HOOK_POD_EGRESS);
}

SEC("tc")
int nr_pod_ingress(struct __sk_buff *skb)
{
	return to_pod(skb, HOOK_POD_INGRESS);
}

SEC("tc")
int nr_uplink_in(struct __sk_buff *skb)
{
	return edge(skb, HOOK_UPLINK);
}

SEC("tc")
int nr_from_host(struct __sk_buff *skb)
{
	return edge(skb, HOOK_SERVICE);
}

// nr_gc_run collects expired connection state once, now (the timer does
// it every NR_GC_INTERVAL_NS); run with BPF_PROG_RUN by tests and
// benchmarks.
SEC("tc")
int nr_gc_run(struct __sk_buff *skb)
{
	__u32 zero = 0;

	gc_walk(bpf_map_lookup_elem(&nr_gc, &zero));
	return TC_ACT_OK;
}
