/**
 * The bridge guard's pure core: which bindings the kernel should hold for the leases in the
 * store (`desiredGuard`), and the ordered map operations that take what it holds there
 * (`planGuard`). No I/O.
 *
 * - A lease bound to a current port of the bridge, with a MAC, is that port's binding: the port
 *   may send as (MAC, leased IPv4) and as nothing else.
 * - Every other lease awaits its port (pending): an unbound port's first IPv4 or ARP frame from
 *   the address, from the lease's MAC (any MAC when the lease names none), or its first other
 *   frame from the lease's MAC, claims it in the kernel, which then holds a *learned* binding for
 *   that port until the agent has bound the lease in the store. A learned binding that fits a lease still pending is kept; anything else
 *   the store does not grant is taken away.
 * - Order: every revocation (pending leases, port bindings, claims) before any grant, so that no
 *   address is ever granted to two ports at once, not even between two syscalls; a port whose
 *   address changes loses the old one first.
 * - With a shared store (etcd) only this node's leases count (`node`): another runner's sandbox
 *   is never on this bridge.
 *
 * @example
 * const desired = desiredGuard(snapshot.leases, new Set(bridge.ports().keys()), null);
 * const plan = planGuard(maps.state(), desired);
 * for (const ip of plan.deletePending) maps.deletePending(ip); // ... in the plan's order
 */
import type { Lease } from '../store/types.js';
import type { KernelPortBinding, PortBinding } from './guard-records.js';

/** The parts of a lease the guard uses. */
export type GuardLease = Pick<Lease, 'sandbox' | 'ip' | 'mac' | 'ifindex' | 'node'>;

/** A port's binding with the sandbox whose lease it is. */
export interface DesiredBinding extends PortBinding {
  /** The lease's sandbox. */
  readonly sandbox: string;
}

/** A lease awaiting its port. */
export interface PendingLease {
  /** The lease's MAC, or null when any MAC may claim it. */
  readonly mac: string | null;
  /** The lease's sandbox. */
  readonly sandbox: string;
}

/** What the kernel should hold. */
export interface DesiredGuard {
  /** ifindex -> the binding of the lease bound to that current port. */
  readonly ports: ReadonlyMap<number, DesiredBinding>;
  /** Leased ip -> the lease awaiting its port. */
  readonly pending: ReadonlyMap<string, PendingLease>;
  /** The current ports of the bridge. */
  readonly current: ReadonlySet<number>;
}

/** What the kernel holds (or is known to hold). */
export interface GuardState {
  /** ifindex -> binding (written by the agent, or learned by the program). */
  readonly ports: ReadonlyMap<number, KernelPortBinding>;
  /** Leased ip -> its MAC (null: any) while it awaits a port. */
  readonly pending: ReadonlyMap<string, string | null>;
  /** MAC -> the address of the pending lease that names it. */
  readonly pendingMacs: ReadonlyMap<string, string>;
  /** Leased ip -> the port that claimed it. */
  readonly claims: ReadonlyMap<string, number>;
}

/** The map operations that take the kernel from one state to the desired one, in order. */
export interface GuardPlan {
  /** 1. Leases that no longer await a port (released, or bound in the store). */
  readonly deletePending: readonly string[];
  /** 1b. MACs that no longer claim a pending lease (or claim another one now). */
  readonly deletePendingMacs: readonly string[];
  /** 2. Port bindings taken away (lease gone, port gone, or the port's address changes). */
  readonly deletePorts: readonly number[];
  /** 3. Claims that no longer decide anything (and stale ones before a lease is pending anew). */
  readonly deleteClaims: readonly string[];
  /** 4. Port bindings granted or changed in place (same address). */
  readonly putPorts: readonly (readonly [number, PortBinding])[];
  /** 5. Leases newly awaiting a port, or whose MAC changed. */
  readonly putPending: readonly (readonly [string, string | null])[];
  /** 6. MACs of pending leases, with their address. */
  readonly putPendingMacs: readonly (readonly [string, string])[];
}

/** Nothing held. */
export const EMPTY_GUARD_STATE: GuardState = {
  ports: new Map(),
  pending: new Map(),
  pendingMacs: new Map(),
  claims: new Map(),
};

/**
 * The bindings the kernel should hold for `leases`, given the bridge's current ports.
 *
 * @example
 * desiredGuard([{ sandbox: 'a', ip: '10.8.64.2', mac: '02:00:00:00:00:0a', ifindex: 7, node: null }], new Set([7]), null)
 *   .ports.get(7); // { mac: '02:00:00:00:00:0a', ip: '10.8.64.2', sandbox: 'a' }
 */
export function desiredGuard(
  leases: readonly GuardLease[],
  current: ReadonlySet<number>,
  node: string | null,
): DesiredGuard {
  const ports = new Map<number, DesiredBinding>();
  const pending = new Map<string, PendingLease>();
  for (const l of leases) {
    if (node !== null && l.node != null && l.node !== node) continue;
    if (l.mac !== null && l.ifindex !== null && current.has(l.ifindex) && !ports.has(l.ifindex)) {
      ports.set(l.ifindex, { mac: l.mac, ip: l.ip, sandbox: l.sandbox });
    } else {
      pending.set(l.ip, { mac: l.mac, sandbox: l.sandbox });
    }
  }
  return { ports, pending, current };
}

/**
 * The ordered operations from `state` to `desired` (apply them in the fields' order).
 *
 * @example
 * planGuard(EMPTY_GUARD_STATE, desired).putPorts; // [[7, { mac: '02:00:00:00:00:0a', ip: '10.8.64.2' }]]
 */
export function planGuard(state: GuardState, desired: DesiredGuard): GuardPlan {
  const deletePending: string[] = [];
  const putPending: [string, string | null][] = [];
  for (const [ip, mac] of state.pending) {
    const want = desired.pending.get(ip);
    if (!want) deletePending.push(ip);
    else if (want.mac !== mac) putPending.push([ip, want.mac]);
  }
  const kept = keptLearned(state, desired);
  const deleteClaims = [...state.claims].filter(([ip, p]) => kept.get(p) !== ip).map(([ip]) => ip);
  for (const [ip, want] of desired.pending) {
    if (state.pending.has(ip)) continue;
    putPending.push([ip, want.mac]);
    if (!state.claims.has(ip)) deleteClaims.push(ip); // a claim the agent never saw must not decide it
  }

  const deletePorts: number[] = [];
  const putPorts: [number, PortBinding][] = [];
  for (const [ifindex, held] of state.ports) {
    const want = desired.ports.get(ifindex);
    if (!want) {
      if (!kept.has(ifindex)) deletePorts.push(ifindex);
      continue;
    }
    if (want.ip !== held.ip) deletePorts.push(ifindex);
    if (want.ip !== held.ip || want.mac !== held.mac || held.learned) {
      putPorts.push([ifindex, { mac: want.mac, ip: want.ip }]);
    }
  }
  for (const [ifindex, want] of desired.ports) {
    if (!state.ports.has(ifindex)) putPorts.push([ifindex, { mac: want.mac, ip: want.ip }]);
  }
  const macs = pendingMacs(desired);
  const deletePendingMacs = [...state.pendingMacs]
    .filter(([mac, ip]) => macs.get(mac) !== ip)
    .map(([mac]) => mac);
  const putPendingMacs = [...macs].filter(([mac, ip]) => state.pendingMacs.get(mac) !== ip);
  return {
    deletePending,
    deletePendingMacs,
    deletePorts,
    deleteClaims,
    putPorts,
    putPending,
    putPendingMacs,
  };
}

/** MAC -> address of every pending lease that names a MAC (the first such lease per MAC). */
function pendingMacs(desired: DesiredGuard): Map<string, string> {
  const out = new Map<string, string>();
  for (const [ip, l] of desired.pending) if (l.mac !== null && !out.has(l.mac)) out.set(l.mac, ip);
  return out;
}

/**
 * Learned bindings to keep (ifindex -> address): on a current port the store binds to nothing,
 * for a lease still pending whose MAC fits, and claimed by that same port.
 */
function keptLearned(state: GuardState, desired: DesiredGuard): Map<number, string> {
  const kept = new Map<number, string>();
  for (const [ifindex, held] of state.ports) {
    const lease = desired.pending.get(held.ip);
    if (
      held.learned &&
      lease !== undefined &&
      (lease.mac === null || lease.mac === held.mac) &&
      desired.current.has(ifindex) &&
      !desired.ports.has(ifindex) &&
      state.claims.get(held.ip) === ifindex
    ) {
      kept.set(ifindex, held.ip);
    }
  }
  return kept;
}

/** True when the plan changes nothing. @example isEmptyPlan(planGuard(s, d)) */
export function isEmptyPlan(p: GuardPlan): boolean {
  return (
    p.deletePending.length + p.deletePendingMacs.length + p.deletePorts.length === 0 &&
    p.deleteClaims.length + p.putPorts.length + p.putPending.length === 0 &&
    p.putPendingMacs.length === 0
  );
}

/**
 * The state after `plan` was applied to `state`.
 *
 * @example applyGuardPlan(EMPTY_GUARD_STATE, planGuard(EMPTY_GUARD_STATE, d)) // what d describes
 */
export function applyGuardPlan(state: GuardState, plan: GuardPlan): GuardState {
  const ports = new Map(state.ports);
  const pending = new Map(state.pending);
  const pendingMacs = new Map(state.pendingMacs);
  const claims = new Map(state.claims);
  for (const ip of plan.deletePending) pending.delete(ip);
  for (const mac of plan.deletePendingMacs) pendingMacs.delete(mac);
  for (const ifindex of plan.deletePorts) ports.delete(ifindex);
  for (const ip of plan.deleteClaims) claims.delete(ip);
  for (const [ifindex, b] of plan.putPorts) ports.set(ifindex, { ...b, learned: false });
  for (const [ip, mac] of plan.putPending) pending.set(ip, mac);
  for (const [mac, ip] of plan.putPendingMacs) pendingMacs.set(mac, ip);
  return { ports, pending, pendingMacs, claims };
}

/**
 * The state after the program reported that port `ifindex` claimed the pending lease on
 * `b.ip` (a learn event): a learned binding and the claim.
 *
 * @example withLearned(state, 9, { mac: '02:00:00:00:00:0b', ip: '10.8.64.3' }).claims.get('10.8.64.3') // 9
 */
export function withLearned(state: GuardState, ifindex: number, b: PortBinding): GuardState {
  if (state.ports.has(ifindex)) return state; // bound meanwhile: the agent's binding wins
  const ports = new Map(state.ports).set(ifindex, { ...b, learned: true });
  const claims = new Map(state.claims).set(b.ip, ifindex);
  return { ...state, ports, claims };
}
