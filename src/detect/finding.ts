/**
 * Findings: conclusions the conflict detector draws from observations, each with the evidence
 * that supports it. Observations (`src/observe/types.ts`) are facts; findings are kept apart.
 *
 * @example
 * const f: Finding = {
 *   id: 'duplicate-ip/10.8.64.2/1767225600000', kind: 'duplicate-ip', ip: '10.8.64.2',
 *   macs: ['02:00:00:00:00:02', '02:00:00:00:00:03'], ports: ['veth2', 'veth3'], ifindexes: [7, 9],
 *   sandboxes: ['app-1'], sources: ['bpf'], severity: 'error', state: 'active',
 *   firstSeen: '2026-01-01T00:00:00.000Z', lastSeen: '2026-01-01T00:00:01.000Z',
 *   resolvedAt: null, clearedAt: null, quarantine: true, rates: null, spoof: null,
 * };
 */
import type { ObservationSource, SpoofReason } from '../observe/types.js';

/** The kinds of conflict on one address. */
export const ADDRESS_FINDING_KINDS = [
  'duplicate-ip',
  'lease-mismatch',
  'unleased-claim',
  'gateway-claim',
] as const;

/**
 * Every kind of finding: the address conflicts, `arp-storm` (one port floods ARP) and
 * `spoof-attempt` (a port sent as an address or MAC its binding does not allow: the bridge guard).
 */
export const FINDING_KINDS = [...ADDRESS_FINDING_KINDS, 'arp-storm', 'spoof-attempt'] as const;

/** One kind of finding. */
export type FindingKind = (typeof FINDING_KINDS)[number];

/** An ARP storm's rates on its port, per second. */
export interface StormRates {
  /** ARP frames in the last counter interval. */
  readonly arpPerSecond: number;
  /** New or changed bindings the kernel recorded in the last interval. */
  readonly bindingsPerSecond: number;
  /** New or changed bindings over the port's budget (counted, not recorded) in the last interval. */
  readonly limitedPerSecond: number;
  /** The highest ARP rate of this storm. */
  readonly peakArpPerSecond: number;
  /** The highest over-budget rate of this storm. */
  readonly peakLimitedPerSecond: number;
  /** Bindings over the budget during this storm, in all. */
  readonly limitedTotal: number;
}

/** A spoof attempt's evidence: what the port sent, whose lease it collides with, what happened. */
export interface SpoofDetail {
  /** enforce: the frames were dropped; monitor: they passed (what enforce would drop). */
  readonly mode: 'monitor' | 'enforce';
  /** Why its frames were outside the port's binding, sorted. */
  readonly reasons: readonly SpoofReason[];
  /** The lease whose address (or MAC) the port used, when it is not the port's own. */
  readonly collidesWith: { readonly sandbox: string; readonly ip: string } | null;
  /** Spoof events the kernel reported for this attempt (rate-limited per port). */
  readonly reports: number;
  /** Frames the port had dropped, per second, at the last counter reading. */
  readonly droppedPerSecond: number;
  /** Frames enforce would have dropped, per second, at the last counter reading. */
  readonly wouldDropPerSecond: number;
  /** Frames of the port dropped while this finding was active. */
  readonly droppedTotal: number;
  /** Frames of the port enforce would have dropped while this finding was active. */
  readonly wouldDropTotal: number;
}

/** Kinds that quarantine the address in the lease store while active. */
export const QUARANTINING_KINDS: ReadonlySet<FindingKind> = new Set([
  'duplicate-ip',
  'unleased-claim',
  'gateway-claim',
]);

/** A conflict on one address, or an ARP storm on one port, with its evidence. */
export interface Finding {
  /** Unique id: kind, address (`if<N>` for a storm's port) and the first-seen time in ms. */
  readonly id: string;
  /** What kind of finding. */
  readonly kind: FindingKind;
  /** The contested address; null for an `arp-storm` (a port, not an address). */
  readonly ip: string | null;
  /** Every MAC involved (lowercase, colon-separated), sorted. */
  readonly macs: readonly string[];
  /** Names of the bridge ports involved (`if<N>` when the name is unknown), sorted. */
  readonly ports: readonly string[];
  /** ifindexes of those ports, sorted. */
  readonly ifindexes: readonly number[];
  /** Sandboxes whose leases match the MACs/ports involved or hold the address, sorted. */
  readonly sandboxes: readonly string[];
  /** Observers whose observations support the finding. */
  readonly sources: readonly ObservationSource[];
  /** `error` for conflicts that break traffic, `warn` for bookkeeping mismatches. */
  readonly severity: 'error' | 'warn';
  /** `active` until the hold-down after the conflict is gone has passed. */
  readonly state: 'active' | 'cleared';
  /** ISO time the conflict was first seen. */
  readonly firstSeen: string;
  /** ISO time of the last supporting observation. */
  readonly lastSeen: string;
  /** ISO time the conflict was last seen gone (hold-down running), or null while it holds. */
  readonly resolvedAt: string | null;
  /** ISO time the finding cleared, or null while active. */
  readonly clearedAt: string | null;
  /** Whether this kind quarantines the address while active. */
  readonly quarantine: boolean;
  /** An `arp-storm`'s rates; null for the other kinds. */
  readonly rates: StormRates | null;
  /** A `spoof-attempt`'s evidence; null for the other kinds. */
  readonly spoof: SpoofDetail | null;
}

/** A change to the set of findings, as published to logs, metrics, webhook and event stream. */
export interface FindingChange {
  /** `raised`: new; `updated`: evidence changed; `cleared`: hold-down passed. */
  readonly type: 'raised' | 'updated' | 'cleared';
  /** The finding after the change. */
  readonly finding: Finding;
}

/** A one-line human summary of a finding. @example describeFinding(f) // 'duplicate-ip 10.8.64.2: ...' */
export function describeFinding(f: Finding): string {
  const who = f.macs.join(', ');
  const where = f.ports.length ? ` on ${f.ports.join(', ')}` : '';
  const sandboxes = f.sandboxes.length ? ` (sandboxes ${f.sandboxes.join(', ')})` : '';
  switch (f.kind) {
    case 'duplicate-ip':
      return `duplicate-ip ${f.ip}: claimed by ${who}${where}${sandboxes}`;
    case 'lease-mismatch':
      return `lease-mismatch ${f.ip}: claimed by ${who}${where}, not by its lease${sandboxes}`;
    case 'unleased-claim':
      return `unleased-claim ${f.ip}: used without a lease by ${who}${where}${sandboxes}`;
    case 'gateway-claim':
      return `gateway-claim ${f.ip}: the gateway address claimed by ${who}${where}${sandboxes}`;
    case 'arp-storm': {
      const r = f.rates;
      const rates = r
        ? `: ${r.arpPerSecond} ARP/s (peak ${r.peakArpPerSecond}), ${r.limitedPerSecond} new bindings/s over budget (${r.limitedTotal} in all)`
        : '';
      return `arp-storm${where}${sandboxes}${rates}`;
    }
    case 'spoof-attempt': {
      const d = f.spoof;
      const as = f.ip ? ` as ${f.ip}` : '';
      const what = d
        ? `: ${d.reasons.join(', ')}; ${d.mode === 'enforce' ? 'dropped' : 'passed (monitor)'}`
        : '';
      const victim = d?.collidesWith
        ? `, the lease of ${d.collidesWith.sandbox} (${d.collidesWith.ip})`
        : '';
      return `spoof-attempt${where}${sandboxes}${as} from ${who}${what}${victim}`;
    }
  }
}
