// Drop events for `netreconcile monitor`: a packet a policy (or a defence)
// dropped, with its connection as the pods see it. Events are written only
// while a monitor is listening: it keeps nr_monitor's deadline a few
// seconds ahead, so a monitor that dies stops them by itself. The ring
// buffer is shared by all CPUs; when it is full an event is lost (counted
// in nr_monitor's second slot), never the packet's fate changed.

struct event {
	__u64 ts_ns;     // bpf_ktime_get_coarse_ns (CLOCK_MONOTONIC)
	__be32 saddr;    // the connection as the pods see it (after DNAT)
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 reason;     // NR_DROP_*
	__u8 hook;       // HOOK_*
	__u8 pad;
	__be32 pod;      // the local pod charged
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nr_events SEC(".maps");

// nr_monitor[0]: events are written until this time (ns, as ts_ns);
// nr_monitor[1]: events lost to a full ring.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nr_monitor SEC(".maps");

// nr_report writes one event when a monitor listens. It is a global
// function, verified once on its own, so that a call costs the callers'
// verification almost nothing.
__attribute__((noinline)) int nr_report(__u32 saddr, __u32 daddr, __u32 ports, __u32 meta, __u32 pod)
{
	__u32 key = 0;
	__u64 *until = bpf_map_lookup_elem(&nr_monitor, &key);
	__u64 now = bpf_ktime_get_coarse_ns();
	struct event ev = {};

	if (!until || *until < now)
		return 0;
	ev.ts_ns = now;
	ev.saddr = saddr;
	ev.daddr = daddr;
	ev.sport = ports >> 16;
	ev.dport = ports & 0xffff;
	ev.proto = meta & 0xff;
	ev.reason = (meta >> 8) & 0xff;
	ev.hook = (meta >> 16) & 0xff;
	ev.pod = pod;
	if (bpf_ringbuf_output(&nr_events, &ev, sizeof(ev), 0) < 0) {
		key = 1;
		__u64 *lost = bpf_map_lookup_elem(&nr_monitor, &key);
		if (lost)
			__sync_fetch_and_add(lost, 1);
	}
	return 0;
}

// drop_seen is drop() that also reports the packet p (the connection as
// the pods see it) to a listening monitor.
static __always_inline int drop_seen(const struct pkt *p, __be32 pod, __u32 reason, int hook)
{
	nr_report(p->t.saddr, p->t.daddr, ((__u32)p->t.sport << 16) | p->t.dport,
		  p->t.proto | (reason << 8) | ((__u32)hook << 16), pod);
	return drop(pod, reason);
}
