// Connection state shared by the service (nr_ct) and policy (nr_pol_ct)
// tables: lifetimes, per-source accounting, and garbage collection.
//
// Lifetimes follow the kernel's conntrack in spirit: a TCP connection
// that has only sent its SYN lives 60 s, an established one 6 h, one that
// has seen a FIN or RST 2 s after its last packet (the endpoints keep
// their own TIME_WAIT; a new SYN on the tuple starts a new connection);
// anything else (UDP, SCTP, ICMP) 30 s after its last packet. A lookup
// that finds an expired entry treats it as missing and deletes it.
//
// Accounting. Both tables are plain hash maps: nothing is evicted to make
// room. Every entry is charged to the address that opened its connection
// (nr_ct_count), and a source may hold at most cfg->ct_per_source entries
// in each table: a pod that floods fills its own share and then has its
// new connections refused (NR_DROP_CT_FULL); the connections of other pods
// keep their state. Only open connections are charged: a TCP connection
// gives its charge back when it closes (a pod that opens and closes
// connections fast is bounded by the table and the collector, not its
// share). Counts move with the program's own inserts (BPF_NOEXIST, so a key
// is charged once), closes and deletes (charged back only when the delete
// removed a charged entry).
//
// Garbage collection runs in the kernel, without the control plane: the
// first entry made arms a bpf_timer in nr_gc, whose callback walks both tables
// every NR_GC_INTERVAL_NS (every NR_GC_BUSY_NS while they hold more than
// NR_GC_BUSY_ENTRIES: closed connections must make room quickly), deletes
// the expired entries and charges them back. nr_gc_run runs one walk on
// demand (tests, benchmarks).

#ifndef NR_CT_H
#define NR_CT_H

#define NR_CT_STATE_OPEN 0    // not TCP, or TCP whose state is not known
#define NR_CT_STATE_SYN 1     // TCP: SYN seen, nothing else yet
#define NR_CT_STATE_EST 2     // TCP: established
#define NR_CT_STATE_CLOSING 3 // TCP: FIN or RST seen

#define NR_SEC 1000000000ULL
#define NR_LIFE_SYN (60 * NR_SEC)
#define NR_LIFE_EST (21600 * NR_SEC)
#define NR_LIFE_CLOSING (2 * NR_SEC)
#define NR_LIFE_OTHER (30 * NR_SEC)
// Entries are refreshed at most this often (a write per packet would
// bounce the cache line between CPUs).
#define NR_REFRESH_NS NR_SEC
#define NR_GC_INTERVAL_NS (10 * NR_SEC)
#define NR_GC_BUSY_NS NR_SEC
#define NR_GC_BUSY_ENTRIES 16384

#define NR_CT_PER_SOURCE_DEFAULT 32768
#define NR_MAX_CT_COUNT 65536

#ifndef CLOCK_MONOTONIC
#define CLOCK_MONOTONIC 1
#endif

struct ct_count {
	__u32 svc; // entries in nr_ct
	__u32 pol; // entries in nr_pol_ct
};

struct gc_state {
	struct bpf_timer timer;
	__u64 armed;
	__u64 runs;
	__u64 last_ns;
	__u64 last_deleted;
	__u64 last_scanned;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NR_MAX_CT_COUNT);
	__type(key, __be32);
	__type(value, struct ct_count);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nr_ct_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gc_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nr_gc SEC(".maps");

static __always_inline __u64 ct_lifetime(__u8 proto, __u8 state)
{
	if (proto != IPPROTO_TCP)
		return NR_LIFE_OTHER;
	switch (state) {
	case NR_CT_STATE_SYN:
		return NR_LIFE_SYN;
	case NR_CT_STATE_CLOSING:
		return NR_LIFE_CLOSING;
	default:
		return NR_LIFE_EST;
	}
}

static __always_inline bool ct_expired(__u8 proto, __u8 state, __u64 seen, __u64 now)
{
	return now > seen && now - seen > ct_lifetime(proto, state);
}

// ct_next is the TCP state after a packet with flags of a connection in
// state: a bare SYN (re)opens, a FIN or RST closes, anything else keeps a
// closing connection closing and establishes the others.
static __always_inline __u8 ct_next(__u8 proto, __u8 state, __u8 flags)
{
	if (proto != IPPROTO_TCP)
		return NR_CT_STATE_OPEN;
	if ((flags & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST)) == TCP_FLAG_SYN)
		return NR_CT_STATE_SYN;
	if (flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
		return NR_CT_STATE_CLOSING;
	if (state == NR_CT_STATE_CLOSING)
		return state;
	return NR_CT_STATE_EST;
}

static __always_inline __u32 ct_limit(void)
{
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&nr_config, &zero);

	return cfg && cfg->ct_per_source ? cfg->ct_per_source : NR_CT_PER_SOURCE_DEFAULT;
}

// ct_charge reserves n entries of a table (pol: nr_pol_ct, else nr_ct)
// for src; false when src has no room left or the count table is full.
static __always_inline void gc_arm(void);

static __always_inline bool ct_charge(__be32 src, bool pol, __u32 n)
{
	struct ct_count *c, zero = {};
	__u32 *field;

	gc_arm(); // state is being made: someone must collect it

	c = bpf_map_lookup_elem(&nr_ct_count, &src);
	if (!c) {
		bpf_map_update_elem(&nr_ct_count, &src, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&nr_ct_count, &src);
		if (!c)
			return false;
	}
	field = pol ? &c->pol : &c->svc;
	if (*field + n > ct_limit())
		return false;
	__sync_fetch_and_add(field, n);
	return true;
}

static __always_inline void ct_refund(__be32 src, bool pol, __u32 n)
{
	struct ct_count *c = bpf_map_lookup_elem(&nr_ct_count, &src);
	__u32 *field;

	if (!c)
		return;
	field = pol ? &c->pol : &c->svc;
	// Never below zero, which would read as a full share (a refund that
	// raced another CPU's, or counts reset by a replaced map).
	if (*field >= n)
		__sync_fetch_and_add(field, -n); // an add of -n: every BPF ISA has it
	else
		*field = 0;
}

// ct_delete deletes key from map and gives back its charge when the delete
// removed a charged entry (two CPUs may race to delete one entry).
static __always_inline void ct_delete(void *map, const void *key, __be32 owner, bool pol, __u8 charged)
{
	if (bpf_map_delete_elem(map, key) == 0 && charged)
		ct_refund(owner, pol, 1);
}

// ct_advance moves an entry's state for a packet with flags, keeps it
// alive, and gives its charge back when the connection closes. (A SYN
// that reopens a closed tuple is not advanced: the caller deletes the
// closed entry and records the new connection, charged, in its place.)
static __always_inline void ct_advance(__u8 *state, __u8 *charged, __u64 *seen, __be32 owner,
				       bool pol, __u8 proto, __u8 flags, __u64 now)
{
	__u8 st = ct_next(proto, *state, flags);

	if (st != *state) {
		*state = st;
		if (st == NR_CT_STATE_CLOSING && *charged) {
			*charged = 0;
			ct_refund(owner, pol, 1);
		}
	}
	if (now - *seen > NR_REFRESH_NS)
		*seen = now;
}

// ct_reopens reports whether a packet with flags opens a new connection on
// the tuple of an entry in state: a bare SYN on a closed one.
static __always_inline bool ct_reopens(__u8 proto, __u8 state, __u8 flags)
{
	return proto == IPPROTO_TCP && state == NR_CT_STATE_CLOSING &&
	       (flags & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST)) == TCP_FLAG_SYN;
}

struct gc_ctx {
	__u64 now;
	__u64 scanned;
	__u64 deleted;
};

static long gc_svc_entry(void *map, struct ct_key *k, struct ct_value *v, struct gc_ctx *g)
{
	g->scanned++;
	if (ct_expired(k->proto, v->state, v->seen_ns, g->now)) {
		if (bpf_map_delete_elem(map, k) == 0) {
			if (v->charged)
				ct_refund(v->owner, false, 1);
			g->deleted++;
		}
	}
	return 0;
}

static long gc_pol_entry(void *map, struct pol_ct_key *k, struct pol_ct *v, struct gc_ctx *g)
{
	g->scanned++;
	if (ct_expired(k->proto, v->state, v->seen_ns, g->now)) {
		if (bpf_map_delete_elem(map, k) == 0) {
			if (v->charged)
				ct_refund(v->owner, true, 1);
			g->deleted++;
		}
	}
	return 0;
}

static long gc_count_entry(void *map, __be32 *k, struct ct_count *v, struct gc_ctx *g)
{
	// Sources with nothing left: their count entry goes too.
	if (v->svc == 0 && v->pol == 0)
		bpf_map_delete_elem(map, k);
	return 0;
}

// gc_walk walks the tables once and returns how many entries they hold.
static __always_inline __u64 gc_walk(struct gc_state *st)
{
	// The counters start from a value the verifier cannot know: counted
	// up from a known constant, every pass of a callback would be a new
	// state to it, and verifying the walk would never converge.
	__u64 base = nr_now();
	struct gc_ctx g = { .now = base, .scanned = base, .deleted = base };

	bpf_for_each_map_elem(&nr_ct, gc_svc_entry, &g, 0);
	bpf_for_each_map_elem(&nr_pol_ct, gc_pol_entry, &g, 0);
	bpf_for_each_map_elem(&nr_ct_count, gc_count_entry, &g, 0);
	g.scanned -= base;
	g.deleted -= base;
	if (st) {
		st->runs++;
		st->last_ns = g.now;
		st->last_scanned = g.scanned;
		st->last_deleted = g.deleted;
	}
	return g.scanned - g.deleted;
}

static int gc_tick(void *map, __u32 *key, struct gc_state *st)
{
	__u64 left = gc_walk(st);

	bpf_timer_start(&st->timer, left > NR_GC_BUSY_ENTRIES ? NR_GC_BUSY_NS : NR_GC_INTERVAL_NS, 0);
	return 0;
}

// gc_arm starts the collector once per set of maps.
static __always_inline void gc_arm(void)
{
	__u32 zero = 0;
	struct gc_state *st = bpf_map_lookup_elem(&nr_gc, &zero);

	if (!st || st->armed)
		return;
	// Two CPUs may both get here: the second init fails with -EBUSY and
	// its start only restarts the timer.
	st->armed = 1;
	bpf_timer_init(&st->timer, &nr_gc, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&st->timer, gc_tick);
	bpf_timer_start(&st->timer, NR_GC_INTERVAL_NS, 0);
}

#endif
