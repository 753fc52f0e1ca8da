/**
 * The allocator's pure core: given the pool, a store snapshot, the addresses live on the wire
 * and the time, choose the address for a sandbox (or say why none is left). No I/O.
 *
 * Rules: never the network, gateway or broadcast address, an active lease, a quarantined
 * address or an address seen live; addresses still cooling down after a release only when
 * nothing else is free (then the one released longest ago); otherwise round-robin from the
 * cursor (the last address handed out), so a just-freed address is the last to come back.
 * A sandbox that already holds a lease gets it back.
 *
 * @example
 * const d = chooseAddress({ pool, snapshot, live: new Set(), sandbox: 'app-1', now: Date.now() });
 * if (d.kind === 'chosen') await store.claim({ sandbox: 'app-1', ip: d.ip, mac: null, at: new Date() });
 */
import { BridgewardError } from '../errors.js';
import { broadcastOf, formatCidr, formatIp, parseIp, type Subnet } from '../net/ipv4.js';
import type { Lease, StoreSnapshot } from '../store/types.js';

/** The address pool: a subnet, its gateway and the cool-down after a release. */
export interface Pool {
  /** The sandbox subnet. */
  readonly subnet: Subnet;
  /** Gateway address (never handed out). */
  readonly gateway: string;
  /** Milliseconds a released address cools down. */
  readonly cooldownMs: number;
}

/** What the allocator needs to decide. */
export interface AllocationInput {
  /** The pool. */
  readonly pool: Pool;
  /** The store's state. */
  readonly snapshot: StoreSnapshot;
  /** Addresses some observer currently sees live on the bridge. */
  readonly live: ReadonlySet<string>;
  /** Addresses to skip this time (e.g. a pre-handout check found them in use). */
  readonly skip?: ReadonlySet<string>;
  /** The sandbox asking. */
  readonly sandbox: string;
  /** Current time, ms since the epoch. */
  readonly now: number;
}

/** How the pool's host addresses are used (gateway excluded). */
export interface PoolCounts {
  /** Host addresses in the pool, gateway excluded. */
  readonly total: number;
  /** Held by an active lease. */
  readonly active: number;
  /** Quarantined (and not leased). */
  readonly quarantined: number;
  /** Released recently and still cooling (not leased, not quarantined). */
  readonly cooling: number;
  /** Seen live on the wire without a lease (and not quarantined). */
  readonly liveUnleased: number;
  /** Free to hand out right away. */
  readonly free: number;
}

/** The allocator's answer. */
export type AllocationDecision =
  /** The sandbox already holds this lease. */
  | { readonly kind: 'existing'; readonly lease: Lease }
  /** Claim this address; `cooling` is true when only cooling addresses were left. */
  | { readonly kind: 'chosen'; readonly ip: string; readonly cooling: boolean }
  /** Nothing can be handed out. */
  | { readonly kind: 'exhausted'; readonly counts: PoolCounts };

/**
 * Chooses the address for `input.sandbox`.
 *
 * @example
 * chooseAddress({ pool, snapshot: { leases: [], cooling: [], quarantine: [], cursor: null }, live: new Set(), sandbox: 'a', now: 0 });
 * // { kind: 'chosen', ip: '10.8.64.2', cooling: false } for 10.8.64.0/24 with gateway .1
 */
export function chooseAddress(input: AllocationInput): AllocationDecision {
  const mine = input.snapshot.leases.find((l) => l.sandbox === input.sandbox);
  if (mine) return { kind: 'existing', lease: mine };
  const { first, last } = hostRange(input.pool.subnet);
  const blocked = blockedAddresses(input);
  const cooling = coolingAddresses(input);
  const size = last - first + 1;
  const start = startAfter(input.snapshot.cursor, first, last);
  for (let i = 0; i < size; i++) {
    const n = first + ((start - first + i) % size);
    const ip = formatIp(n);
    if (!blocked.has(ip) && !cooling.has(ip)) return { kind: 'chosen', ip, cooling: false };
  }
  // The cooling address released longest ago (lowest address on a tie): one pass, no sort.
  let oldest: { ip: string; n: number; released: number } | null = null;
  for (const [ip, released] of cooling) {
    if (blocked.has(ip)) continue;
    if (oldest !== null && released > oldest.released) continue;
    const n = parseIp(ip);
    if (oldest === null || released < oldest.released || n < oldest.n) oldest = { ip, n, released };
  }
  if (oldest) return { kind: 'chosen', ip: oldest.ip, cooling: true };
  return { kind: 'exhausted', counts: countPool(input) };
}

/**
 * Counts how the pool is used (for metrics and the exhausted error). Each address counts once,
 * in the first matching state of: active, quarantined, cooling, live-unleased, free.
 */
export function countPool(input: Omit<AllocationInput, 'sandbox' | 'skip'>): PoolCounts {
  const { first, last } = hostRange(input.pool.subnet);
  const gateway = parseIp(input.pool.gateway);
  const inPool = (ip: string) => {
    const n = parseIp(ip);
    return n >= first && n <= last && n !== gateway;
  };
  const active = new Set(input.snapshot.leases.map((l) => l.ip).filter(inPool));
  const quarantined = new Set(
    activeQuarantine(input).filter((ip) => inPool(ip) && !active.has(ip)),
  );
  const cooling = [...coolingAddresses(input).keys()].filter(
    (ip) => inPool(ip) && !active.has(ip) && !quarantined.has(ip),
  );
  const coolingSet = new Set(cooling);
  const liveUnleased = [...input.live].filter(
    (ip) => inPool(ip) && !active.has(ip) && !quarantined.has(ip) && !coolingSet.has(ip),
  );
  const total = last - first + 1 - (gateway >= first && gateway <= last ? 1 : 0);
  const used = active.size + quarantined.size + cooling.length + liveUnleased.length;
  return {
    total,
    active: active.size,
    quarantined: quarantined.size,
    cooling: cooling.length,
    liveUnleased: liveUnleased.length,
    free: total - used,
  };
}

/**
 * The POOL_EXHAUSTED error for a pool, saying how many addresses are held and why.
 *
 * @example
 * throw exhaustedError(subnet, counts); // "no free address in 10.8.64.0/27: 25 active, 3 quarantined, 1 cooling, 0 live without a lease"
 */
export function exhaustedError(subnet: Subnet, counts: PoolCounts): BridgewardError {
  return new BridgewardError(
    'POOL_EXHAUSTED',
    `no free address in ${formatCidr(subnet)}: ${counts.active} active, ${counts.quarantined} quarantined, ` +
      `${counts.cooling} cooling, ${counts.liveUnleased} live without a lease`,
    { ...counts },
  );
}

/** First and last host address (network and broadcast excluded) as numbers. */
function hostRange(subnet: Subnet): { first: number; last: number } {
  return { first: subnet.network + 1, last: broadcastOf(subnet) - 1 };
}

/** Where the round-robin scan starts: just after the cursor, or at the first host. */
function startAfter(cursor: string | null, first: number, last: number): number {
  if (cursor === null) return first;
  let n: number;
  try {
    n = parseIp(cursor);
  } catch {
    return first;
  }
  return n >= first && n < last ? n + 1 : first;
}

/** Addresses that may never be handed out right now. */
function blockedAddresses(input: AllocationInput): Set<string> {
  return new Set([
    input.pool.gateway,
    ...input.snapshot.leases.map((l) => l.ip),
    ...activeQuarantine(input),
    ...input.live,
    ...(input.skip ?? []),
  ]);
}

/** Quarantined addresses whose quarantine has not run out at `now`. */
function activeQuarantine(input: Pick<AllocationInput, 'snapshot' | 'now'>): string[] {
  return input.snapshot.quarantine
    .filter((q) => q.until === null || Date.parse(q.until) > input.now)
    .map((q) => q.ip);
}

/** Addresses still cooling at `now`, with their release time. */
function coolingAddresses(
  input: Pick<AllocationInput, 'snapshot' | 'now' | 'pool'>,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of input.snapshot.cooling) {
    const released = Date.parse(c.releasedAt);
    if (input.now - released < input.pool.cooldownMs) out.set(c.ip, released);
  }
  return out;
}
