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
 *
 * The bridge guard (bw_guard_config.mode monitor or enforce) checks every frame a port sends
 * against the port's binding (bw_guard_ports: MAC and leased IPv4, written by the agent from the
 * lease store): Ethernet source = its MAC; ARP sender MAC = its MAC and sender IP = its address
 * or 0.0.0.0 (an RFC 5227 probe); IPv4 source = its address; IPv6 passes unless
 * BW_GUARD_DROP_IPV6. A port without a binding gets RFC 5227 probes through, and the frames that
 * claim a lease awaiting its port (bw_guard_pending): IPv4 or ARP from its address (and MAC, when
 * the lease names one), any other frame from its MAC (bw_guard_pending_macs); the first such
 * port wins the lease (bw_guard_claims) and gets a learned binding. Anything else
 * is a violation: counted per port (bw_guard_stats), reported (bw_guard_events, spending a
 * per-port event budget) and, in enforce, dropped; a dropped ARP frame is not recorded as a
 * binding. With the guard off, every non-ARP packet still leaves at the first test.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "arp_observer.h"

#define TC_ACT_UNSPEC (-1)
#define TC_ACT_SHOT 2
#define ETH_HLEN 14
#define ETH_P_ARP 0x0806
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPV4_MIN_LEN 20
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

/* A port's budget: the GCRA theoretical arrival time of its next new binding (or event). */
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

/*
 * The guard's state is not pinned: each loaded program has its own, which the agent fills from
 * the store before any port runs the program (a new agent's program takes a port over in one
 * BPF_LINK_UPDATE, already knowing every binding).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bw_guard_config);
} bw_guard_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BW_PORTS_MAX);
	__type(key, __u32);
	__type(value, struct bw_guard_port);
} bw_guard_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BW_GUARD_LEASES_MAX);
	__type(key, __u32);
	__type(value, struct bw_guard_pending);
} bw_guard_pending SEC(".maps");

/* The MAC of a pending lease that names one -> its address. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BW_GUARD_LEASES_MAX);
	__type(key, struct bw_guard_mac_key);
	__type(value, __u32);
} bw_guard_pending_macs SEC(".maps");

/* Leased IPv4 -> the port that claimed it while it was pending. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BW_GUARD_LEASES_MAX);
	__type(key, __u32);
	__type(value, __u32);
} bw_guard_claims SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, BW_PORTS_MAX);
	__type(key, __u32);
	__type(value, struct bw_guard_stats);
} bw_guard_stats SEC(".maps");

/* Spoof-event budgets by ifindex; user space deletes a port's entry when the port leaves. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BW_PORTS_MAX);
	__type(key, __u32);
	__type(value, struct port_budget);
} bw_guard_budget SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, BW_GUARD_RINGBUF_BYTES);
} bw_guard_events SEC(".maps");

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

/* This CPU's entry of port `ifindex` in the per-CPU counter map `map`, created from `zero`. */
static __always_inline void *per_port(void *map, __u32 ifindex, const void *zero)
{
	void *s = bpf_map_lookup_elem(map, &ifindex);
	if (s)
		return s;
	bpf_map_update_elem(map, &ifindex, zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, &ifindex);
}

static __always_inline struct bw_port_stats *port_stats(__u32 ifindex)
{
	struct bw_port_stats zero = {};
	return per_port(&bw_port_stats, ifindex, &zero);
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
 * Whether port `ifindex` may spend one more unit of the budget kept in `budgets` at `now` (GCRA:
 * the port's theoretical arrival time advances `interval` per unit and may run at most `burst`
 * ahead of the clock). True without a limit (interval 0), and when the budget table is full (a
 * missing budget must not blind detection).
 */
static __always_inline bool spend(void *budgets, __u32 ifindex, __u64 now, __u64 interval,
				  __u64 burst)
{
	if (interval == 0)
		return true;
	struct port_budget *b = bpf_map_lookup_elem(budgets, &ifindex);
	if (!b) {
		struct port_budget fresh = {};
		bpf_map_update_elem(budgets, &ifindex, &fresh, BPF_NOEXIST);
		b = bpf_map_lookup_elem(budgets, &ifindex);
		if (!b)
			return true;
	}
	bool ok;
	bpf_spin_lock(&b->lock);
	__u64 tat = (b->tat_ns > now ? b->tat_ns : now) + interval;
	ok = tat - now <= burst;
	if (ok)
		b->tat_ns = tat;
	bpf_spin_unlock(&b->lock);
	return ok;
}

/* Whether port `ifindex` may record one more new or changed binding at `now` (bw_config). */
static __always_inline bool spend_budget(__u32 ifindex, __u64 now)
{
	__u32 zero = 0;
	struct bw_config *cfg = bpf_map_lookup_elem(&bw_config, &zero);
	if (!cfg)
		return true;
	return spend(&bw_port_budget, ifindex, now, cfg->bind_interval_ns, cfg->bind_burst_ns);
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

/* What a guard event reports about a frame besides its MACs. */
struct guard_frame {
	__u32 ip;        /* claimed IPv4 (ARP sender or IPv4 source), network order; 0 when none */
	__u32 target_ip; /* ARP target or IPv4 destination, network order; 0 when none */
	__u16 ethertype; /* the frame's (inner) ethertype, host order */
};

/* Emits a guard event; `eth` is the frame's Ethernet header, `sha` its ARP sender MAC or NULL. */
static __always_inline void guard_event(__u8 kind, __u8 reason, bool dropped, __u32 ifindex,
					const struct guard_frame *f, const __u8 *eth,
					const __u8 *sha, struct bw_guard_stats *s, __u64 now)
{
	struct bw_guard_event *e = bpf_ringbuf_reserve(&bw_guard_events, sizeof(*e), 0);
	if (!e) {
		if (s)
			s->lost++;
		return;
	}
	e->ts_ns = now;
	e->ifindex = ifindex;
	e->ip = f->ip;
	e->target_ip = f->target_ip;
	e->kind = kind;
	e->reason = reason;
	e->dropped = dropped;
	e->_pad = 0;
	__builtin_memcpy(e->eth_src, eth + 6, 6);
	if (sha)
		__builtin_memcpy(e->sha, sha, 6);
	else
		__builtin_memset(e->sha, 0, 6);
	e->ethertype = f->ethertype;
	e->_pad2 = 0;
	bpf_ringbuf_submit(e, 0);
	if (s && kind == BW_GUARD_EV_SPOOF)
		s->events++;
}

/*
 * A frame outside its port's binding: counted, reported within the port's event budget and, in
 * enforce, dropped. Returns the verdict.
 */
static __always_inline int violation(const struct bw_guard_config *g, __u32 ifindex, __u8 reason,
				     const struct guard_frame *f, const __u8 *eth, const __u8 *sha)
{
	bool drop = g->mode == BW_GUARD_ENFORCE;
	struct bw_guard_stats zero = {};
	struct bw_guard_stats *s = per_port(&bw_guard_stats, ifindex, &zero);
	if (s) {
		if (drop)
			s->dropped++;
		else
			s->would_drop++;
	}
	__u64 now = bpf_ktime_get_ns();
	if (spend(&bw_guard_budget, ifindex, now, g->event_interval_ns, g->event_burst_ns))
		guard_event(BW_GUARD_EV_SPOOF, reason, drop, ifindex, f, eth, sha, s, now);
	else if (s)
		s->limited++;
	return drop ? TC_ACT_SHOT : TC_ACT_UNSPEC;
}

/*
 * Whether an unbound port's frame from f->ip (Ethernet source eth + 6) may claim the lease on
 * that address that awaits a port, or already did. The first port wins (bw_guard_claims,
 * BPF_NOEXIST) and gets a learned binding (one lease per port; the agent then binds the lease to
 * the port in the store, recorded in its history) and a learn event. A claim that finds the lease
 * released meanwhile (the agent removed it from bw_guard_pending) is undone.
 */
static __always_inline bool claim(__u32 ifindex, const struct guard_frame *f, const __u8 *eth,
				  const __u8 *sha)
{
	__u32 ip = f->ip;
	if (ip == 0)
		return false;
	struct bw_guard_pending *p = bpf_map_lookup_elem(&bw_guard_pending, &ip);
	if (!p || (!p->any_mac && !mac_eq(p->mac, eth + 6)))
		return false;
	bool fresh = false;
	__u32 *owner = bpf_map_lookup_elem(&bw_guard_claims, &ip);
	if (!owner) {
		if (bpf_map_update_elem(&bw_guard_claims, &ip, &ifindex, BPF_NOEXIST) != 0)
			return false; /* another port won it just now */
		fresh = true;
	} else if (*owner != ifindex) {
		return false;
	}
	struct bw_guard_port learned = { .flags = BW_GUARD_PORT_LEARNED, .ip = ip };
	__builtin_memcpy(learned.mac, eth + 6, 6);
	if (bpf_map_update_elem(&bw_guard_ports, &ifindex, &learned, BPF_NOEXIST) != 0) {
		/* the port got a binding meanwhile (another claim, or the agent) */
		if (fresh)
			bpf_map_delete_elem(&bw_guard_claims, &ip);
		return false;
	}
	if (!bpf_map_lookup_elem(&bw_guard_pending, &ip)) {
		/* released while claiming: undo, unless the agent has bound the port since */
		struct bw_guard_port *now = bpf_map_lookup_elem(&bw_guard_ports, &ifindex);
		if (now && (now->flags & BW_GUARD_PORT_LEARNED))
			bpf_map_delete_elem(&bw_guard_ports, &ifindex);
		bpf_map_delete_elem(&bw_guard_claims, &ip);
		return false;
	}
	if (fresh) {
		struct bw_guard_stats zero = {};
		struct bw_guard_stats *s = per_port(&bw_guard_stats, ifindex, &zero);
		if (s)
			s->learned++;
		guard_event(BW_GUARD_EV_LEARN, 0, false, ifindex, f, eth, sha, s, bpf_ktime_get_ns());
	}
	return true;
}

/*
 * Whether an unbound port's frame that carries no IPv4 source (IPv6, another ethertype) may claim
 * the pending lease of its Ethernet source MAC, or already did: a leased sandbox that speaks
 * IPv6 first is bound by that frame. A lease that names no MAC can only be claimed from its
 * address.
 */
static __always_inline bool claim_by_mac(__u32 ifindex, const struct guard_frame *f,
					 const __u8 *eth)
{
	struct bw_guard_mac_key key = {};
	__builtin_memcpy(key.mac, eth + 6, 6);
	__u32 *ip = bpf_map_lookup_elem(&bw_guard_pending_macs, &key);
	if (!ip)
		return false;
	struct guard_frame leased = { .ip = *ip, .target_ip = f->target_ip, .ethertype = f->ethertype };
	return claim(ifindex, &leased, eth, NULL);
}

/* The guard's verdict on a well-formed ARP frame (`eth` its Ethernet header). */
static __always_inline int guard_arp(const struct bw_guard_config *g, __u32 ifindex,
				     const __u8 *eth, const struct arp_ipv4 *arp)
{
	struct guard_frame f = { .ip = arp->sip, .target_ip = arp->tip, .ethertype = ETH_P_ARP };
	struct bw_guard_port *port = bpf_map_lookup_elem(&bw_guard_ports, &ifindex);
	__u8 reason;
	if (port) {
		if (!mac_eq(eth + 6, port->mac))
			reason = BW_GUARD_MAC;
		else if (!mac_eq(arp->sha, port->mac))
			reason = BW_GUARD_ARP_MAC;
		else if (arp->sip == 0 || arp->sip == port->ip)
			return TC_ACT_UNSPEC; /* an RFC 5227 probe, or its own address */
		else
			reason = BW_GUARD_ARP_IP;
	} else if (!mac_eq(eth + 6, arp->sha)) {
		reason = BW_GUARD_ARP_MAC;
	} else if (arp->sip == 0 || claim(ifindex, &f, eth, arp->sha)) {
		return TC_ACT_UNSPEC; /* probes always pass; a pending lease is claimed */
	} else {
		reason = BW_GUARD_UNBOUND;
	}
	return violation(g, ifindex, reason, &f, eth, arp->sha);
}

/*
 * The guard's verdict on a frame that is not ARP: `proto` is its (inner) ethertype, found at
 * offset `off` - 2 (ETH_HLEN, or past one in-band VLAN tag). The common case, IPv4 from a bound
 * port, costs one hash lookup and two compares.
 */
static __always_inline int guard_frame(struct __sk_buff *skb, const struct bw_guard_config *g,
				       __be16 proto, __u32 off)
{
	__u32 ifindex = skb->ifindex;
	bool ipv4 = proto == bpf_htons(ETH_P_IP);
	__u32 want = ipv4 ? off + IPV4_MIN_LEN : ETH_HLEN;
	if ((long)skb->data + want > (long)skb->data_end && skb->len >= want)
		bpf_skb_pull_data(skb, want); /* headers not in the linear part (rare) */
	barrier_var(skb);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	if (data + ETH_HLEN > data_end)
		return TC_ACT_UNSPEC; /* no Ethernet header: nothing to judge */
	const __u8 *eth = data;
	struct guard_frame f = { .ethertype = bpf_ntohs(proto) };
	if (ipv4) {
		const __u8 *iph = data + off;
		if ((void *)(iph + IPV4_MIN_LEN) > data_end)
			return violation(g, ifindex, BW_GUARD_MALFORMED, &f, eth, NULL);
		f.ip = *(__u32 *)(iph + 12);
		f.target_ip = *(__u32 *)(iph + 16);
	} else if (proto == bpf_htons(ETH_P_IPV6) && (g->flags & BW_GUARD_DROP_IPV6)) {
		return violation(g, ifindex, BW_GUARD_IPV6, &f, eth, NULL);
	}
	struct bw_guard_port *port = bpf_map_lookup_elem(&bw_guard_ports, &ifindex);
	if (port) {
		if (!mac_eq(eth + 6, port->mac))
			return violation(g, ifindex, BW_GUARD_MAC, &f, eth, NULL);
		if (!ipv4 || f.ip == port->ip)
			return TC_ACT_UNSPEC;
		return violation(g, ifindex, BW_GUARD_IP_SOURCE, &f, eth, NULL);
	}
	if (ipv4 ? claim(ifindex, &f, eth, NULL) : claim_by_mac(ifindex, &f, eth))
		return TC_ACT_UNSPEC;
	return violation(g, ifindex, BW_GUARD_UNBOUND, &f, eth, NULL);
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

/*
 * Parses and records one frame that may be ARP (skb->protocol is ARP or a VLAN tag); with the
 * guard on (`g` not NULL) judges it first, and a frame the guard drops is not recorded.
 */
static __always_inline int observe_arp(struct __sk_buff *skb, const struct bw_guard_config *g)
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
	const __u8 *eth = data;
	struct guard_frame bad = { .ethertype = ETH_P_ARP };
	/* One in-band 802.1Q / 802.1ad tag. */
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		if (data + ETH_HLEN + VLAN_HLEN > data_end) {
			count_malformed(ifindex);
			bad.ethertype = bpf_ntohs(proto);
			return g ? violation(g, ifindex, BW_GUARD_MALFORMED, &bad, eth, NULL)
				 : TC_ACT_UNSPEC;
		}
		__u8 *tag = data + ETH_HLEN;
		vlan = ((tag[0] << 8) | tag[1]) & 0x0fff;
		flags |= BW_FLAG_VLAN;
		proto = *(__be16 *)(tag + 2);
		off += VLAN_HLEN;
	}
	if (proto != bpf_htons(ETH_P_ARP))
		return g ? guard_frame(skb, g, proto, off) : TC_ACT_UNSPEC;

	const struct arp_ipv4 *arp = data + off;
	if ((void *)(arp + 1) > data_end ||
	    arp->htype != bpf_htons(ARPHRD_ETHER) || arp->ptype != bpf_htons(ETH_P_IP) ||
	    arp->hlen != 6 || arp->plen != 4 ||
	    (arp->op != bpf_htons(ARPOP_REQUEST) && arp->op != bpf_htons(ARPOP_REPLY)) ||
	    mac_bad(arp->sha) ||
	    /* sender IP 0 is only valid in an RFC 5227 probe: a request about a real target */
	    (arp->sip == 0 && (arp->op != bpf_htons(ARPOP_REQUEST) || arp->tip == 0))) {
		count_malformed(ifindex);
		return g ? violation(g, ifindex, BW_GUARD_MALFORMED, &bad, eth, NULL) : TC_ACT_UNSPEC;
	}

	struct bw_port_stats *stats = port_stats(ifindex);
	if (stats)
		stats->arp++;
	if (!mac_eq(eth + 6, arp->sha)) {
		flags |= BW_FLAG_MAC_MISMATCH;
		if (stats)
			stats->mismatch++;
	}
	/* Counted above either way (a storm is a storm); a dropped frame claims nothing. */
	if (g && guard_arp(g, ifindex, eth, arp) == TC_ACT_SHOT)
		return TC_ACT_SHOT;

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
	 * The early exit every packet of every sandbox takes while the guard is off: not ARP, nor
	 * behind an in-band tag (a tag the stack already stripped leaves the inner protocol here).
	 * No packet access; one array lookup the verifier inlines. With the guard on, such a packet
	 * goes to the guard instead.
	 */
	__be16 proto = skb->protocol;
	__u32 zero = 0;
	const struct bw_guard_config *g = bpf_map_lookup_elem(&bw_guard_config, &zero);
	if (g && g->mode == BW_GUARD_OFF)
		g = NULL;
	if (proto != bpf_htons(ETH_P_ARP) && proto != bpf_htons(ETH_P_8021Q) &&
	    proto != bpf_htons(ETH_P_8021AD))
		return g ? guard_frame(skb, g, proto, ETH_HLEN) : TC_ACT_UNSPEC;
	return observe_arp(skb, g);
}

char LICENSE[] SEC("license") = "GPL";
