// Network policy of the datapath (datapath.c includes this file after
// struct pkt and the maps it shares: nr_config).
//
// Two hooks, called on every TCP and UDP packet that leaves or enters a
// pod, with the connection as the pods see it: after a service's clusterIP
// is translated to its backend (so policies see backend pods and target
// ports, as Kubernetes requires), and before the reverse translation of a
// reply (so a reply is recognised as one):
//
//   policy_egress   every packet leaving a pod (nr_from_pod, nr_pod_egress):
//                   the egress side of the pod that sends it.
//   policy_ingress  every packet entering a pod: in nr_to_pod and
//                   nr_pod_ingress, and in nr_from_pod just before the fast
//                   path redirects to a local pod (which skips that pod's
//                   nr_to_pod): the ingress side of the pod that gets it.
//
// A verdict other than NR_POLICY_ALLOW drops the packet. The hooks never
// change the packet.
//
// Judging a new connection (pol_judge), for the local pod L of the hook
// and the remote address R:
//
//   1. L reaching itself (also through its own service, as the hairpin
//      address) is allowed.
//   2. nr_pol_pods {L, direction}: no entry, or not isolated: allowed.
//   3. nr_pol_ids (LPM on R): R's identity; no match is the world (0).
//      The identity of L's own node (1) is allowed.
//   4. nr_pol_rules (LPM): {L, identity, direction, protocol, port} and
//      {L, ANY, direction, protocol, port}; the port is the last field, so
//      one entry covers an aligned block of ports (a range is a few
//      blocks; every port is prefix length 80). A hit allows.
//
// Protocols. TCP, UDP and SCTP are judged by the rules' protocol and
// port. Any other protocol (ICMP included) has no ports that a rule could
// name: it is denied in each direction in which the local pod is isolated
// (the node's own addresses aside), except an ICMP error about a tracked
// connection, which passes so that path MTU discovery and unreachable
// reports keep working for allowed connections.
//
// Statefulness (nr_pol_ct): every allowed connection is recorded per hook
// direction, keyed as its first packet travelled (for a service
// connection: client -> backend); for TCP only a SYN records one, and only
// after the verdict allows it (a denied packet leaves no state). A packet
// passes without judging when its own entry (same direction), or the entry
// of the connection it answers (reversed tuple, other direction), carries
// the current revision (nr_pol_state). The control plane bumps the
// revision after each policy change: the next packet of every connection
// is judged again under the new policies, and the connection is cut only
// if they no longer allow it. Allowed connections never notice an update,
// and a 4-tuple reused after an update is never let through on an old
// verdict. Connections are tracked whether or not a side is isolated, so
// that isolating a pod later does not make the replies of its allowed
// connections look like new connections. Entries expire and are charged
// to their source (ct.h); a connection whose state cannot be recorded is
// refused (NR_POLICY_FULL), never let through untracked.

#ifndef NR_POLICY_H
#define NR_POLICY_H

#define NR_POLICY_ALLOW 0
#define NR_POLICY_DENY 1
#define NR_POLICY_FULL 2 // allowed, but no room to track it: dropped

// Directions (pol_pod_key.dir, pol_rule_key.dir, pol_ct_key.dir); mirrored
// in package datapath.
#define NR_POL_INGRESS 1
#define NR_POL_EGRESS 2

#define NR_POL_ISOLATED 1 // pol_pod.flags

// Reserved identities.
#define NR_POL_ID_WORLD 0          // no entry in nr_pol_ids
#define NR_POL_ID_HOST 1           // this node's own addresses: always allowed
#define NR_POL_ID_ANY 0xffffffff   // rules: any remote

// Prefix length of a rule key with every field fixed (local, remote, dir,
// proto, port): 12 bytes after prefixlen.
#define NR_POL_RULE_FULL 96

#define NR_MAX_POL_IDS 65536
#define NR_MAX_POL_PODS 32768
#define NR_MAX_POL_RULES 262144
#define NR_MAX_POL_CT 131072

struct pol_id_key {
	__u32 prefixlen;
	__be32 addr;
};

struct pol_id {
	__u32 id;
};

struct pol_pod_key {
	__be32 ip;
	__u8 dir;
	__u8 pad[3];
};

struct pol_pod {
	__u32 flags; // NR_POL_ISOLATED
};

struct pol_rule_key {
	__u32 prefixlen;
	__be32 local;  // the pod the rule belongs to
	__u32 remote;  // identity, or NR_POL_ID_ANY
	__u8 dir;
	__u8 proto;
	__be16 port;   // first port of the block; the prefix length says how many
};

struct pol_rule {
	__u32 flags; // none yet
};

struct pol_ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 dir; // the hook direction that judged it
	__u8 pad[2];
};

struct pol_ct {
	__u32 revision; // nr_pol_state.revision when last judged
	__u8 state;     // NR_CT_STATE_*
	__u8 charged;   // counted in its owner's share (ct.h)
	__u8 pad[2];
	__be32 owner;   // the source charged for it (ct.h)
	__u32 pad2;
	__u64 seen_ns;  // last packet, nr_now()
};

struct pol_state {
	__u32 revision;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, NR_MAX_POL_IDS);
	__type(key, struct pol_id_key);
	__type(value, struct pol_id);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nr_pol_ids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NR_MAX_POL_PODS);
	__type(key, struct pol_pod_key);
	__type(value, struct pol_pod);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nr_pol_pods SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, NR_MAX_POL_RULES);
	__type(key, struct pol_rule_key);
	__type(value, struct pol_rule);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nr_pol_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NR_MAX_POL_CT);
	__type(key, struct pol_ct_key);
	__type(value, struct pol_ct);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nr_pol_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pol_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nr_pol_state SEC(".maps");

#include "ct.h"

static __always_inline __u8 pol_other(__u8 dir)
{
	return dir == NR_POL_EGRESS ? NR_POL_INGRESS : NR_POL_EGRESS;
}

static __always_inline bool has_ports(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

// pol_isolated reports whether the local pod is isolated in dir.
static __always_inline bool pol_isolated(__be32 local, __u8 dir)
{
	struct pol_pod_key pk = { .ip = local, .dir = dir };
	struct pol_pod *pod = bpf_map_lookup_elem(&nr_pol_pods, &pk);

	return pod && (pod->flags & NR_POL_ISOLATED);
}

// pol_judge decides a new connection t (as its first packet travels) on
// the dir side of the local pod.
static __always_inline int pol_judge(const struct ct_key *t, __u8 dir)
{
	__be32 local = dir == NR_POL_EGRESS ? t->saddr : t->daddr;
	__be32 remote = dir == NR_POL_EGRESS ? t->daddr : t->saddr;
	struct pol_id_key ik = { .prefixlen = 32, .addr = remote };
	struct pol_rule_key rk = {};
	struct pol_id *id;
	struct config *cfg;
	__u32 zero = 0;
	__be32 hairpin = bpf_htonl(NR_HAIRPIN_DEFAULT);

	if (t->saddr == t->daddr)
		return NR_POLICY_ALLOW;
	cfg = bpf_map_lookup_elem(&nr_config, &zero);
	if (cfg && cfg->hairpin_ip)
		hairpin = cfg->hairpin_ip;
	if (t->saddr == hairpin || t->daddr == hairpin)
		return NR_POLICY_ALLOW; // a pod reaching itself through a service
	if (!pol_isolated(local, dir))
		return NR_POLICY_ALLOW;
	id = bpf_map_lookup_elem(&nr_pol_ids, &ik);
	rk.remote = id ? id->id : NR_POL_ID_WORLD;
	if (rk.remote == NR_POL_ID_HOST)
		return NR_POLICY_ALLOW;
	if (!has_ports(t->proto))
		return NR_POLICY_DENY;
	rk.prefixlen = NR_POL_RULE_FULL;
	rk.local = local;
	rk.dir = dir;
	rk.proto = t->proto;
	rk.port = t->dport;
	if (bpf_map_lookup_elem(&nr_pol_rules, &rk))
		return NR_POLICY_ALLOW;
	rk.remote = NR_POL_ID_ANY;
	if (bpf_map_lookup_elem(&nr_pol_rules, &rk))
		return NR_POLICY_ALLOW;
	return NR_POLICY_DENY;
}

static __always_inline struct pol_ct_key pol_key(const struct ct_key *t, __u8 dir, bool reversed)
{
	struct pol_ct_key k = { .proto = t->proto, .dir = dir };

	if (reversed) {
		k.saddr = t->daddr;
		k.daddr = t->saddr;
		k.sport = t->dport;
		k.dport = t->sport;
	} else {
		k.saddr = t->saddr;
		k.daddr = t->daddr;
		k.sport = t->sport;
		k.dport = t->dport;
	}
	return k;
}

// pol_find looks key up, deleting an expired entry, and a closed one that
// the packet p reopens.
static __always_inline struct pol_ct *pol_find(struct pol_ct_key *key, const struct pkt *p, __u64 now)
{
	struct pol_ct *v = bpf_map_lookup_elem(&nr_pol_ct, key);

	if (v && (ct_expired(key->proto, v->state, v->seen_ns, now) ||
		  ct_reopens(key->proto, v->state, p->tcp_flags))) {
		ct_delete(&nr_pol_ct, key, v->owner, true, v->charged);
		return NULL;
	}
	return v;
}

// pol_touch moves an entry's TCP state and keeps it alive.
static __always_inline void pol_touch(struct pol_ct *v, const struct pkt *p, __u64 now)
{
	ct_advance(&v->state, &v->charged, &v->seen_ns, v->owner, true, p->t.proto, p->tcp_flags, now);
}

// pol_icmp_error passes an ICMP error about a connection that any hook of
// this node tracks (the quoted datagram, as either side sent it), and
// judges any other as plain ICMP.
static __always_inline int pol_icmp_error(const struct pkt *p, __u8 dir)
{
	struct pol_ct_key k;

#pragma unroll
	for (int i = 0; i < 4; i++) {
		k = pol_key(&p->inner, i & 1 ? NR_POL_INGRESS : NR_POL_EGRESS, i >= 2);
		if (bpf_map_lookup_elem(&nr_pol_ct, &k))
			return NR_POLICY_ALLOW;
	}
	return pol_judge(&p->t, dir);
}

// pol_record tracks a connection just allowed; NR_POLICY_FULL when its
// source has no room left (or the table none).
static __always_inline int pol_record(struct pol_ct_key *fk, const struct pkt *p, __u32 rev, __u64 now)
{
	struct pol_ct nv = {
		.revision = rev, .owner = p->t.saddr, .seen_ns = now, .charged = 1,
		.state = ct_next(p->t.proto, NR_CT_STATE_OPEN, p->tcp_flags),
	};
	long err;

	if (!ct_charge(nv.owner, true, 1))
		return NR_POLICY_FULL;
	err = bpf_map_update_elem(&nr_pol_ct, fk, &nv, BPF_NOEXIST);
	if (err == 0)
		return NR_POLICY_ALLOW;
	ct_refund(nv.owner, true, 1);
	return err == -17 /* EEXIST: another CPU tracked it */ ? NR_POLICY_ALLOW : NR_POLICY_FULL;
}

// pol_check passes packets of connections allowed under the current
// revision and judges the others (see the top of this file).
static __always_inline int pol_check(const struct pkt *p, __u8 dir)
{
	const struct ct_key *t = &p->t;
	// Only a TCP SYN opens a connection. Another TCP packet of a
	// connection we do not know (expired, or older than the datapath) is
	// judged as if it opened one in its own direction but records
	// nothing: it proves nothing about who opened the connection, so it
	// must not make the packets of the other side look like replies.
	bool opens = t->proto != IPPROTO_TCP ||
		     (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
	struct pol_ct_key fk = pol_key(t, dir, false);
	struct pol_ct_key rk = pol_key(t, pol_other(dir), true);
	struct pol_ct *v, *r;
	struct pol_state *st;
	struct ct_key orig;
	__u32 zero = 0, rev = 0;
	__u64 now;

	if (p->icmp_err)
		return pol_icmp_error(p, dir);
	st = bpf_map_lookup_elem(&nr_pol_state, &zero);
	if (st)
		rev = st->revision;
	now = nr_now();

	v = pol_find(&fk, p, now);
	if (v && v->revision == rev) {
		pol_touch(v, p, now);
		return NR_POLICY_ALLOW;
	}
	if (!v) {
		r = pol_find(&rk, p, now);
		if (r) {
			// A reply: judged again as the connection it answers.
			if (r->revision != rev) {
				orig = *t;
				orig.saddr = t->daddr;
				orig.daddr = t->saddr;
				orig.sport = t->dport;
				orig.dport = t->sport;
				if (pol_judge(&orig, pol_other(dir)) != NR_POLICY_ALLOW) {
					ct_delete(&nr_pol_ct, &rk, r->owner, true, r->charged);
					return NR_POLICY_DENY;
				}
				r->revision = rev;
			}
			pol_touch(r, p, now);
			return NR_POLICY_ALLOW;
		}
	}
	if (pol_judge(t, dir) != NR_POLICY_ALLOW) {
		if (v)
			ct_delete(&nr_pol_ct, &fk, v->owner, true, v->charged);
		return NR_POLICY_DENY;
	}
	if (v) {
		v->revision = rev;
		pol_touch(v, p, now);
		return NR_POLICY_ALLOW;
	}
	if (opens)
		return pol_record(&fk, p, rev, now);
	return NR_POLICY_ALLOW;
}

static __always_inline int policy_egress(struct __sk_buff *skb, const struct pkt *p)
{
	return pol_check(p, NR_POL_EGRESS);
}

static __always_inline int policy_ingress(struct __sk_buff *skb, const struct pkt *p)
{
	return pol_check(p, NR_POL_INGRESS);
}

#endif
