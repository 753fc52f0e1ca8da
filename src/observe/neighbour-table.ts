/**
 * The pure half of the neighbour observer: turns rtnetlink neighbour messages (the ARP table,
 * family AF_INET, and the bridge FDB, family AF_BRIDGE) into plain entries, keeps tables of
 * them, and decides which addresses count as live on the bridge.
 *
 * An ARP entry counts as live when the kernel confirmed it recently (REACHABLE, DELAY, PROBE) or
 * it is static (PERMANENT, NOARP). A STALE entry lingers long after its owner is gone (below
 * `gc_thresh1` the kernel never collects it), so it counts only while the bridge FDB still has
 * its MAC on a port: a deleted veth takes its FDB entries with it.
 *
 * @example
 * const t = new NeighbourTables(bridgeIndex, subnet);
 * t.apply(parseNeighbourMessage(msg, false));
 * t.live(Date.now()).get('10.8.64.2'); // LiveEvidence or undefined
 */
import type { rt } from 'netlink';
import { contains, formatMac, parseIp, type Subnet } from '../net/ipv4.js';
import type { LiveEvidence, Observation } from './types.js';

/** The states of an ARP entry the observer distinguishes. */
export type NeighState = 'reachable' | 'stale' | 'delay' | 'probe' | 'static' | 'dead';

/** An ARP (AF_INET) neighbour entry. */
export interface ArpEntry {
  readonly type: 'arp';
  /** Interface the entry is on. */
  readonly ifindex: number;
  /** The neighbour's address. */
  readonly ip: string;
  /** Its MAC, or null while unresolved. */
  readonly mac: string | null;
  /** Coarse state. */
  readonly state: NeighState;
  /** When the kernel last confirmed it (ms since the epoch). */
  readonly confirmedAt: number;
  /** True for a deletion notice. */
  readonly deleted: boolean;
}

/** A learned bridge FDB entry: `mac` was seen on bridge port `port`. */
export interface FdbEntry {
  readonly type: 'fdb';
  /** ifindex of the bridge port. */
  readonly port: number;
  /** ifindex of the bridge. */
  readonly master: number | null;
  /** The learned MAC. */
  readonly mac: string;
  /** True for a deletion notice (aged out, port gone). */
  readonly deleted: boolean;
}

const AF_INET = 2;
const AF_BRIDGE = 7;
/** The kernel reports cache ages in clock ticks of 1/100 s (USER_HZ). */
const TICK_MS = 10;

/**
 * Parses one neighbour message. Returns null for anything the observer ignores (IPv6,
 * permanent FDB entries of the bridge's own ports, malformed messages).
 */
export function parseNeighbourMessage(
  m: rt.NeighborMessage,
  deleted: boolean,
  now: number,
): ArpEntry | FdbEntry | null {
  const ifindex = m.data.ifindex ?? 0;
  const state = m.data.state ?? {};
  const lladdr = m.attrs.lladdr;
  const mac = lladdr && lladdr.length === 6 ? formatMac(lladdr) : null;
  if (m.data.family === AF_BRIDGE) {
    if (!mac || state.permanent || state.noarp || m.data.flags?.self) return null;
    return { type: 'fdb', port: ifindex, master: m.attrs.master ?? null, mac, deleted };
  }
  if (m.data.family !== AF_INET) return null;
  const dst = m.attrs.dst;
  if (!dst || dst.length !== 4) return null;
  const confirmedTicks = m.attrs.cacheInfo?.confirmed ?? 0;
  return {
    type: 'arp',
    ifindex,
    ip: Array.from(dst).join('.'),
    mac,
    state: coarseState(state),
    confirmedAt: now - confirmedTicks * TICK_MS,
    deleted,
  };
}

function coarseState(s: rt.NeighborState): NeighState {
  if (s.reachable) return 'reachable';
  if (s.delay) return 'delay';
  if (s.probe) return 'probe';
  if (s.stale) return 'stale';
  if (s.permanent || s.noarp) return 'static';
  return 'dead';
}

/** The observation an entry change amounts to, or null when it says nothing about the bridge. */
export function toObservation(e: ArpEntry | FdbEntry, at: number): Observation | null {
  if (e.type === 'fdb') {
    return {
      source: 'netlink-fdb',
      kind: e.deleted ? 'fdb-gone' : 'fdb',
      ip: null,
      mac: e.mac,
      ifindex: e.port,
      at,
    };
  }
  if (e.mac === null) return null;
  const gone = e.deleted || e.state === 'dead';
  return {
    source: 'netlink-neigh',
    kind: gone ? 'neigh-gone' : 'neigh',
    ip: e.ip,
    mac: e.mac,
    ifindex: null,
    at,
  };
}

/** The ARP table of one bridge and the bridge's learned FDB, kept current from messages. */
export class NeighbourTables {
  readonly #bridge: number;
  readonly #subnet: Subnet;
  readonly #arp = new Map<string, ArpEntry>();
  /** Learned MAC -> bridge ports it is on. */
  readonly #fdb = new Map<string, Set<number>>();

  /** Tables for the bridge with ifindex `bridge`, keeping ARP entries inside `subnet`. */
  constructor(bridge: number, subnet: Subnet) {
    this.#bridge = bridge;
    this.#subnet = subnet;
  }

  /** Empties both tables (before a full re-dump). */
  clear(): void {
    this.#arp.clear();
    this.#fdb.clear();
  }

  /** Applies one entry or deletion; returns whether it concerned this bridge. */
  apply(e: ArpEntry | FdbEntry): boolean {
    if (e.type === 'fdb') {
      if (e.master !== null && e.master !== this.#bridge) return false;
      const ports = this.#fdb.get(e.mac) ?? new Set<number>();
      if (e.deleted) ports.delete(e.port);
      else ports.add(e.port);
      if (ports.size) this.#fdb.set(e.mac, ports);
      else this.#fdb.delete(e.mac);
      return true;
    }
    if (e.ifindex !== this.#bridge || !contains(this.#subnet, parseIp(e.ip))) return false;
    if (e.deleted || e.state === 'dead') this.#arp.delete(e.ip);
    else this.#arp.set(e.ip, e);
    return true;
  }

  /** Addresses live on the bridge right now, with evidence (see the module comment). */
  live(): Map<string, LiveEvidence> {
    const out = new Map<string, LiveEvidence>();
    for (const e of this.#arp.values()) {
      if (e.mac === null) continue;
      const ports = [...(this.#fdb.get(e.mac) ?? [])];
      if (e.state === 'stale' && ports.length === 0) continue;
      out.set(e.ip, {
        ip: e.ip,
        macs: [e.mac],
        ifindexes: ports,
        sources: ports.length ? ['netlink-neigh', 'netlink-fdb'] : ['netlink-neigh'],
        lastSeen: e.confirmedAt,
      });
    }
    return out;
  }

  /** Bridge ports a MAC is currently learned on. */
  portsOf(mac: string): number[] {
    return [...(this.#fdb.get(mac) ?? [])];
  }

  /** MACs currently learned on a bridge port. */
  macsOn(port: number): string[] {
    return [...this.#fdb].filter(([, ports]) => ports.has(port)).map(([mac]) => mac);
  }

  /** The MAC the ARP table holds for an address, or null (unknown or unresolved). */
  macOf(ip: string): string | null {
    return this.#arp.get(ip)?.mac ?? null;
  }
}
