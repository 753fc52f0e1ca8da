// SPDX-License-Identifier: GPL-2.0
/*
 * tc ingress program for every rt0 port (a TCX link, or a clsact filter on older kernels):
 * observes ARP and never interferes with traffic (always TC_ACT_UNSPEC). It runs for every
 * packet of every sandbox, so everything that is not ARP leaves at the first test, on
 * skb->protocol, before any packet or map access (the data-plane tax is that one test).
 *
 * For ARP it keeps ip -> {mac, port, last seen, count} in bw_bindings and emits a ring-buffer
 * event only when a binding is new or changes mac or port, so user-space cost does not grow with
 * the ARP rate. RFC 5227 probes are deduplicated the same way in bw_probes. Per-port counters
 * (ARP, malformed, mismatch, events, lost, limited) live in bw_port_stats, one copy per CPU
 * (user space sums them). Record layouts: arp_observer.h.
 *
 * The common frame in a storm repeats a binding the map already holds unchanged: it reads the
 * headers in place (direct packet access; a non-linear skb is pulled first), bumps the binding's
 * count and this CPU's counters, and rewrites last_seen_ns only when it is older than
 * BW_LAST_SEEN_REFRESH_NS (the clock itself is read once per jiffy per CPU): no ring-buffer
 * traffic, no shared counters, one atomic add.
 *
 * A storm of spoofed bindings (a new sender IP and MAC in every frame) defeats that dedupe, so
 * new or changed bindings spend a per-port budget (bw_config, bw_port_budget): past it they are
 * counted in bw_port_stats.limited and not recorded. The budget is per port, so a storming port
 * never takes the ring buffer or the map writes from the others; bw_bindings is an LRU map, so
 * its size is bounded whatever the storm.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "arp_observer.h"

#define TC_ACT_UNSPEC (-1)
#define ETH_HLEN 14
#define ETH_P_ARP 0x0806
#define ETH_P_IP 0x0800
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define VLAN_HLEN 4
#define ARP_IPV4_LEN 28
#define PULL_LEN (ETH_HLEN + VLAN_HLEN + ARP_IPV4_LEN)
#define ARPHRD_ETHER 1
#define ARPOP_REQUEST 1
#define ARPOP_REPLY 2

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BW_BINDINGS_MAX);
	__type(key, __u32);
	__type(value, struct bw_binding);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bw_bindings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BW_PROBES_MAX);
	__type(key, __u32);
	__type(value, struct bw_binding);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bw_probes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, BW_PORTS_MAX);
	__type(key, __u32);
	__type(value, struct bw_port_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bw_port_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, BW_RINGBUF_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bw_events SEC(".maps");

/* Rate limit for new or changed bindings (one entry, written by the agent). Not pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bw_config);
} bw_config SEC(".maps");

/* A port's budget: the GCRA theoretical arrival time of its next new binding. */
struct port_budget {
	struct bpf_spin_lock lock;
	__u32 _pad;
	__u64 tat_ns;
};

/* Budgets by ifindex; user space deletes a port's entry when the port leaves. Not pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BW_PORTS_MAX);
	__type(key, __u32);
	__type(value, struct port_budget);
} bw_port_budget SEC(".maps");

/* This CPU's monotonic clock as last read, and the jiffy it was read in. */
struct cpu_clock {
	__u64 jiffies;
	__u64 ns;
};

/* Not pinned: a cache, refilled at the first frame of each jiffy. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_clock);
} bw_clock SEC(".maps");

/* The Ethernet-over-IPv4 ARP body (RFC 826), as on the wire. */
struct arp_ipv4 {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
	__u8 sha[6];
	__be32 sip;
	__u8 tha[6];
	__be32 tip;
} __attribute__((packed));

static __always_inline struct bw_port_stats *port_stats(__u32 ifindex)
{
	struct bw_port_stats *s = bpf_map_lookup_elem(&bw_port_stats, &ifindex);
	if (s)
		return s;
	struct bw_port_stats zero = {};
	bpf_map_update_elem(&bw_port_stats, &ifindex, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&bw_port_stats, &ifindex);
}

static __always_inline void count_malformed(__u32 ifindex)
{
	struct bw_port_stats *s = port_stats(ifindex);
	if (s)
		s->malformed++;
}

/*
 * Monotonic time in ns, at most one jiffy old: the clock is read once per jiffy per CPU, which
 * is much cheaper than reading it for every frame.
 */
static __always_inline __u64 jiffy_clock_ns(void)
{
	__u32 zero = 0;
	struct cpu_clock *c = bpf_map_lookup_elem(&bw_clock, &zero);
	if (!c)
		return bpf_ktime_get_ns();
	__u64 j = bpf_jiffies64();
	if (c->jiffies != j) {
		c->jiffies = j;
		c->ns = bpf_ktime_get_ns();
	}
	return c->ns;
}

/*
 * Whether port `ifindex` may record one more new or changed binding at `now` (GCRA: the port's
 * theoretical arrival time advances one interval per binding and may run at most bind_burst_ns
 * ahead of the clock). True without a configured limit, and when the budget table is full (a
 * missing budget must not blind detection).
 */
static __always_inline bool spend_budget(__u32 ifindex, __u64 now)
{
	__u32 zero = 0;
	struct bw_config *cfg = bpf_map_lookup_elem(&bw_config, &zero);
	if (!cfg || cfg->bind_interval_ns == 0)
		return true;
	struct port_budget *b = bpf_map_lookup_elem(&bw_port_budget, &ifindex);
	if (!b) {
		struct port_budget fresh = {};
		bpf_map_update_elem(&bw_port_budget, &ifindex, &fresh, BPF_NOEXIST);
		b = bpf_map_lookup_elem(&bw_port_budget, &ifindex);
		if (!b)
			return true;
	}
	__u64 interval = cfg->bind_interval_ns;
	__u64 burst = cfg->bind_burst_ns;
	bool ok;
	bpf_spin_lock(&b->lock);
	__u64 tat = (b->tat_ns > now ? b->tat_ns : now) + interval;
	ok = tat - now <= burst;
	if (ok)
		b->tat_ns = tat;
	bpf_spin_unlock(&b->lock);
	return ok;
}

static __always_inline bool mac_eq(const __u8 *a, const __u8 *b)
{
	return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) |
		(a[5] ^ b[5])) == 0;
}

static __always_inline bool mac_bad(const __u8 *m)
{
	/* multicast/broadcast or all-zero: never a station's own address */
	return (m[0] & 1) || (m[0] | m[1] | m[2] | m[3] | m[4] | m[5]) == 0;
}

/*
 * Records one frame in `map` under `key`; emits an event when the key is new or its mac or
 * port changed. A new or changed key spends the port's budget first; over it, the frame is only
 * counted (stats->limited).
 */
static __always_inline void record(void *map, __u32 key, const struct arp_ipv4 *arp,
				   const __u8 *eth_src, __u8 kind, __u8 flags, __u16 vlan,
				   __u32 ifindex, struct bw_port_stats *stats)
{
	struct bw_binding *b = bpf_map_lookup_elem(map, &key);
	__u32 prev_ifindex = 0;
	__u8 prev_mac[6] = {};
	bool changed;

	if (b && b->ifindex == ifindex && mac_eq(b->mac, arp->sha) && b->kind == kind &&
	    b->flags == flags && b->vlan == vlan) {
		/* Unchanged: count it; refresh last_seen only when it has grown old. */
		__sync_fetch_and_add(&b->count, 1);
		__u64 now = jiffy_clock_ns();
		if ((__s64)(now - b->last_seen_ns) >= (__s64)BW_LAST_SEEN_REFRESH_NS)
			b->last_seen_ns = now;
		return;
	}

	__u64 now = bpf_ktime_get_ns();
	changed = !b || b->ifindex != ifindex || !mac_eq(b->mac, arp->sha);
	if (changed && !spend_budget(ifindex, now)) {
		if (stats)
			stats->limited++;
		return;
	}
	if (b) {
		if (changed) {
			prev_ifindex = b->ifindex;
			__builtin_memcpy(prev_mac, b->mac, 6);
			b->ifindex = ifindex;
			__builtin_memcpy(b->mac, arp->sha, 6);
		}
		b->last_seen_ns = now;
		b->kind = kind;
		b->flags = flags;
		b->vlan = vlan;
		__sync_fetch_and_add(&b->count, 1);
	} else {
		struct bw_binding nb = {
			.last_seen_ns = now,
			.count = 1,
			.ifindex = ifindex,
			.kind = kind,
			.flags = flags,
			.vlan = vlan,
		};
		__builtin_memcpy(nb.mac, arp->sha, 6);
		bpf_map_update_elem(map, &key, &nb, BPF_ANY);
		flags |= BW_FLAG_NEW;
	}
	if (!changed)
		return;

	struct bw_arp_event *e = bpf_ringbuf_reserve(&bw_events, sizeof(*e), 0);
	if (!e) {
		if (stats)
			stats->lost++;
		return;
	}
	e->ts_ns = now;
	e->ip = key;
	e->ifindex = ifindex;
	e->prev_ifindex = prev_ifindex;
	e->vlan = vlan;
	e->kind = kind;
	e->flags = flags;
	__builtin_memcpy(e->mac, arp->sha, 6);
	__builtin_memcpy(e->prev_mac, prev_mac, 6);
	__builtin_memcpy(e->eth_src, eth_src, 6);
	e->_pad = 0;
	e->target_ip = arp->tip;
	bpf_ringbuf_submit(e, 0);
	if (stats)
		stats->events++;
}

/* Parses and records one frame that may be ARP (skb->protocol is ARP or a VLAN tag). */
static __always_inline int observe_arp(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	__u32 off = ETH_HLEN;
	__u16 vlan = 0;
	__u8 flags = 0;
	void *data, *data_end;
	__be16 proto;

	/*
	 * A non-linear head (rare for ARP): pull in as much as the longest ARP frame parsed
	 * here needs, so that everything below reads the packet in place.
	 */
	__u32 want = skb->len < PULL_LEN ? skb->len : PULL_LEN;
	if ((long)skb->data + want > (long)skb->data_end)
		bpf_skb_pull_data(skb, want);
	/* keeps clang from reusing ctx field addresses (the verifier wants ctx + constant) */
	barrier_var(skb);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (data + ETH_HLEN > data_end)
		return TC_ACT_UNSPEC;
	proto = *(__be16 *)(data + 12);

	/* A tag the driver already stripped (hardware offload / skb_vlan_untag). */
	if (skb->vlan_present) {
		vlan = skb->vlan_tci & 0x0fff;
		flags |= BW_FLAG_VLAN;
	}
	/* One in-band 802.1Q / 802.1ad tag. */
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		if (data + ETH_HLEN + VLAN_HLEN > data_end) {
			count_malformed(ifindex);
			return TC_ACT_UNSPEC;
		}
		__u8 *tag = data + ETH_HLEN;
		vlan = ((tag[0] << 8) | tag[1]) & 0x0fff;
		flags |= BW_FLAG_VLAN;
		proto = *(__be16 *)(tag + 2);
		off += VLAN_HLEN;
	}
	if (proto != bpf_htons(ETH_P_ARP))
		return TC_ACT_UNSPEC;

	const __u8 *eth = data;
	const struct arp_ipv4 *arp = data + off;
	if ((void *)(arp + 1) > data_end ||
	    arp->htype != bpf_htons(ARPHRD_ETHER) || arp->ptype != bpf_htons(ETH_P_IP) ||
	    arp->hlen != 6 || arp->plen != 4 ||
	    (arp->op != bpf_htons(ARPOP_REQUEST) && arp->op != bpf_htons(ARPOP_REPLY)) ||
	    mac_bad(arp->sha) ||
	    /* sender IP 0 is only valid in an RFC 5227 probe: a request about a real target */
	    (arp->sip == 0 && (arp->op != bpf_htons(ARPOP_REQUEST) || arp->tip == 0))) {
		count_malformed(ifindex);
		return TC_ACT_UNSPEC;
	}

	struct bw_port_stats *stats = port_stats(ifindex);
	if (stats)
		stats->arp++;
	if (!mac_eq(eth + 6, arp->sha)) {
		flags |= BW_FLAG_MAC_MISMATCH;
		if (stats)
			stats->mismatch++;
	}

	if (arp->sip == 0) {
		/* RFC 5227 probe: claims nothing. */
		record(&bw_probes, arp->tip, arp, eth + 6, BW_KIND_PROBE, flags, vlan, ifindex,
		       stats);
		return TC_ACT_UNSPEC;
	}
	__u8 kind = arp->sip == arp->tip ? BW_KIND_ANNOUNCE
		    : arp->op == bpf_htons(ARPOP_REQUEST) ? BW_KIND_REQUEST
							    : BW_KIND_REPLY;
	record(&bw_bindings, arp->sip, arp, eth + 6, kind, flags, vlan, ifindex, stats);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int arp_observer(struct __sk_buff *skb)
{
	/*
	 * The early exit every packet of every sandbox takes: not ARP, nor behind an in-band tag
	 * (a tag the stack already stripped leaves the inner protocol here). No packet access, no
	 * map work. A future filter for other protocols hooks in here, not past this test.
	 */
	__be16 proto = skb->protocol;
	if (proto != bpf_htons(ETH_P_ARP) && proto != bpf_htons(ETH_P_8021Q) &&
	    proto != bpf_htons(ETH_P_8021AD))
		return TC_ACT_UNSPEC;
	return observe_arp(skb);
}

char LICENSE[] SEC("license") = "GPL";
