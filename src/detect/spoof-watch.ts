/**
 * Spoof attempts, one finding per (port, claimed address): a port sent frames outside the binding
 * the bridge guard holds for it (another sandbox's address or MAC, the gateway's address, any
 * address from a port without a lease). Pure: fed with `SpoofObservation`s (the kernel's
 * rate-limited reports of single frames) and `GuardActivity` readings (the port's counts), each
 * carrying its time, and told whose the port is and whose lease the frame collides with.
 *
 * An attempt is raised at its first report, updated when a new reason, MAC or sandbox shows up
 * or the mode changes, resolved at the first reading in which its port stayed clean (or, while
 * the port goes on with other addresses, once its own address was not reported for `quietMs`),
 * and cleared once it stayed resolved for the hold-down. It never quarantines: the address it
 * claims belongs to someone else, who did nothing wrong.
 *
 * @example
 * const spoofs = new SpoofWatch({ holdDownMs: 60_000 });
 * spoofs.observe({ source: 'bpf', ifindex: 9, port: 'vethb', at: 1000, reason: 'ip-source',
 *   dropped: true, ip: '10.8.64.2', targetIp: '10.8.64.4', mac: '02:00:00:00:00:0b', senderMac: null },
 *   [{ sandbox: 'app-b', mac: '02:00:00:00:00:0b' }], { sandbox: 'app-a', ip: '10.8.64.2' });
 * // [{ type: 'raised', finding: { kind: 'spoof-attempt', ip: '10.8.64.2', ports: ['vethb'], ... } }]
 */
import type { GuardActivity, SpoofObservation, SpoofReason } from '../observe/types.js';
import type { Finding, FindingChange, SpoofDetail } from './finding.js';
import { HeldFindings } from './held-findings.js';
import type { PortOwner } from './storm-watch.js';

/** Options of a spoof watch. */
export interface SpoofWatchOptions {
  /** How long an attempt must stay resolved before its finding clears (ms). */
  readonly holdDownMs: number;
  /** How long without a report of its address resolves an attempt on a port still spoofing (ms, default 10 000). */
  readonly quietMs?: number;
}

/** The lease a spoofed frame used: the address's holder, or the holder of the MAC it sent from. */
export type Collision = SpoofDetail['collidesWith'];

interface Attempt {
  readonly ifindex: number;
  readonly ip: string | null;
  port: string;
  readonly firstSeen: number;
  lastSeen: number;
  resolvedAt: number | null;
  readonly macs: Set<string>;
  readonly reasons: Set<SpoofReason>;
  readonly sandboxes: Set<string>;
  collidesWith: Collision;
  mode: SpoofDetail['mode'];
  reports: number;
  droppedPerSecond: number;
  wouldDropPerSecond: number;
  droppedTotal: number;
  wouldDropTotal: number;
}

/** Most attempts remembered at once, and per port (a port spoofing every address of a /16). */
const MAX_ATTEMPTS = 4096;
const MAX_PER_PORT = 16;
/** Most MACs kept as evidence in one finding. */
const MAX_MACS = 32;

/** The spoof-attempt state machine. */
export class SpoofWatch {
  readonly #quietMs: number;
  /** `${ifindex} ${ip}` -> attempt. */
  readonly #attempts: HeldFindings<string, Attempt>;

  /** A watch with no attempts. */
  constructor(opts: SpoofWatchOptions) {
    this.#quietMs = opts.quietMs ?? 10_000;
    this.#attempts = new HeldFindings(opts.holdDownMs, (a, clearedAt) =>
      this.#toFinding(a, clearedAt),
    );
  }

  /**
   * Feeds one report; `owners` are the sandboxes whose lease is bound to the port, `collides`
   * the lease the frame used. Returns the finding raised or updated by it.
   */
  observe(o: SpoofObservation, owners: readonly PortOwner[], collides: Collision): FindingChange[] {
    const key = `${o.ifindex} ${o.ip ?? '-'}`;
    let a = this.#attempts.get(key);
    let type: FindingChange['type'] = 'updated';
    if (!a) {
      if (this.#attempts.size >= MAX_ATTEMPTS || this.#onPort(o.ifindex) >= MAX_PER_PORT) return [];
      a = {
        ifindex: o.ifindex,
        ip: o.ip,
        port: o.port,
        firstSeen: o.at,
        lastSeen: o.at,
        resolvedAt: null,
        macs: new Set(),
        reasons: new Set(),
        sandboxes: new Set(),
        collidesWith: null,
        mode: o.dropped ? 'enforce' : 'monitor',
        reports: 0,
        droppedPerSecond: 0,
        wouldDropPerSecond: 0,
        droppedTotal: 0,
        wouldDropTotal: 0,
      };
      this.#attempts.set(key, a);
      type = 'raised';
    }
    const before = a.macs.size + a.reasons.size + a.sandboxes.size;
    const mode = o.dropped ? 'enforce' : 'monitor';
    const grew = mode !== a.mode || (collides !== null && a.collidesWith === null);
    a.mode = mode;
    a.port = o.port;
    a.lastSeen = Math.max(a.lastSeen, o.at);
    a.resolvedAt = null;
    a.reports++;
    a.reasons.add(o.reason);
    for (const mac of [o.mac, o.senderMac]) if (mac && a.macs.size < MAX_MACS) a.macs.add(mac);
    for (const s of owners) a.sandboxes.add(s.sandbox);
    if (collides) {
      a.collidesWith = collides;
      a.sandboxes.add(collides.sandbox);
    }
    const changed = grew || a.macs.size + a.reasons.size + a.sandboxes.size > before;
    return type === 'raised' || changed ? [{ type, finding: this.#toFinding(a, null) }] : [];
  }

  /** Feeds one reading of a port's counts: rates and totals; a clean port resolves its attempts. */
  activity(g: GuardActivity): void {
    const perSecond = (n: number) => (g.intervalMs > 0 ? Math.round((n * 1000) / g.intervalMs) : 0);
    const clean = g.dropped === 0 && g.wouldDrop === 0;
    for (const a of this.#attempts.values()) {
      if (a.ifindex !== g.ifindex) continue;
      a.droppedPerSecond = perSecond(g.dropped);
      a.wouldDropPerSecond = perSecond(g.wouldDrop);
      if (a.resolvedAt === null) {
        a.droppedTotal += g.dropped;
        a.wouldDropTotal += g.wouldDrop;
      }
      if (clean || g.at - a.lastSeen >= this.#quietMs) a.resolvedAt ??= g.at;
    }
  }

  /** A port left the bridge: its attempts are over from `at`. */
  portGone(ifindex: number, at: number): void {
    for (const a of this.#attempts.values()) if (a.ifindex === ifindex) a.resolvedAt ??= at;
  }

  /** Clears the attempts that stayed resolved for the hold-down by `now`. */
  tick(now: number): FindingChange[] {
    return this.#attempts.tick(now);
  }

  /** True while no attempt is tracked. */
  idle(): boolean {
    return this.#attempts.idle();
  }

  /** Active attempts (resolving ones included), oldest first. */
  active(): Finding[] {
    return this.#attempts.active();
  }

  #onPort(ifindex: number): number {
    let n = 0;
    for (const a of this.#attempts.values()) if (a.ifindex === ifindex) n++;
    return n;
  }

  #toFinding(a: Attempt, clearedAt: number | null): Finding {
    return {
      id: `spoof-attempt/if${a.ifindex}/${a.ip ?? '-'}/${a.firstSeen}`,
      kind: 'spoof-attempt',
      ip: a.ip,
      macs: [...a.macs].sort(),
      ports: [a.port],
      ifindexes: [a.ifindex],
      sandboxes: [...a.sandboxes].sort(),
      sources: ['bpf'],
      severity: a.mode === 'enforce' ? 'warn' : 'error',
      state: clearedAt === null ? 'active' : 'cleared',
      firstSeen: new Date(a.firstSeen).toISOString(),
      lastSeen: new Date(a.lastSeen).toISOString(),
      resolvedAt: a.resolvedAt === null ? null : new Date(a.resolvedAt).toISOString(),
      clearedAt: clearedAt === null ? null : new Date(clearedAt).toISOString(),
      quarantine: false,
      rates: null,
      spoof: {
        mode: a.mode,
        reasons: [...a.reasons].sort(),
        collidesWith: a.collidesWith,
        reports: a.reports,
        droppedPerSecond: a.droppedPerSecond,
        wouldDropPerSecond: a.wouldDropPerSecond,
        droppedTotal: a.droppedTotal,
        wouldDropTotal: a.wouldDropTotal,
      },
    };
  }
}
