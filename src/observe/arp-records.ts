/**
 * The eBPF ARP observer's records, mirrored from `bpf/arp_observer.h` (change both together):
 * ring-buffer events, binding-map entries and per-port counters, parsed from raw bytes, and
 * turned into `Observation`s. Pure. Host-order fields are read little-endian (x86-64, arm64);
 * IPv4 addresses are in network order, as on the wire.
 *
 * @example
 * const e = parseArpEvent(record);
 * const o = e && eventToObservation(e, clockNow());
 */
import { formatIp, formatMac } from '../net/ipv4.js';
import type { ArpKind } from '../net/arp.js';
import type { Observation, ObservationKind } from './types.js';

/** sizeof(struct bw_arp_event). */
export const EVENT_SIZE = 48;
/** sizeof(struct bw_binding). */
export const BINDING_SIZE = 32;
/** sizeof(struct bw_port_stats): one copy per CPU in the map. */
export const PORT_STATS_SIZE = 48;
/** sizeof(struct bw_config). */
export const CONFIG_SIZE = 16;
/** Map and program names in the object file. */
export const BPF_NAMES = {
  program: 'arp_observer',
  bindings: 'bw_bindings',
  probes: 'bw_probes',
  portStats: 'bw_port_stats',
  events: 'bw_events',
  config: 'bw_config',
  portBudget: 'bw_port_budget',
} as const;

/** enum bw_arp_kind. */
const KINDS: Record<number, ArpKind> = { 1: 'request', 2: 'reply', 3: 'announce', 4: 'probe' };
/** enum bw_arp_flags. */
const FLAG_NEW = 1;
const FLAG_MAC_MISMATCH = 2;
const FLAG_VLAN = 4;

/** A binding (or probe) the kernel saw appear or change (struct bw_arp_event). */
export interface ArpEvent {
  /** Kernel monotonic time of the frame (ns). */
  readonly tsNs: bigint;
  /** Sender IP, or the probed target IP for probes. */
  readonly ip: string;
  /** Port the frame arrived on. */
  readonly ifindex: number;
  /** Previous port, null when the binding is new. */
  readonly prevIfindex: number | null;
  /** Previous MAC, null when the binding is new. */
  readonly prevMac: string | null;
  /** VLAN id, null when untagged. */
  readonly vlan: number | null;
  /** What the frame was. */
  readonly kind: ArpKind;
  /** Ethernet source differed from the ARP sender MAC. */
  readonly macMismatch: boolean;
  /** ARP sender MAC. */
  readonly mac: string;
  /** Ethernet source MAC. */
  readonly ethSrc: string;
  /** ARP target IP. */
  readonly targetIp: string;
}

/** One entry of the in-kernel binding (or probe) map (struct bw_binding). */
export interface KernelBinding {
  /** The map key: sender IP (bindings) or probed IP (probes). */
  readonly ip: string;
  /** Last ARP sender MAC. */
  readonly mac: string;
  /** Port it was last seen on. */
  readonly ifindex: number;
  /** Kernel monotonic time of the last frame (ns). */
  readonly lastSeenNs: bigint;
  /** Frames that asserted it. */
  readonly count: number;
  /** Kind of the last frame. */
  readonly kind: ArpKind;
  /** The last frame's Ethernet source differed from its sender MAC. */
  readonly macMismatch: boolean;
  /** VLAN id of the last frame, null when untagged. */
  readonly vlan: number | null;
}

/** Per-port counters (struct bw_port_stats). */
export interface PortStats {
  /** Well-formed ARP frames. */
  readonly arp: number;
  /** Malformed ARP (or tagged) frames. */
  readonly malformed: number;
  /** ARP frames whose Ethernet source differed from the sender MAC. */
  readonly mismatch: number;
  /** Ring-buffer events emitted. */
  readonly events: number;
  /** Events lost to a full ring buffer. */
  readonly lost: number;
  /** New or changed bindings (or probes) not recorded: over the port's budget. */
  readonly limited: number;
}

/** Every counter at zero (a port the program has not counted yet). */
export const ZERO_PORT_STATS: PortStats = {
  arp: 0,
  malformed: 0,
  mismatch: 0,
  events: 0,
  lost: 0,
  limited: 0,
};

/** The per-port budget for new or changed bindings (struct bw_config), in user terms. */
export interface BindingBudget {
  /** Sustained new or changed bindings per second per port; 0: no limit. */
  readonly perSecond: number;
  /** How many a port may record at once after a quiet spell (at least 1). */
  readonly burst: number;
}

/** A raw map dump as the addon returns it. */
export interface MapDump {
  /** Bytes per key. */
  readonly keySize: number;
  /** Bytes per value. */
  readonly valueSize: number;
  /** Values per key: the possible CPUs for a per-CPU map; 1 (the default) otherwise. */
  readonly cpus?: number;
  /** Every key, concatenated. */
  readonly keys: Buffer;
  /** Every value (`cpus` per key, in CPU order), concatenated in the same key order. */
  readonly values: Buffer;
}

/** A pair of clock readings taken together, to turn kernel monotonic time into epoch ms. */
export interface ClockPair {
  /** CLOCK_MONOTONIC in ns (what bpf_ktime_get_ns() and process.hrtime.bigint() read). */
  readonly monoNs: bigint;
  /** Date.now() at the same moment. */
  readonly epochMs: number;
}

/**
 * Parses one ring-buffer record; null when its size or kind is not the header's.
 *
 * @example parseArpEvent(Buffer.alloc(10)) // null
 */
export function parseArpEvent(buf: Buffer): ArpEvent | null {
  if (buf.length !== EVENT_SIZE) return null;
  const kind = KINDS[buf[22] as number];
  if (!kind) return null;
  const flags = buf[23] as number;
  const isNew = (flags & FLAG_NEW) !== 0;
  return {
    tsNs: buf.readBigUInt64LE(0),
    ip: formatIp(buf.readUInt32BE(8)),
    ifindex: buf.readUInt32LE(12),
    prevIfindex: isNew ? null : buf.readUInt32LE(16),
    prevMac: isNew ? null : formatMac(buf.subarray(30, 36)),
    vlan: flags & FLAG_VLAN ? buf.readUInt16LE(20) : null,
    kind,
    macMismatch: (flags & FLAG_MAC_MISMATCH) !== 0,
    mac: formatMac(buf.subarray(24, 30)),
    ethSrc: formatMac(buf.subarray(36, 42)),
    targetIp: formatIp(buf.readUInt32BE(44)),
  };
}

/**
 * Parses a dump of the binding or probe map; entries with an unknown kind are skipped.
 *
 * @example parseBindings(obj.mapDump('bw_bindings')).map((b) => b.ip)
 */
export function parseBindings(dump: MapDump): KernelBinding[] {
  if (dump.keySize !== 4 || dump.valueSize !== BINDING_SIZE || (dump.cpus ?? 1) !== 1) {
    return [];
  }
  const out: KernelBinding[] = [];
  const n = Math.min(dump.keys.length / 4, dump.values.length / BINDING_SIZE);
  for (let i = 0; i < n; i++) {
    const v = dump.values.subarray(i * BINDING_SIZE, (i + 1) * BINDING_SIZE);
    const kind = KINDS[v[26] as number];
    if (!kind) continue;
    const flags = v[27] as number;
    out.push({
      ip: formatIp(dump.keys.readUInt32BE(i * 4)),
      lastSeenNs: v.readBigUInt64LE(0),
      count: Number(v.readBigUInt64LE(8)),
      ifindex: v.readUInt32LE(16),
      mac: formatMac(v.subarray(20, 26)),
      kind,
      macMismatch: (flags & FLAG_MAC_MISMATCH) !== 0,
      vlan: flags & FLAG_VLAN ? v.readUInt16LE(28) : null,
    });
  }
  return out;
}

/**
 * Parses a dump of the per-port counter map (a per-CPU map), by ifindex: each counter summed
 * over the CPUs.
 *
 * @example parsePortStats(obj.mapDump('bw_port_stats')).get(7)?.arp
 */
export function parsePortStats(dump: MapDump): Map<number, PortStats> {
  const out = new Map<number, PortStats>();
  for (const [ifindex, sum] of sumPerCpuCounters(dump, PORT_STATS_SIZE)) {
    const [arp, malformed, mismatch, events, lost, limited] = sum as Six;
    out.set(ifindex, { arp, malformed, mismatch, events, lost, limited });
  }
  return out;
}

/** Six counters in struct order. */
type Six = [number, number, number, number, number, number];

/**
 * Sums a per-CPU map of __u64 counters keyed by ifindex (a struct of `valueSize / 8` counters
 * per CPU): ifindex -> each counter summed over the CPUs, in struct order. Empty when the dump's
 * layout is not that.
 *
 * @example sumPerCpuCounters(obj.mapDump('bw_port_stats'), 48).get(7)?.[0] // ARP frames on port 7
 */
export function sumPerCpuCounters(dump: MapDump, valueSize: number): Map<number, number[]> {
  const out = new Map<number, number[]>();
  const cpus = dump.cpus ?? 1;
  if (dump.keySize !== 4 || dump.valueSize !== valueSize || cpus < 1) return out;
  const entry = valueSize * cpus;
  const n = Math.min(dump.keys.length / 4, Math.floor(dump.values.length / entry));
  for (let i = 0; i < n; i++) {
    const sum = new Array<bigint>(valueSize / 8).fill(0n);
    for (let c = 0; c < cpus; c++) {
      const at = i * entry + c * valueSize;
      for (let f = 0; f < sum.length; f++) {
        sum[f] = (sum[f] as bigint) + dump.values.readBigUInt64LE(at + f * 8);
      }
    }
    out.set(dump.keys.readUInt32LE(i * 4), sum.map(Number));
  }
  return out;
}

/**
 * Encodes a binding budget as struct bw_config: one binding per interval, running at most
 * `burst` intervals ahead of the clock.
 *
 * @example encodeConfig({ perSecond: 100, burst: 200 }).readBigUInt64LE(0) // 10000000n
 * @throws RangeError for a negative or fractional rate or a burst below 1.
 */
export function encodeConfig(budget: BindingBudget): Buffer {
  const buf = Buffer.alloc(CONFIG_SIZE);
  writeBudget(buf, 0, budget, 'binding budget');
  return buf;
}

/**
 * Writes a per-port budget at `offset` as the kernel keeps it: the interval between two units
 * (ns) and how far the budget may run ahead of the clock (burst * interval), two __u64; both 0
 * for no limit. `what` names the budget in errors.
 *
 * @example writeBudget(Buffer.alloc(16), 0, { perSecond: 100, burst: 200 }, 'x') // interval 10000000n
 * @throws RangeError for a negative or fractional rate or a burst below 1.
 */
export function writeBudget(
  buf: Buffer,
  offset: number,
  budget: BindingBudget,
  what: string,
): void {
  const { perSecond, burst } = budget;
  if (!Number.isInteger(perSecond) || perSecond < 0 || perSecond > 1e9) {
    throw new RangeError(`${what}: ${perSecond} per second is not an integer in 0..1e9`);
  }
  if (!Number.isInteger(burst) || burst < 1) {
    throw new RangeError(`${what}: burst ${burst} is not an integer >= 1`);
  }
  if (perSecond === 0) return;
  const interval = BigInt(Math.ceil(1e9 / perSecond));
  buf.writeBigUInt64LE(interval, offset);
  buf.writeBigUInt64LE(interval * BigInt(burst), offset + 8);
}

/**
 * A map key or value holding one ifindex (a __u32 in host order).
 *
 * @example ifindexKey(7) // <Buffer 07 00 00 00>
 */
export function ifindexKey(ifindex: number): Buffer {
  const key = Buffer.alloc(4);
  key.writeUInt32LE(ifindex, 0);
  return key;
}

/**
 * Converts a kernel monotonic timestamp into epoch milliseconds using a clock pair.
 *
 * @example monoToEpochMs(1_000_000n, { monoNs: 3_000_000n, epochMs: 10_000 }) // 9998
 */
export function monoToEpochMs(tsNs: bigint, clock: ClockPair): number {
  return clock.epochMs - Number(clock.monoNs - tsNs) / 1e6;
}

const OBSERVATION_KINDS: Record<ArpKind, ObservationKind> = {
  request: 'arp-request',
  reply: 'arp-reply',
  announce: 'arp-announce',
  probe: 'arp-probe',
};

/**
 * The observation an event stands for; null for a probe whose Ethernet source differs from its
 * sender MAC (RFC 5227 says to ignore those). Other mismatched frames are still claims: the
 * neighbours learn the ARP sender MAC, whoever sent the frame.
 *
 * @example eventToObservation(e, { monoNs: process.hrtime.bigint(), epochMs: Date.now() })
 */
export function eventToObservation(e: ArpEvent, clock: ClockPair): Observation | null {
  if (e.kind === 'probe' && e.macMismatch) return null;
  return {
    source: 'bpf',
    kind: OBSERVATION_KINDS[e.kind],
    ip: e.ip,
    mac: e.mac,
    ifindex: e.ifindex,
    at: monoToEpochMs(e.tsNs, clock),
  };
}

/**
 * The same as `eventToObservation`, for a binding read from the map (after lost events, or at
 * start): what the kernel holds now.
 *
 * @example bindingToObservation(b, clock)
 */
export function bindingToObservation(b: KernelBinding, clock: ClockPair): Observation | null {
  if (b.kind === 'probe' && b.macMismatch) return null;
  return {
    source: 'bpf',
    kind: OBSERVATION_KINDS[b.kind],
    ip: b.ip,
    mac: b.mac,
    ifindex: b.ifindex,
    at: monoToEpochMs(b.lastSeenNs, clock),
  };
}

/** What user space last knew of a binding: its MAC and port. */
export interface KnownBinding {
  /** ARP sender MAC. */
  readonly mac: string;
  /** Bridge port. */
  readonly ifindex: number;
}

/**
 * Bindings in `current` that are new or differ (MAC or port) from `known`: what the ring buffer
 * would have reported had no event been lost.
 *
 * @example changedBindings(new Map(), dump) // every binding in dump
 */
export function changedBindings(
  known: ReadonlyMap<string, KnownBinding>,
  current: readonly KernelBinding[],
): KernelBinding[] {
  return current.filter((b) => {
    const k = known.get(b.ip);
    return !k || k.mac !== b.mac || k.ifindex !== b.ifindex;
  });
}
