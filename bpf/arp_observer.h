/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Records shared by arp_observer.bpf.c and user space. Mirrored in TypeScript by
 * src/observe/arp-records.ts: change both together. All fields are host byte order except
 * IPv4 addresses (ip, target_ip and map keys), which keep network byte order (the bytes as on
 * the wire).
 */
#ifndef BRIDGEWARD_ARP_OBSERVER_H
#define BRIDGEWARD_ARP_OBSERVER_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* What an ARP frame was. */
enum bw_arp_kind {
	BW_KIND_REQUEST = 1,  /* request; the sender claims its sender IP */
	BW_KIND_REPLY = 2,    /* reply; the sender claims its sender IP */
	BW_KIND_ANNOUNCE = 3, /* gratuitous (sender IP == target IP), request or reply */
	BW_KIND_PROBE = 4,    /* RFC 5227 probe (sender IP 0.0.0.0); asks about the target IP */
};

/* Event flags. */
enum bw_arp_flags {
	BW_FLAG_NEW = 1,          /* first binding for this address (no previous mac/port) */
	BW_FLAG_MAC_MISMATCH = 2, /* Ethernet source != ARP sender MAC */
	BW_FLAG_VLAN = 4,         /* frame carried an 802.1Q/802.1ad tag (vlan holds its id) */
};

/*
 * Value of the bw_bindings map (key: __u32 sender IP) and of the bw_probes map (key: __u32
 * probed target IP). 32 bytes.
 */
struct bw_binding {
	__u64 last_seen_ns; /* kernel monotonic time of the last frame; a frame that repeats the
			     * binding unchanged refreshes it only once it is
			     * BW_LAST_SEEN_REFRESH_NS old, so it may lag by that much */
	__u64 count;        /* frames that asserted this key */
	__u32 ifindex;      /* port it was last seen on */
	__u8 mac[6];        /* ARP sender MAC */
	__u8 kind;          /* enum bw_arp_kind of the last frame */
	__u8 flags;         /* enum bw_arp_flags of the last frame (without BW_FLAG_NEW) */
	__u16 vlan;         /* VLAN id of the last frame, 0 when untagged */
	__u16 _pad;
};

/* Ring-buffer record: a binding (or probe) that is new or changed mac or port. 48 bytes. */
struct bw_arp_event {
	__u64 ts_ns;        /* bpf_ktime_get_ns() */
	__u32 ip;           /* sender IP, or the probed target IP for BW_KIND_PROBE */
	__u32 ifindex;      /* port the frame arrived on */
	__u32 prev_ifindex; /* previous port, 0 when new */
	__u16 vlan;         /* VLAN id, 0 when untagged */
	__u8 kind;          /* enum bw_arp_kind */
	__u8 flags;         /* enum bw_arp_flags */
	__u8 mac[6];        /* ARP sender MAC */
	__u8 prev_mac[6];   /* previous MAC, zero when new */
	__u8 eth_src[6];    /* Ethernet source MAC */
	__u16 _pad;
	__u32 target_ip;    /* ARP target IP */
};

/*
 * Value of the bw_port_stats map (key: __u32 ifindex), a per-CPU hash: one copy per possible
 * CPU, summed by user space. 48 bytes.
 */
struct bw_port_stats {
	__u64 arp;       /* well-formed ARP frames */
	__u64 malformed; /* ARP (or tagged) frames that failed validation */
	__u64 mismatch;  /* ARP frames whose Ethernet source != sender MAC */
	__u64 events;    /* ring-buffer events emitted */
	__u64 lost;      /* events lost because the ring buffer was full */
	__u64 limited;   /* new or changed bindings (or probes) not recorded: over the port's budget */
};

/*
 * Value of the bw_config map (an array of one entry, key 0), written by the agent before it
 * attaches the program. 16 bytes.
 *
 * A new or changed binding (or probe) costs a map write and a ring-buffer event, so each port
 * may record them only at a sustained rate (one per bind_interval_ns) with a burst: a token
 * bucket kept as a GCRA "theoretical arrival time" per port (bw_port_budget). Frames over the
 * budget are counted (bw_port_stats.limited), never queued. A frame that repeats a binding
 * unchanged costs no budget.
 */
struct bw_config {
	__u64 bind_interval_ns; /* a port earns one new or changed binding per this many ns; 0: no limit */
	__u64 bind_burst_ns;    /* how far a port's budget may run ahead of the clock (burst * interval) */
};

/*
 * The bridge guard: what each port may send as (issue 14). The agent derives it from the lease
 * store (src/guard/) and writes it into the maps below; the program checks every frame a port
 * sends against it. Mirrored in TypeScript by src/guard/guard-records.ts: change both together.
 */

/* bw_guard_config.mode. */
enum bw_guard_mode {
	BW_GUARD_OFF = 0,     /* no checks: the early exit for everything but ARP */
	BW_GUARD_MONITOR = 1, /* check, count and report; drop nothing */
	BW_GUARD_ENFORCE = 2, /* check, count, report and drop */
};

/* bw_guard_config.flags. */
enum bw_guard_config_flags {
	BW_GUARD_DROP_IPV6 = 1, /* IPv6 from sandboxes is a violation (--guard-ipv6 drop) */
};

/* Why a frame is outside its port's binding. */
enum bw_guard_reason {
	BW_GUARD_MAC = 1,       /* Ethernet source is not the port's MAC */
	BW_GUARD_ARP_MAC = 2,   /* ARP sender MAC is not the port's MAC (or not the frame's source) */
	BW_GUARD_ARP_IP = 3,    /* ARP sender IP is not the port's leased address */
	BW_GUARD_IP_SOURCE = 4, /* IPv4 source is not the port's leased address */
	BW_GUARD_UNBOUND = 5,   /* the port has no binding and the frame claims no lease awaiting one */
	BW_GUARD_IPV6 = 6,      /* IPv6 while BW_GUARD_DROP_IPV6 */
	BW_GUARD_MALFORMED = 7, /* IPv4 or ARP too short or invalid to check */
};

/* bw_guard_event.kind. */
enum bw_guard_event_kind {
	BW_GUARD_EV_SPOOF = 1, /* a frame outside its port's binding (dropped, or passed in monitor) */
	BW_GUARD_EV_LEARN = 2, /* an unbound port's frame claimed a lease awaiting its port */
};

/* bw_guard_port.flags. */
enum bw_guard_port_flags {
	BW_GUARD_PORT_LEARNED = 1, /* written by the program when the port claimed a pending lease */
};

/*
 * Value of the bw_guard_config map (an array of one entry, key 0), written by the agent before
 * it attaches the program. 24 bytes. Spoof events spend a per-port budget like new bindings do
 * (bw_config): one per event_interval_ns, running at most event_burst_ns ahead of the clock.
 */
struct bw_guard_config {
	__u32 mode;              /* enum bw_guard_mode */
	__u32 flags;             /* enum bw_guard_config_flags */
	__u64 event_interval_ns; /* a port earns one spoof event per this many ns; 0: no limit */
	__u64 event_burst_ns;    /* how far a port's event budget may run ahead of the clock */
};

/* Value of the bw_guard_ports map (key: __u32 ifindex): what the port may send as. 12 bytes. */
struct bw_guard_port {
	__u8 mac[6]; /* the only Ethernet source (and ARP sender MAC) allowed */
	__u8 flags;  /* enum bw_guard_port_flags */
	__u8 _pad;
	__u32 ip;    /* the only IPv4 source and ARP sender IP allowed (network order) */
};

/*
 * Value of the bw_guard_pending map (key: __u32 leased IPv4, network order): a lease not bound to
 * a current port. An unbound port's first IPv4 or ARP frame from that address claims it (when
 * the MAC fits): the program records the claim in bw_guard_claims (ip -> ifindex, first port
 * wins) and writes a BW_GUARD_PORT_LEARNED entry for the port. 8 bytes.
 */
struct bw_guard_pending {
	__u8 mac[6];    /* the lease's MAC; ignored when any_mac */
	__u8 any_mac;   /* 1: the lease names no MAC (the first frame's source binds it) */
	__u8 _pad;
};

/*
 * Key of the bw_guard_pending_macs map (value: __u32 leased IPv4, network order): the MAC of a
 * pending lease that names one, so that an unbound port's first frame of any kind from that MAC
 * (IPv6 neighbour discovery, say) claims the lease. 8 bytes.
 */
struct bw_guard_mac_key {
	__u8 mac[6];
	__u16 _pad;
};

/* Ring-buffer record of bw_guard_events. 40 bytes. */
struct bw_guard_event {
	__u64 ts_ns;     /* bpf_ktime_get_ns() */
	__u32 ifindex;   /* port the frame arrived on */
	__u32 ip;        /* claimed IPv4: ARP sender IP or IPv4 source (network order); 0 when none */
	__u32 target_ip; /* ARP target IP or IPv4 destination (network order); 0 when none */
	__u8 kind;       /* enum bw_guard_event_kind */
	__u8 reason;     /* enum bw_guard_reason (spoof events) */
	__u8 dropped;    /* 1 when the frame was dropped (enforce) */
	__u8 _pad;
	__u8 eth_src[6]; /* Ethernet source MAC */
	__u8 sha[6];     /* ARP sender MAC; zero for other frames */
	__u16 ethertype; /* the frame's (inner) ethertype, host order */
	__u16 _pad2;
};

/*
 * Value of the bw_guard_stats map (key: __u32 ifindex), a per-CPU hash: one copy per possible
 * CPU, summed by user space. 48 bytes.
 */
struct bw_guard_stats {
	__u64 dropped;    /* frames dropped (enforce) */
	__u64 would_drop; /* frames that enforce would have dropped (monitor) */
	__u64 events;     /* spoof events emitted */
	__u64 limited;    /* spoof events not emitted: over the port's event budget */
	__u64 lost;       /* events lost because the ring buffer was full */
	__u64 learned;    /* pending leases this port claimed */
};

#define BW_GUARD_LEASES_MAX 65536
#define BW_GUARD_RINGBUF_BYTES (64 * 1024)

/* An unchanged binding's last_seen_ns is rewritten at most this often (1 s). */
#define BW_LAST_SEEN_REFRESH_NS 1000000000ULL

#define BW_BINDINGS_MAX 65536
#define BW_PROBES_MAX 4096
#define BW_PORTS_MAX 4096
#define BW_RINGBUF_BYTES (256 * 1024)

#endif /* BRIDGEWARD_ARP_OBSERVER_H */
