/**
 * The bridge guard's kernel records, mirrored from `bpf/arp_observer.h` (change both together):
 * the config, a port's binding, a lease awaiting its port, the claim map, the per-port counters
 * and the ring-buffer events, encoded and parsed. Pure. Host-order fields are little-endian
 * (x86-64, arm64); IPv4 addresses keep network order, as on the wire.
 *
 * @example
 * const value = encodePortBinding({ mac: '02:00:00:00:00:0a', ip: '10.8.64.2' });
 * const e = parseGuardEvent(record); // { kind: 'spoof', reason: 'ip-source', ... }
 */
import { formatIp, formatMac, parseIp, parseMac } from '../net/ipv4.js';
import {
  sumPerCpuCounters,
  writeBudget,
  type BindingBudget,
  type MapDump,
} from '../observe/arp-records.js';
import type { SpoofReason } from '../observe/types.js';

/** sizeof(struct bw_guard_config). */
export const GUARD_CONFIG_SIZE = 24;
/** sizeof(struct bw_guard_port). */
export const GUARD_PORT_SIZE = 12;
/** sizeof(struct bw_guard_pending). */
export const GUARD_PENDING_SIZE = 8;
/** sizeof(struct bw_guard_event). */
export const GUARD_EVENT_SIZE = 40;
/** sizeof(struct bw_guard_stats): one copy per CPU in the map. */
export const GUARD_STATS_SIZE = 48;

/** The guard's map names in the object file. */
export const GUARD_MAPS = {
  config: 'bw_guard_config',
  ports: 'bw_guard_ports',
  pending: 'bw_guard_pending',
  pendingMacs: 'bw_guard_pending_macs',
  claims: 'bw_guard_claims',
  stats: 'bw_guard_stats',
  budget: 'bw_guard_budget',
  events: 'bw_guard_events',
} as const;

/** What the guard does: nothing, count and report (monitor), or also drop (enforce). */
export type GuardMode = 'off' | 'monitor' | 'enforce';

/** enum bw_guard_mode. */
const MODES: Record<GuardMode, number> = { off: 0, monitor: 1, enforce: 2 };
/** enum bw_guard_config_flags. */
const DROP_IPV6 = 1;
/** enum bw_guard_port_flags. */
const PORT_LEARNED = 1;

/** enum bw_guard_reason, by number. */
const REASONS: Record<number, SpoofReason> = {
  1: 'mac',
  2: 'arp-mac',
  3: 'arp-ip',
  4: 'ip-source',
  5: 'unbound',
  6: 'ipv6',
  7: 'malformed',
};

/** How the guard runs in the kernel (struct bw_guard_config), in user terms. */
export interface GuardConfig {
  /** What the guard does. */
  readonly mode: GuardMode;
  /** Whether IPv6 from sandboxes is a violation (`--guard-ipv6 drop`). */
  readonly dropIpv6: boolean;
  /** Spoof events each port may report (the excess is only counted). */
  readonly events: BindingBudget;
}

/** What one port may send as: its MAC and leased IPv4 (struct bw_guard_port). */
export interface PortBinding {
  /** The only Ethernet source and ARP sender MAC allowed. */
  readonly mac: string;
  /** The only IPv4 source and ARP sender IP allowed. */
  readonly ip: string;
}

/** A port's binding as the kernel holds it. */
export interface KernelPortBinding extends PortBinding {
  /** Written by the program when the port claimed a lease awaiting its port. */
  readonly learned: boolean;
}

/** A ring-buffer event of the guard (struct bw_guard_event). */
export interface GuardEvent {
  /** `spoof`: a frame outside its port's binding; `learn`: an unbound port claimed a lease. */
  readonly kind: 'spoof' | 'learn';
  /** Kernel monotonic time of the frame (ns). */
  readonly tsNs: bigint;
  /** Port the frame arrived on. */
  readonly ifindex: number;
  /** Claimed IPv4 (ARP sender or IPv4 source), null when none. */
  readonly ip: string | null;
  /** ARP target or IPv4 destination, null when none. */
  readonly targetIp: string | null;
  /** Why it was a violation (null for `learn`). */
  readonly reason: SpoofReason | null;
  /** The frame was dropped (enforce). */
  readonly dropped: boolean;
  /** Ethernet source MAC. */
  readonly ethSrc: string;
  /** ARP sender MAC, null for other frames. */
  readonly senderMac: string | null;
  /** The frame's (inner) ethertype. */
  readonly ethertype: number;
}

/** Per-port counters of the guard (struct bw_guard_stats), summed over the CPUs. */
export interface GuardStats {
  /** Frames dropped (enforce). */
  readonly dropped: number;
  /** Frames enforce would have dropped (monitor). */
  readonly wouldDrop: number;
  /** Spoof events emitted. */
  readonly events: number;
  /** Spoof events over the port's event budget (only counted). */
  readonly limited: number;
  /** Events lost to a full ring buffer. */
  readonly lost: number;
  /** Leases awaiting a port that this port claimed. */
  readonly learned: number;
}

/** Every counter at zero. */
export const ZERO_GUARD_STATS: GuardStats = {
  dropped: 0,
  wouldDrop: 0,
  events: 0,
  limited: 0,
  lost: 0,
  learned: 0,
};

/**
 * Encodes the guard's config (struct bw_guard_config).
 *
 * @example encodeGuardConfig({ mode: 'enforce', dropIpv6: false, events: { perSecond: 20, burst: 40 } }).readUInt32LE(0) // 2
 * @throws RangeError for a bad event budget.
 */
export function encodeGuardConfig(cfg: GuardConfig): Buffer {
  const buf = Buffer.alloc(GUARD_CONFIG_SIZE);
  buf.writeUInt32LE(MODES[cfg.mode], 0);
  buf.writeUInt32LE(cfg.dropIpv6 ? DROP_IPV6 : 0, 4);
  writeBudget(buf, 8, cfg.events, 'spoof event budget');
  return buf;
}

/**
 * A map key holding one IPv4 address in network order (the pending and claim maps' key).
 *
 * @example ipKey('10.8.64.2') // <Buffer 0a 08 40 02>
 */
export function ipKey(ip: string): Buffer {
  const key = Buffer.alloc(4);
  key.writeUInt32BE(parseIp(ip), 0);
  return key;
}

/**
 * Encodes a port's binding written by the agent (struct bw_guard_port, not learned).
 *
 * @example encodePortBinding({ mac: '02:00:00:00:00:0a', ip: '10.8.64.2' }).length // 12
 */
export function encodePortBinding(b: PortBinding): Buffer {
  const buf = Buffer.alloc(GUARD_PORT_SIZE);
  macBytes(b.mac).copy(buf, 0);
  buf.writeUInt32BE(parseIp(b.ip), 8);
  return buf;
}

/**
 * Encodes a lease awaiting its port (struct bw_guard_pending): its MAC, or null when it names
 * none (the first frame's source binds it).
 *
 * @example encodePending(null)[6] // 1 (any MAC)
 */
export function encodePending(mac: string | null): Buffer {
  const buf = Buffer.alloc(GUARD_PENDING_SIZE);
  if (mac === null) buf[6] = 1;
  else macBytes(mac).copy(buf, 0);
  return buf;
}

/**
 * The key of the pending-MAC map (struct bw_guard_mac_key): the MAC and two zero bytes.
 *
 * @example macKey('02:00:00:00:00:0a') // <Buffer 02 00 00 00 00 0a 00 00>
 */
export function macKey(mac: string): Buffer {
  return Buffer.concat([macBytes(mac), Buffer.alloc(2)]);
}

/**
 * Parses a dump of the pending-MAC map: MAC -> the address of the pending lease that names it.
 *
 * @example parsePendingMacs(maps.dump('bw_guard_pending_macs')).get('02:00:00:00:00:0a') // '10.8.64.2'
 */
export function parsePendingMacs(dump: MapDump): Map<string, string> {
  const out = new Map<string, string>();
  if (dump.keySize !== 8 || dump.valueSize !== 4) return out;
  const n = Math.min(dump.keys.length / 8, dump.values.length / 4);
  for (let i = 0; i < n; i++) {
    out.set(
      formatMac(dump.keys.subarray(i * 8, i * 8 + 6)),
      formatIp(dump.values.readUInt32BE(i * 4)),
    );
  }
  return out;
}

/**
 * Parses a dump of the port map: ifindex -> binding.
 *
 * @example parseGuardPorts(maps.dump('bw_guard_ports')).get(7)?.ip // '10.8.64.2'
 */
export function parseGuardPorts(dump: MapDump): Map<number, KernelPortBinding> {
  const out = new Map<number, KernelPortBinding>();
  for (const [key, v] of entries(dump, GUARD_PORT_SIZE)) {
    out.set(key.readUInt32LE(0), {
      mac: formatMac(v.subarray(0, 6)),
      ip: formatIp(v.readUInt32BE(8)),
      learned: ((v[6] as number) & PORT_LEARNED) !== 0,
    });
  }
  return out;
}

/**
 * Parses a dump of the pending map: leased ip -> its MAC, or null when any MAC may claim it.
 *
 * @example parsePending(maps.dump('bw_guard_pending')).get('10.8.64.2') // '02:00:00:00:00:0a'
 */
export function parsePending(dump: MapDump): Map<string, string | null> {
  const out = new Map<string, string | null>();
  for (const [key, v] of entries(dump, GUARD_PENDING_SIZE)) {
    out.set(formatIp(key.readUInt32BE(0)), v[6] ? null : formatMac(v.subarray(0, 6)));
  }
  return out;
}

/**
 * Parses a dump of the claim map: leased ip -> the port that claimed it.
 *
 * @example parseClaims(maps.dump('bw_guard_claims')).get('10.8.64.2') // 7
 */
export function parseClaims(dump: MapDump): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, v] of entries(dump, 4)) {
    out.set(formatIp(key.readUInt32BE(0)), v.readUInt32LE(0));
  }
  return out;
}

/**
 * Parses a dump of the per-port counters (a per-CPU map), by ifindex.
 *
 * @example parseGuardStats(maps.dump('bw_guard_stats')).get(7)?.dropped
 */
export function parseGuardStats(dump: MapDump): Map<number, GuardStats> {
  const out = new Map<number, GuardStats>();
  for (const [ifindex, sum] of sumPerCpuCounters(dump, GUARD_STATS_SIZE)) {
    const [dropped = 0, wouldDrop = 0, events = 0, limited = 0, lost = 0, learned = 0] = sum;
    out.set(ifindex, { dropped, wouldDrop, events, limited, lost, learned });
  }
  return out;
}

/**
 * Parses one ring-buffer record; null when its size, kind or reason is not the header's.
 *
 * @example parseGuardEvent(Buffer.alloc(3)) // null
 */
export function parseGuardEvent(buf: Buffer): GuardEvent | null {
  if (buf.length !== GUARD_EVENT_SIZE) return null;
  const kind = buf[20] === 1 ? 'spoof' : buf[20] === 2 ? 'learn' : null;
  const reason = REASONS[buf[21] as number] ?? null;
  if (kind === null || (kind === 'spoof' && reason === null)) return null;
  const ip = buf.readUInt32BE(12);
  const target = buf.readUInt32BE(16);
  const sha = buf.subarray(30, 36);
  return {
    kind,
    tsNs: buf.readBigUInt64LE(0),
    ifindex: buf.readUInt32LE(8),
    ip: ip === 0 ? null : formatIp(ip),
    targetIp: target === 0 ? null : formatIp(target),
    reason: kind === 'spoof' ? reason : null,
    dropped: buf[22] === 1,
    ethSrc: formatMac(buf.subarray(24, 30)),
    senderMac: sha.every((b) => b === 0) ? null : formatMac(sha),
    ethertype: buf.readUInt16LE(36),
  };
}

/** The six bytes of a MAC. */
function macBytes(mac: string): Buffer {
  return Buffer.from(parseMac(mac).split(':').join(''), 'hex');
}

/** (key, value) pairs of a dump whose values are `valueSize` bytes and keys 4; none otherwise. */
function entries(dump: MapDump, valueSize: number): [Buffer, Buffer][] {
  if (dump.keySize !== 4 || dump.valueSize !== valueSize || (dump.cpus ?? 1) !== 1) return [];
  const n = Math.min(dump.keys.length / 4, dump.values.length / valueSize);
  return Array.from({ length: n }, (_, i) => [
    dump.keys.subarray(i * 4, i * 4 + 4),
    dump.values.subarray(i * valueSize, (i + 1) * valueSize),
  ]);
}
