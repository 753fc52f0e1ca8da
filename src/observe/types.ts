/**
 * Observations: facts seen on the bridge, each with a source and a timestamp. They feed the
 * allocator's live set and the conflict detector. Conclusions drawn from them are findings
 * (`src/detect/`), a separate type.
 *
 * @example
 * const o: Observation = { source: 'bpf', kind: 'arp-reply', ip: '10.8.64.2', mac: '02:00:00:00:00:02', ifindex: 7, at: Date.now() };
 */

/** Where an observation came from. */
export type ObservationSource = 'bpf' | 'netlink-neigh' | 'netlink-fdb' | 'probe';

/** What was seen. */
export type ObservationKind =
  /** An ARP request whose sender claims `ip`. */
  | 'arp-request'
  /** An ARP reply whose sender claims `ip`. */
  | 'arp-reply'
  /** A gratuitous ARP (sender IP == target IP) announcing `ip`. */
  | 'arp-announce'
  /** An RFC 5227 probe (sender IP 0.0.0.0) asking about `ip`; claims nothing. */
  | 'arp-probe'
  /** The kernel neighbour table maps `ip` to `mac` on the bridge. */
  | 'neigh'
  /** A neighbour entry went away (ip -> mac no longer known). */
  | 'neigh-gone'
  /** The bridge learned `mac` on port `ifindex` (no IP). */
  | 'fdb'
  /** The bridge forgot `mac` (aged out or port gone). */
  | 'fdb-gone'
  /** A MAC answered the agent's own probe for `ip`. */
  | 'probe-reply';

/** One fact seen on the bridge. */
export interface Observation {
  /** Which observer saw it. */
  readonly source: ObservationSource;
  /** What was seen. */
  readonly kind: ObservationKind;
  /** The IPv4 address concerned (null for FDB facts, which carry none). */
  readonly ip: string | null;
  /** Lowercase colon-separated MAC. */
  readonly mac: string;
  /** ifindex of the bridge port it was seen on, when known. */
  readonly ifindex: number | null;
  /** Milliseconds since the epoch. */
  readonly at: number;
}

/** Evidence that an address is in use on the wire right now. */
export interface LiveEvidence {
  /** The address. */
  readonly ip: string;
  /** MACs seen using it. */
  readonly macs: readonly string[];
  /** Bridge ports it was seen on, when known. */
  readonly ifindexes: readonly number[];
  /** Which sources report it. */
  readonly sources: readonly ObservationSource[];
  /** Last time it was seen (ms since the epoch). */
  readonly lastSeen: number;
}

/**
 * A pluggable source of "live on the wire" addresses for the allocator and the reconciler
 * (neighbour table + FDB today; eBPF and probes add themselves).
 */
export interface LiveSource {
  /** Name shown in `status` and in findings. */
  readonly name: ObservationSource;
  /** Addresses this source currently sees live, by address. */
  live(): Promise<ReadonlyMap<string, LiveEvidence>>;
}

/**
 * ARP counted on one bridge port over an interval, from the eBPF per-port counters: a fact
 * about the port's traffic (an ARP storm shows here), not a claim on an address.
 *
 * @example
 * const a: PortActivity = { source: 'bpf', ifindex: 7, port: 'veth7', at: Date.now(),
 *   intervalMs: 1000, arpFrames: 20000, bindings: 100, limited: 19900 };
 */
export interface PortActivity {
  /** Which observer counted it. */
  readonly source: 'bpf';
  /** The bridge port. */
  readonly ifindex: number;
  /** Its name. */
  readonly port: string;
  /** End of the interval (ms since the epoch). */
  readonly at: number;
  /** Length of the interval (ms). */
  readonly intervalMs: number;
  /** Well-formed ARP frames that arrived on the port. */
  readonly arpFrames: number;
  /** New or changed bindings (and probes) the kernel recorded for the port. */
  readonly bindings: number;
  /** New or changed bindings over the port's budget: counted, not recorded. */
  readonly limited: number;
  /** MACs the bridge has learned on the port (FDB), when the caller added them. */
  readonly stations?: readonly string[];
}

/** Why a frame was outside its port's binding (what the bridge guard checks). */
export type SpoofReason =
  /** Ethernet source is not the port's MAC. */
  | 'mac'
  /** ARP sender MAC is not the port's MAC (or not the frame's source). */
  | 'arp-mac'
  /** ARP sender IP is not the port's leased address. */
  | 'arp-ip'
  /** IPv4 source is not the port's leased address. */
  | 'ip-source'
  /** The port has no binding and the frame claims no lease awaiting one. */
  | 'unbound'
  /** IPv6 while `--guard-ipv6 drop`. */
  | 'ipv6'
  /** IPv4 or ARP too short or invalid to check. */
  | 'malformed';

/**
 * A frame the bridge guard found outside its port's binding (a spoof attempt), with what the
 * guard did with it: a fact about one frame (reports are rate-limited per port in the kernel;
 * `GuardActivity` carries the counts).
 *
 * @example
 * const s: SpoofObservation = { source: 'bpf', ifindex: 9, port: 'vethb', at: Date.now(),
 *   reason: 'ip-source', dropped: true, ip: '10.8.64.2', targetIp: '10.8.64.4',
 *   mac: '02:00:00:00:00:0b', senderMac: null };
 */
export interface SpoofObservation {
  /** Which observer saw it. */
  readonly source: 'bpf';
  /** The bridge port it came from. */
  readonly ifindex: number;
  /** Its name. */
  readonly port: string;
  /** When (ms since the epoch). */
  readonly at: number;
  /** What was wrong with it. */
  readonly reason: SpoofReason;
  /** Dropped (enforce), or passed (monitor). */
  readonly dropped: boolean;
  /** The IPv4 it claimed (ARP sender or IPv4 source), null when none. */
  readonly ip: string | null;
  /** ARP target or IPv4 destination, null when none. */
  readonly targetIp: string | null;
  /** Its Ethernet source MAC. */
  readonly mac: string;
  /** Its ARP sender MAC, null for other frames. */
  readonly senderMac: string | null;
}

/**
 * The bridge guard's counts on one port over an interval, from its per-port counters.
 *
 * @example
 * const a: GuardActivity = { source: 'bpf', ifindex: 9, port: 'vethb', at: Date.now(),
 *   intervalMs: 1000, dropped: 120, wouldDrop: 0 };
 */
export interface GuardActivity {
  /** Which observer counted it. */
  readonly source: 'bpf';
  /** The bridge port. */
  readonly ifindex: number;
  /** Its name. */
  readonly port: string;
  /** End of the interval (ms since the epoch). */
  readonly at: number;
  /** Length of the interval (ms). */
  readonly intervalMs: number;
  /** Frames dropped in the interval (enforce). */
  readonly dropped: number;
  /** Frames enforce would have dropped in the interval (monitor). */
  readonly wouldDrop: number;
}
