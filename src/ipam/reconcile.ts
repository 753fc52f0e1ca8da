/**
 * The reconciler's pure decision: compare the store with what is live on the wire and what the
 * runtime declares, and say what to repair. No I/O.
 *
 * - reserve: an address live on the wire but free in the store (no lease, no quarantine) is
 *   quarantined as 'live-unleased' so it is never handed out while something answers on it;
 * - reap: a lease ends only when the runtime's declared set (POST /v1/sync), made after the
 *   lease was allocated, lacks its sandbox AND its address was not live for `missThreshold`
 *   consecutive counted sweeps;
 * - lift: a quarantine the reconciler or the release path set ('live-unleased',
 *   'live-after-release') is lifted after `missThreshold` consecutive counted sweeps without the
 *   address being live; others (e.g. the detector's 'duplicate-ip') stay until cleared;
 * - bind: a lease without a MAC (or port) learns it from unambiguous evidence;
 * - unbind: a lease bound to a port that is no longer on the bridge (the sandbox's veth was
 *   deleted, the runtime recreated the bridge, or the runner rebooted) loses that port binding,
 *   keeping its MAC; when the address is seen on exactly one current port with the lease's MAC,
 *   it is bound to that port instead.
 *
 * Only periodic sweeps count towards the thresholds (`count: true`); boot and event-driven
 * sweeps reserve and bind but never advance counters. With a shared store (`node` set), an
 * agent reaps only its own leases and lifts only its own quarantines: another runner's sandbox
 * is never on this agent's wire.
 *
 * @example
 * const declared = { sandboxes: new Set(['a']), at: new Date().toISOString() };
 * const plan = planReconcile({ pool, snapshot, live, ports, declared, counters, missThreshold: 3, count: true, node: null });
 * for (const r of plan.reserve) await ipam.quarantineLive(r.ip, 'live-unleased', r.evidence);
 */
import { broadcastOf, parseIp } from '../net/ipv4.js';
import type { LiveEvidence } from '../observe/types.js';
import type { StoreSnapshot } from '../store/types.js';
import type { Pool } from './allocator.js';

/** Quarantine reasons the reconciler may lift by itself. */
export const SELF_LIFTING_REASONS: readonly string[] = ['live-unleased', 'live-after-release'];

/** Consecutive counted sweeps per sandbox (lease misses) and per address (quiet quarantine). */
export interface ReconcileCounters {
  /** Sandbox -> consecutive sweeps undeclared and not live. */
  readonly misses: ReadonlyMap<string, number>;
  /** Quarantined address -> consecutive sweeps not live. */
  readonly quiet: ReadonlyMap<string, number>;
}

/** Input of one reconcile pass. */
export interface ReconcileInput {
  /** The pool. */
  readonly pool: Pool;
  /** The store's state. */
  readonly snapshot: StoreSnapshot;
  /** Addresses live on the wire, with evidence. */
  readonly live: ReadonlyMap<string, LiveEvidence>;
  /** ifindexes of the current bridge's ports (empty while the bridge is absent). */
  readonly ports: ReadonlySet<number>;
  /**
   * The runtime's last declaration, or null when it never made one (then nothing is reaped).
   * A lease allocated after it is not judged by it: the runtime could not have listed it.
   */
  readonly declared: { readonly sandboxes: ReadonlySet<string>; readonly at: string } | null;
  /** Counters from the previous pass. */
  readonly counters: ReconcileCounters;
  /** Sweeps needed before reaping or lifting. */
  readonly missThreshold: number;
  /** Whether this pass advances the counters (periodic sweeps only). */
  readonly count: boolean;
  /**
   * This agent's node name when the store is shared (etcd): only leases it allocated are reaped
   * and only quarantines it set are lifted. Null when the store is this agent's alone.
   */
  readonly node: string | null;
}

/** What to do. */
export interface ReconcilePlan {
  /** Addresses to quarantine as 'live-unleased'. */
  readonly reserve: readonly { ip: string; evidence: LiveEvidence }[];
  /** Leases to end. */
  readonly reap: readonly { sandbox: string; ip: string; sweeps: number }[];
  /** Quarantines to lift. */
  readonly lift: readonly { ip: string; reason: string; sweeps: number }[];
  /** Leases to bind to the MAC/port seen on their address. */
  readonly bind: readonly { sandbox: string; mac: string; ifindex?: number }[];
  /** Leases whose bound port left the bridge, with that port. */
  readonly unbind: readonly { sandbox: string; ifindex: number }[];
  /** Counters for the next pass. */
  readonly counters: ReconcileCounters;
}

/** Empty counters for the first pass. */
export const NO_COUNTERS: ReconcileCounters = { misses: new Map(), quiet: new Map() };

/**
 * Plans one reconcile pass.
 *
 * @example
 * planReconcile({ ...input, live: new Map([['10.8.64.2', ev]]) }).reserve; // [{ ip: '10.8.64.2', evidence: ev }]
 */
export function planReconcile(input: ReconcileInput): ReconcilePlan {
  const { snapshot, live } = input;
  const leased = new Map(snapshot.leases.map((l) => [l.ip, l]));
  const quarantined = new Map(snapshot.quarantine.map((q) => [q.ip, q]));

  const reserve = [...live.values()]
    .filter((ev) => inPool(input.pool, ev.ip) && !leased.has(ev.ip) && !quarantined.has(ev.ip))
    .map((evidence) => ({ ip: evidence.ip, evidence }));

  const misses = new Map<string, number>();
  const reap: { sandbox: string; ip: string; sweeps: number }[] = [];
  const bind: { sandbox: string; mac: string; ifindex?: number }[] = [];
  const unbind: { sandbox: string; ifindex: number }[] = [];
  for (const l of snapshot.leases) {
    const ev = live.get(l.ip);
    const mine = input.node === null || l.node === input.node;
    const gone = mine && undeclared(l, input.declared) && !ev;
    const before = input.counters.misses.get(l.sandbox) ?? 0;
    const count = gone ? before + (input.count ? 1 : 0) : 0;
    if (gone && count >= input.missThreshold)
      reap.push({ sandbox: l.sandbox, ip: l.ip, sweeps: count });
    if (count > 0) misses.set(l.sandbox, count);
    const gonePort = l.ifindex !== null && !input.ports.has(l.ifindex) ? l.ifindex : null;
    const b = ev && bindingFor(l.mac, gonePort === null ? l.ifindex : null, ev, input.ports);
    if (b) bind.push({ sandbox: l.sandbox, ...b });
    if (gonePort !== null && b?.ifindex === undefined)
      unbind.push({ sandbox: l.sandbox, ifindex: gonePort });
  }

  const quiet = new Map<string, number>();
  const lift: { ip: string; reason: string; sweeps: number }[] = [];
  for (const q of snapshot.quarantine) {
    if (!SELF_LIFTING_REASONS.includes(q.reason)) continue;
    if (input.node !== null && q.evidence.node !== input.node) continue;
    const count = live.has(q.ip)
      ? 0
      : (input.counters.quiet.get(q.ip) ?? 0) + (input.count ? 1 : 0);
    if (count >= input.missThreshold) lift.push({ ip: q.ip, reason: q.reason, sweeps: count });
    if (count > 0) quiet.set(q.ip, count);
  }
  return { reserve, reap, lift, bind, unbind, counters: { misses, quiet } };
}

/** Whether a declaration exists, predates the lease and leaves its sandbox out. */
export function undeclared(
  lease: { sandbox: string; allocatedAt: string },
  declared: ReconcileInput['declared'],
): boolean {
  return (
    declared !== null && lease.allocatedAt < declared.at && !declared.sandboxes.has(lease.sandbox)
  );
}

function inPool(pool: Pool, ip: string): boolean {
  const n = parseIp(ip);
  return n > pool.subnet.network && n < broadcastOf(pool.subnet) && ip !== pool.gateway;
}

/**
 * The MAC/port a lease should learn from evidence, when the evidence is unambiguous (one MAC,
 * and for the port one current port of the bridge).
 */
function bindingFor(
  mac: string | null,
  ifindex: number | null,
  ev: LiveEvidence,
  ports: ReadonlySet<number>,
): { mac: string; ifindex?: number } | null {
  if (ev.macs.length !== 1) return null;
  const seen = ev.macs[0] as string;
  if (mac !== null && mac !== seen) return null;
  const current = ev.ifindexes.filter((p) => ports.has(p));
  const port = current.length === 1 ? current[0] : undefined;
  if (mac === null) return port === undefined ? { mac: seen } : { mac: seen, ifindex: port };
  if (ifindex === null && port !== undefined) return { mac: seen, ifindex: port };
  return null;
}
