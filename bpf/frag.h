// IP fragments (datapath.c includes this file after the packet parser).
//
// Only the first fragment of a datagram carries its ports, so only it can
// be judged and translated. Its verdict and the addresses it left with are
// recorded in nr_frag under what identifies the datagram on the hook (the
// addresses it arrived with, protocol, IP ID, and whether it was leaving
// or entering the pod); later fragments follow that record: dropped with a
// denied first fragment, translated and sent the same way with an allowed
// one. A later fragment without a record (its first fragment was never
// seen, or came later) is dropped when the local pod is isolated in that
// direction, and passes untouched otherwise.
//
// Records live NR_FRAG_LIFE_NS (the kernel's reassembly timeout); the map
// is an LRU: a flood of fragments can only make other datagrams' later
// fragments wait for their records in vain (dropped at isolated pods),
// never let one through.

#ifndef NR_FRAG_H
#define NR_FRAG_H

#define NR_MAX_FRAGS 16384
#define NR_FRAG_LIFE_NS (30 * NR_SEC)

#define NR_FRAG_NONE 0
#define NR_FRAG_FIRST 1 // offset 0, more fragments follow
#define NR_FRAG_LATER 2 // offset > 0

#define NR_FRAG_FROM_POD 1
#define NR_FRAG_TO_POD 2
#define NR_FRAG_EDGE 3 // at the uplink or the service device

struct frag_key {
	__be32 saddr;
	__be32 daddr;
	__be16 id;
	__u8 proto;
	__u8 dir; // NR_FRAG_FROM_POD or NR_FRAG_TO_POD
};

struct frag_value {
	__be32 saddr; // as the first fragment left
	__be32 daddr;
	__u8 allowed;
	__u8 pad[3];
	__u32 ifindex; // from pod: the fast-path redirect taken, else 0
	__u64 seen_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NR_MAX_FRAGS);
	__type(key, struct frag_key);
	__type(value, struct frag_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nr_frag SEC(".maps");

static __always_inline struct frag_key frag_key_of(const struct ct_key *orig, __be16 id, __u8 dir)
{
	struct frag_key k = {
		.saddr = orig->saddr, .daddr = orig->daddr, .id = id,
		.proto = orig->proto, .dir = dir,
	};
	return k;
}

// frag_record remembers how the first fragment of a datagram went.
static __always_inline void frag_record(const struct ct_key *orig, const struct pkt *p,
					__u8 dir, bool allowed, __u32 ifindex)
{
	struct frag_key k = frag_key_of(orig, p->ip_id, dir);
	struct frag_value v = {
		.saddr = p->t.saddr, .daddr = p->t.daddr, .allowed = allowed,
		.ifindex = ifindex, .seen_ns = nr_now(),
	};

	bpf_map_update_elem(&nr_frag, &k, &v, BPF_ANY);
}

// frag_lookup finds the record of a later fragment's datagram.
static __always_inline struct frag_value *frag_lookup(const struct pkt *p, __u8 dir)
{
	struct frag_key k = frag_key_of(&p->t, p->ip_id, dir);
	struct frag_value *v = bpf_map_lookup_elem(&nr_frag, &k);

	if (v && nr_now() - v->seen_ns > NR_FRAG_LIFE_NS)
		return NULL;
	return v;
}

// set_addr_l3 rewrites an address of a packet without an L4 header here
// (a later fragment): only the IP header checksum covers it.
static __always_inline int set_addr_l3(struct __sk_buff *skb, __u32 off, __be32 from, __be32 to)
{
	if (from == to)
		return 0;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, from, to, sizeof(to)) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, off, &to, sizeof(to), 0);
}

static __always_inline int frag_rewrite(struct __sk_buff *skb, const struct pkt *p,
					const struct frag_value *v)
{
	if (set_addr_l3(skb, IP_SRC_OFF, p->t.saddr, v->saddr) < 0 ||
	    set_addr_l3(skb, IP_DST_OFF, p->t.daddr, v->daddr) < 0)
		return -1;
	return 0;
}

#endif
