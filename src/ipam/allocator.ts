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
 * The pool is indexed once per batch of requests (`viewPool`) and asked once per request
 * (`chooseAddress`).
 *
 * @example
 * const d = chooseAddress(viewPool({ pool, snapshot, live: new Set(), now: Date.now() }), 'app-1');
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

/** What the allocator needs to see the pool at one moment. */
export interface PoolInput {
  /** The pool. */
  readonly pool: Pool;
  /** The store's state. */
  readonly snapshot: StoreSnapshot;
  /** Addresses some observer currently sees live on the bridge. */
  readonly live: ReadonlySet<string>;
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
 * The pool as seen at one moment, indexed for choosing: built once per batch of requests by
 * `viewPool`, then asked once per request by `chooseAddress`.
 */
export interface PoolView {
  /** What the view was built from. */
  readonly input: PoolInput;
  /** Active leases by sandbox. */
  readonly leaseBySandbox: ReadonlyMap<string, Lease>;
  /** First host address (after the network address). */
  readonly first: number;
  /** Last host address (before the broadcast address). */
  readonly last: number;
  /** Where the round-robin scan starts: just after the cursor. */
  readonly start: number;
  /** Addresses that may never be handed out now: gateway, leased, quarantined, live. */
  readonly blocked: ReadonlySet<number>;
  /** Addresses still cooling down (not blocked) with their release time, in no particular order. */
  readonly cooling: readonly CoolingCandidate[];
  /** The same cooling addresses, for lookups during the scan. */
  readonly coolingSet: ReadonlySet<number>;
}

/** An address still cooling down, as the allocator weighs it. */
export interface CoolingCandidate {
  /** The address. */
  readonly ip: string;
  /** The address as a number. */
  readonly n: number;
  /** When it was released (ms since the epoch). */
  readonly released: number;
}

/**
 * Indexes the pool for `chooseAddress`.
 *
 * @example
 * const view = viewPool({ pool, snapshot, live: new Set(), now: Date.now() });
 */
export function viewPool(input: PoolInput): PoolView {
  const { first, last } = hostRange(input.pool.subnet);
  const blocked = new Set<number>([parseIp(input.pool.gateway)]);
  for (const l of input.snapshot.leases) blocked.add(parseIp(l.ip));
  for (const ip of activeQuarantine(input)) blocked.add(parseIp(ip));
  for (const ip of input.live) blocked.add(parseIp(ip));
  const cooling: CoolingCandidate[] = [];
  for (const [ip, released] of coolingAddresses(input)) {
    const n = parseIp(ip);
    if (!blocked.has(n)) cooling.push({ ip, n, released });
  }
  return {
    input,
    leaseBySandbox: new Map(input.snapshot.leases.map((l) => [l.sandbox, l])),
    first,
    last,
    start: startAfter(input.snapshot.cursor, first, last),
    blocked,
    cooling,
    coolingSet: new Set(cooling.map((c) => c.n)),
  };
}

/**
 * Chooses the address for `sandbox`, never one in `skip` (e.g. addresses a pre-handout check
 * found in use, or already chosen for other sandboxes of the same batch).
 *
 * @example
 * chooseAddress(viewPool({ pool, snapshot: { leases: [], cooling: [], quarantine: [], cursor: null }, live: new Set(), now: 0 }), 'a');
 * // { kind: 'chosen', ip: '10.8.64.2', cooling: false } for 10.8.64.0/24 with gateway .1
 */
export function chooseAddress(
  view: PoolView,
  sandbox: string,
  skip: ReadonlySet<string> = new Set(),
): AllocationDecision {
  const mine = view.leaseBySandbox.get(sandbox);
  if (mine) return { kind: 'existing', lease: mine };
  const size = view.last - view.first + 1;
  for (let i = 0; i < size; i++) {
    const n = view.first + ((view.start - view.first + i) % size);
    if (view.blocked.has(n) || view.coolingSet.has(n)) continue;
    const ip = formatIp(n);
    if (!skip.has(ip)) return { kind: 'chosen', ip, cooling: false };
  }
  const oldest = oldestCooling(view.cooling, skip);
  if (oldest) return { kind: 'chosen', ip: oldest.ip, cooling: true };
  return { kind: 'exhausted', counts: countPool(view.input) };
}

/**
 * The next `k` addresses the allocator would hand out to new sandboxes, in its order: free
 * addresses round-robin from the cursor, then cooling ones, released longest ago first. What
 * the background prober keeps probed.
 *
 * @example
 * nextCandidates(view, 2); // ['10.8.64.2', '10.8.64.3'] in an empty 10.8.64.0/24
 */
export function nextCandidates(view: PoolView, k: number): string[] {
  const out: string[] = [];
  const size = view.last - view.first + 1;
  for (let i = 0; i < size && out.length < k; i++) {
    const n = view.first + ((view.start - view.first + i) % size);
    if (!view.blocked.has(n) && !view.coolingSet.has(n)) out.push(formatIp(n));
  }
  if (out.length < k) {
    const oldestFirst = [...view.cooling].sort((a, b) => a.released - b.released || a.n - b.n);
    for (const c of oldestFirst.slice(0, k - out.length)) out.push(c.ip);
  }
  return out;
}

/**
 * Counts how the pool is used (for metrics and the exhausted error). Each address counts once,
 * in the first matching state of: active, quarantined, cooling, live-unleased, free.
 */
export function countPool(input: PoolInput): PoolCounts {
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

/**
 * The cooling address released longest ago (the lowest on a tie) not in `skip`. A scan, not a
 * sort: a batch asks only a few times, and sorting every batch's pool cost more.
 */
function oldestCooling(
  cooling: readonly CoolingCandidate[],
  skip: ReadonlySet<string>,
): CoolingCandidate | null {
  let best: CoolingCandidate | null = null;
  for (const c of cooling) {
    if (skip.has(c.ip)) continue;
    if (
      best === null ||
      c.released < best.released ||
      (c.released === best.released && c.n < best.n)
    ) {
      best = c;
    }
  }
  return best;
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

/** Quarantined addresses whose quarantine has not run out at `now`. */
function activeQuarantine(input: Pick<PoolInput, 'snapshot' | 'now'>): string[] {
  return input.snapshot.quarantine
    .filter((q) => q.until === null || Date.parse(q.until) > input.now)
    .map((q) => q.ip);
}

/** Addresses still cooling at `now`, with their release time. */
function coolingAddresses(
  input: Pick<PoolInput, 'snapshot' | 'now' | 'pool'>,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of input.snapshot.cooling) {
    const released = Date.parse(c.releasedAt);
    if (input.now - released < input.pool.cooldownMs) out.set(c.ip, released);
  }
  return out;
}
