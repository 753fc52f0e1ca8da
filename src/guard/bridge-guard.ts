/**
 * The bridge guard's shell: keeps the guard's maps in the ARP program equal to what the lease
 * store grants (`plan.ts`), reads the program's guard events and counters, and reports them.
 * Enforcement is derived state like the node-port table: rebuilt from the store, changed in the
 * store's order, never ahead of it.
 *
 * - `start()`: sets the mode and fills the maps from the store before the program runs on any
 *   port (a restarted agent's new program takes each port over in one BPF_LINK_UPDATE, already
 *   knowing every binding: the old program enforces until that instant).
 * - `sync()`: one pass from a fresh store snapshot: the ordered plan (every revocation before any
 *   grant) applied in one synchronous stretch. Passes run one at a time; a call joins the next
 *   pass that has not started, so once `sync()` resolves, every store write made before the call
 *   is in the kernel. The IPAM awaits it before answering an allocation or a release, and the
 *   reconciler after binding or reaping. A failed pass is logged and counted; the next one
 *   starts from a full read-back of the maps.
 * - `bridgeListener`: a new bridge instance is a full rebuild; a port that leaves loses its
 *   binding at once (its lease awaits a port again) and its counters.
 * - Learn events (an unbound port's first frame claimed a lease awaiting its port) go to
 *   `onLearned` listeners, which bind the lease in the store (the reconciler); a learned binding
 *   the listeners have not made a store binding yet is reported again at every `verify()`.
 * - Spoof events become `SpoofObservation`s and the per-port counters `GuardActivity` readings
 *   (every `statsIntervalMs`) and `bridgeward_guard_dropped_total` /
 *   `bridgeward_guard_would_drop_total`.
 *
 * @example
 * const guard = await BridgeGuard.start({ mode: 'enforce', dropIpv6: false, maps, store,
 *   ports: () => bridge.ports(), node: null, log, metrics, onSpoof, onActivity });
 * bridge.listen(guard.bridgeListener);
 * guard.onLearned((l) => void reconciler.learned(l));
 * await guard.sync(); // after a store write: the kernel follows
 */
import type { BridgeListener } from '../bridge/lifecycle.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { EventReader } from '../native.js';
import { monoToEpochMs, type BindingBudget } from '../observe/arp-records.js';
import type { GuardActivity, SpoofObservation } from '../observe/types.js';
import type { LeaseStore } from '../store/types.js';
import type { GuardMaps } from './guard-maps.js';
import { ZERO_GUARD_STATS, type GuardEvent, type GuardStats } from './guard-records.js';
import {
  applyGuardPlan,
  desiredGuard,
  isEmptyPlan,
  planGuard,
  withLearned,
  type GuardPlan,
  type GuardState,
} from './plan.js';

/** What `BridgeGuard.start` needs. */
export interface BridgeGuardOptions {
  /** monitor: count and report; enforce: also drop. */
  readonly mode: 'monitor' | 'enforce';
  /** Whether IPv6 from sandboxes is a violation (`--guard-ipv6 drop`). */
  readonly dropIpv6: boolean;
  /** The guard's maps in the loaded program. */
  readonly maps: GuardMaps;
  /** The lease store (the source of truth). */
  readonly store: Pick<LeaseStore, 'snapshot' | 'revision'>;
  /** The current bridge's ports: ifindex -> name (empty while the bridge is absent). */
  readonly ports: () => ReadonlyMap<number, string>;
  /** This node's name when the store is shared (etcd): only its leases count. Null otherwise. */
  readonly node: string | null;
  /** Logger. */
  readonly log: Logger;
  /** Metrics. */
  readonly metrics: Pick<Metrics, 'guardDropped' | 'guardWouldDrop' | 'guardBindings' | 'resyncs'>;
  /** Called for every spoof event the program reported. */
  readonly onSpoof: (o: SpoofObservation) => void;
  /** Called with each port's counts when they moved (and once when they stopped). */
  readonly onActivity: (a: GuardActivity) => void;
  /** How often the per-port counters are read (ms, default 1000). */
  readonly statsIntervalMs?: number;
  /** Spoof events each port may report (default `DEFAULT_SPOOF_EVENT_BUDGET`). */
  readonly events?: BindingBudget;
}

/**
 * The default per-port budget for spoof events: 20 a second, 40 at once. The first frames of an
 * attempt are reported at once; a flood is counted, and its rate read from the counters.
 */
export const DEFAULT_SPOOF_EVENT_BUDGET: BindingBudget = { perSecond: 20, burst: 40 };

/** A lease the program bound to a port from its first frame (a learn event). */
export interface LearnedPort {
  /** The leased address the frame came from. */
  readonly ip: string;
  /** The frame's Ethernet source. */
  readonly mac: string;
  /** The port. */
  readonly ifindex: number;
  /** Its name, when the port is still on the bridge. */
  readonly ifname: string | null;
}

/** The guard as `GET /v1/status` shows it. */
export interface GuardStatus {
  /** monitor or enforce. */
  readonly mode: 'monitor' | 'enforce';
  /** What happens to IPv6 from sandboxes. */
  readonly ipv6: 'pass' | 'drop';
  /** Ports of the bridge by binding: from the store, learned from a first frame, none. */
  readonly ports: { readonly bound: number; readonly learned: number; readonly unbound: number };
  /** Leases awaiting their port. */
  readonly pendingLeases: number;
  /** Frames dropped since start. */
  readonly dropped: number;
  /** Frames enforce would have dropped since start (monitor). */
  readonly wouldDrop: number;
}

/** How long after a failed pass the next one runs (ms). */
const RETRY_MS = 1000;
/** Least time between two read-backs of the maps by the loop (ms). */
const VERIFY_EVERY_MS = 60_000;

/** Keeps the kernel's guard equal to the store's leases and reports what it sees. */
export class BridgeGuard {
  readonly #o: BridgeGuardOptions;
  readonly #learnedListeners: ((l: LearnedPort) => void)[] = [];
  /** What the kernel holds as far as the agent knows; null: read it back at the next pass. */
  #applied: GuardState | null = null;
  #tail: Promise<void> = Promise.resolve();
  #queued: Promise<void> | null = null;
  #reader: EventReader | null = null;
  #statsTimer: NodeJS.Timeout | null = null;
  #loopTimer: NodeJS.Timeout | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #baseline = new Map<number, GuardStats>();
  #baselineAt = Date.now();
  readonly #silent = new Set<number>();
  #totals = { dropped: 0, wouldDrop: 0 };
  /** The next pass reads the maps back (a rebuild was asked for). */
  #full = true;
  #closed = false;

  private constructor(opts: BridgeGuardOptions) {
    this.#o = opts;
  }

  /**
   * Configures the program, reads its events and fills its maps from the store (resolves once
   * they hold every binding).
   *
   * @throws BridgewardError KERNEL_ERROR when the maps cannot be configured or read.
   */
  static async start(opts: BridgeGuardOptions): Promise<BridgeGuard> {
    const g = new BridgeGuard(opts);
    opts.maps.configure({
      mode: opts.mode,
      dropIpv6: opts.dropIpv6,
      events: opts.events ?? DEFAULT_SPOOF_EVENT_BUDGET,
    });
    g.#reader = opts.maps.readEvents(
      (events) => g.#onEvents(events),
      () =>
        opts.log.error(
          'guard event of unexpected size (arp_observer.h and guard-records.ts differ)',
        ),
    );
    g.#baseline = opts.maps.stats();
    await g.sync();
    g.#statsTimer = setInterval(() => g.#readStats(), opts.statsIntervalMs ?? 1000);
    g.#statsTimer.unref();
    opts.log.info(
      { mode: opts.mode, ipv6: opts.dropIpv6 ? 'drop' : 'pass' },
      'bridge guard running',
    );
    return g;
  }

  /** Follows the bridge: a new instance is a full rebuild; a port that leaves loses its binding. */
  get bridgeListener(): BridgeListener {
    return {
      bridgeUp: () => void this.rebuild(),
      portUp: () => void this.sync(),
      portGone: (ifindex) => {
        this.#readStats();
        try {
          this.#o.maps.forgetPort(ifindex);
        } catch (err) {
          this.#o.log.warn({ err, ifindex }, 'cannot forget a former port of the guard');
        }
        this.#baseline.delete(ifindex);
        this.#silent.delete(ifindex);
        void this.sync();
      },
    };
  }

  /** Calls `listener` for every lease the program bound to a port from its first frame. */
  onLearned(listener: (l: LearnedPort) => void): void {
    this.#learnedListeners.push(listener);
  }

  /**
   * Brings the kernel up to date with the store. Resolves (never rejects) once a pass that
   * started after this call has run.
   */
  sync(): Promise<void> {
    if (this.#queued) return this.#queued;
    const pass = this.#tail.then(() => {
      this.#queued = null;
      return this.#pass();
    });
    this.#queued = pass;
    this.#tail = pass;
    return pass;
  }

  /** A full rebuild: the next pass reads the maps back instead of trusting what it applied. */
  rebuild(): Promise<void> {
    this.#full = true;
    return this.sync();
  }

  /**
   * Reads the maps back: reports learned bindings the store has not bound yet (again: a lost
   * event, a listener that failed), and rebuilds when anything else differs from what the
   * agent applied (someone else wrote the maps). Resolves to true when it found drift.
   */
  async verify(): Promise<boolean> {
    let drift = false;
    await this.#serial(() => {
      const applied = this.#applied;
      if (applied === null) return;
      const now = this.#o.maps.state();
      let known = applied;
      for (const [ifindex, b] of now.ports) {
        if (b.learned && !applied.ports.has(ifindex) && now.claims.get(b.ip) === ifindex) {
          known = withLearned(known, ifindex, b);
        }
      }
      drift = !sameState(known, now);
      this.#applied = drift ? null : known;
      for (const [ifindex, b] of known.ports) if (b.learned) this.#learned(ifindex, b);
    });
    if (drift) {
      this.#o.metrics.resyncs.inc({ source: 'guard' });
      this.#o.log.warn('the guard maps differ from what the agent wrote; rebuilding them');
      await this.sync();
    }
    return drift;
  }

  /**
   * Every `intervalMs` until `close()`: a `sync()` when the store's revision moved since the last
   * one (writes of other agents on a shared store, a pass that failed), and at most once every
   * `VERIFY_EVERY_MS` a `verify()`. Nothing tells the agent when another process writes the maps,
   * so the read-back is the safety net; its reads grow with the leases, hence the minute.
   */
  startLoop(intervalMs: number): void {
    let synced: string | null = null;
    let verifiedAt = Date.now();
    const tick = async () => {
      const revision = await this.#o.store.revision();
      if (revision !== synced) await this.sync();
      synced = revision;
      if (Date.now() - verifiedAt < VERIFY_EVERY_MS) return;
      verifiedAt = Date.now();
      await this.verify();
    };
    this.#loopTimer = setInterval(() => {
      tick().catch((err: unknown) => this.#o.log.warn({ err }, 'guard reconcile failed'));
    }, intervalMs);
    this.#loopTimer.unref();
  }

  /** The guard as status shows it. */
  status(): GuardStatus {
    const applied = this.#applied;
    const current = this.#o.ports();
    let bound = 0;
    let learned = 0;
    for (const [ifindex, b] of applied?.ports ?? []) {
      if (!current.has(ifindex)) continue;
      if (b.learned) learned++;
      else bound++;
    }
    return {
      mode: this.#o.mode,
      ipv6: this.#o.dropIpv6 ? 'drop' : 'pass',
      ports: { bound, learned, unbound: Math.max(0, current.size - bound - learned) },
      pendingLeases: applied?.pending.size ?? 0,
      dropped: this.#totals.dropped,
      wouldDrop: this.#totals.wouldDrop,
    };
  }

  /** Stops reading and syncing; the maps stay as they are (the program keeps enforcing them). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of [this.#statsTimer, this.#loopTimer, this.#retryTimer]) if (t) clearInterval(t);
    await this.#tail;
    this.#reader?.close();
  }

  /** Runs `f` between passes. */
  #serial(f: () => void): Promise<void> {
    const run = this.#tail.then(f);
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #pass(): Promise<void> {
    if (this.#closed) return;
    const { maps, store, log, metrics } = this.#o;
    try {
      const full = this.#full || this.#applied === null;
      this.#full = false;
      const snapshot = await store.snapshot();
      this.#reader?.drain(); // learn events so far are in what the agent knows
      const state = full ? maps.state() : (this.#applied as GuardState);
      const desired = desiredGuard(snapshot.leases, new Set(this.#o.ports().keys()), this.#o.node);
      const plan = planGuard(state, desired);
      this.#apply(plan, state);
      this.#applied = applyGuardPlan(state, plan);
      if (!isEmptyPlan(plan)) log.debug({ plan }, 'guard maps updated');
      let learned = 0;
      for (const b of this.#applied.ports.values()) if (b.learned) learned++;
      metrics.guardBindings.set({ state: 'bound' }, this.#applied.ports.size - learned);
      metrics.guardBindings.set({ state: 'learned' }, learned);
      metrics.guardBindings.set({ state: 'pending' }, this.#applied.pending.size);
    } catch (err) {
      this.#applied = null;
      metrics.resyncs.inc({ source: 'guard' });
      log.error({ err }, 'cannot update the guard maps; rebuilding them shortly');
      this.#retrySoon();
    }
  }

  /** Applies a plan in its order, in one synchronous stretch. */
  #apply(plan: GuardPlan, state: GuardState): void {
    const { maps } = this.#o;
    for (const ip of plan.deletePending) maps.deletePending(ip);
    for (const mac of plan.deletePendingMacs) maps.deletePendingMac(mac);
    if (plan.deletePending.length > 0) this.#revokeRacingClaims(plan.deletePending, state);
    for (const ifindex of plan.deletePorts) maps.deletePort(ifindex);
    for (const ip of plan.deleteClaims) maps.deleteClaim(ip);
    for (const [ifindex, b] of plan.putPorts) maps.putPort(ifindex, b);
    for (const [ip, mac] of plan.putPending) maps.putPending(ip, mac);
    for (const [mac, ip] of plan.putPendingMacs) maps.putPendingMac(mac, ip);
  }

  /**
   * A port may have claimed a lease between the last read of events and its revocation: the
   * program records the claim before it writes the learned binding and checks the lease is
   * still pending after it, so a claim that beat the revocation is in the claim map now. Its
   * learned binding goes with it (a binding the agent wrote for that port is never learned over).
   */
  #revokeRacingClaims(revoked: readonly string[], state: GuardState): void {
    for (const ip of revoked) {
      const ifindex = this.#o.maps.claimOf(ip);
      if (ifindex === null || (state.ports.has(ifindex) && !state.ports.get(ifindex)?.learned))
        continue;
      this.#o.maps.deletePort(ifindex);
      this.#o.maps.deleteClaim(ip);
      this.#o.log.info({ ip, ifindex }, 'a claim racing the end of its lease was undone');
    }
  }

  #retrySoon(): void {
    if (this.#retryTimer || this.#closed) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      void this.sync();
    }, RETRY_MS);
    this.#retryTimer.unref();
  }

  #onEvents(events: GuardEvent[]): void {
    const clock = { monoNs: process.hrtime.bigint(), epochMs: Date.now() };
    const names = this.#o.ports();
    for (const e of events) {
      if (e.kind === 'learn') {
        if (e.ip === null) continue;
        const b = { mac: e.ethSrc, ip: e.ip };
        if (this.#applied) this.#applied = withLearned(this.#applied, e.ifindex, b);
        this.#learned(e.ifindex, b);
        continue;
      }
      this.#o.onSpoof({
        source: 'bpf',
        ifindex: e.ifindex,
        port: names.get(e.ifindex) ?? `if${e.ifindex}`,
        at: Math.round(monoToEpochMs(e.tsNs, clock)),
        reason: e.reason ?? 'malformed',
        dropped: e.dropped,
        ip: e.ip,
        targetIp: e.targetIp,
        mac: e.ethSrc,
        senderMac: e.senderMac,
      });
    }
  }

  #learned(ifindex: number, b: { mac: string; ip: string }): void {
    const l: LearnedPort = { ...b, ifindex, ifname: this.#o.ports().get(ifindex) ?? null };
    for (const listener of this.#learnedListeners) {
      try {
        listener(l);
      } catch (err) {
        this.#o.log.warn({ err, learned: l }, 'a learned-binding listener failed');
      }
    }
  }

  /** Reads the per-port counters: metrics, and one `GuardActivity` per port that moved. */
  #readStats(): void {
    if (this.#closed) return;
    let stats: Map<number, GuardStats>;
    try {
      stats = this.#o.maps.stats();
    } catch (err) {
      this.#o.log.warn({ err }, 'cannot read the guard counters');
      return;
    }
    const prev = this.#baseline;
    const at = Date.now();
    const intervalMs = at - this.#baselineAt;
    this.#baseline = stats;
    this.#baselineAt = at;
    const names = this.#o.ports();
    for (const [ifindex, s] of stats) {
      const p = prev.get(ifindex) ?? ZERO_GUARD_STATS;
      const dropped = Math.max(0, s.dropped - p.dropped);
      const wouldDrop = Math.max(0, s.wouldDrop - p.wouldDrop);
      const port = names.get(ifindex) ?? `if${ifindex}`;
      if (dropped > 0) this.#o.metrics.guardDropped.inc({ port }, dropped);
      if (wouldDrop > 0) this.#o.metrics.guardWouldDrop.inc({ port }, wouldDrop);
      this.#totals.dropped += dropped;
      this.#totals.wouldDrop += wouldDrop;
      // A quiet port is reported once (its attempts are over), then not until it moves again.
      const quiet = dropped === 0 && wouldDrop === 0;
      if (quiet && this.#silent.has(ifindex)) continue;
      if (quiet) this.#silent.add(ifindex);
      else this.#silent.delete(ifindex);
      this.#o.onActivity({ source: 'bpf', ifindex, port, at, intervalMs, dropped, wouldDrop });
    }
  }
}

/** Whether two guard states hold the same entries. */
function sameState(a: GuardState, b: GuardState): boolean {
  const same = <K, V>(x: ReadonlyMap<K, V>, y: ReadonlyMap<K, V>, eq: (p: V, q: V) => boolean) =>
    x.size === y.size && [...x].every(([k, v]) => y.has(k) && eq(v, y.get(k) as V));
  return (
    same(a.ports, b.ports, (p, q) => p.mac === q.mac && p.ip === q.ip && p.learned === q.learned) &&
    same(a.pending, b.pending, (p, q) => p === q) &&
    same(a.pendingMacs, b.pendingMacs, (p, q) => p === q) &&
    same(a.claims, b.claims, (p, q) => p === q)
  );
}
