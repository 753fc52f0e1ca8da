/**
 * The reconciler's runner: applies `planReconcile` at boot (before the API serves), on every
 * periodic sweep, when a bridge instance appears and shortly after the wire changes, holding the
 * IPAM lock so no allocation interleaves. Keeps the sweep counters; the runtime's declared
 * sandbox set (POST /v1/sync) is kept in the store, so after a restart reaping resumes without
 * waiting for the next sync. While the bridge is absent nothing is on the wire to judge by:
 * sweeps then only end port bindings, and periodic sweeps do not count towards reaping or
 * lifting.
 *
 * @example
 * const rec = new Reconciler({ ipam, store, bridge, log, metrics });
 * await rec.sweep('boot'); // loads the last declaration first
 * rec.start(cfg.sweepSeconds);
 * neighbours.onChange(() => rec.kick());
 */
import type { BridgeLifecycle } from '../bridge/lifecycle.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { LeaseStore } from '../store/types.js';
import {
  NO_COUNTERS,
  planReconcile,
  undeclared,
  type ReconcileCounters,
  type ReconcileInput,
  type ReconcilePlan,
} from './reconcile.js';
import type { IpamService } from './service.js';

/** Consecutive periodic sweeps before a lease is reaped or a self-set quarantine lifted. */
export const DEFAULT_MISS_SWEEPS = 3;
/** Event-driven sweeps run at most this often (ms). */
const KICK_DEBOUNCE_MS = 200;

/** What triggered a sweep. */
export type SweepTrigger = 'boot' | 'periodic' | 'event' | 'sync' | 'bridge';

/** What the reconciler needs. */
export interface ReconcilerOptions {
  /** The IPAM service (its lock, live sources and quarantine path). */
  readonly ipam: IpamService;
  /** The lease store. */
  readonly store: LeaseStore;
  /** The current bridge and its ports (what is on the wire at all). */
  readonly bridge: Pick<BridgeLifecycle, 'current' | 'ports'>;
  /** Logger. */
  readonly log: Logger;
  /** Sweep duration metric. */
  readonly metrics?: Pick<Metrics, 'reconcileSeconds'>;
  /** Periodic sweeps needed to reap or lift (default 3). */
  readonly missSweeps?: number;
}

/** A summary of one sweep. */
export interface SweepResult {
  /** What triggered it. */
  readonly trigger: SweepTrigger;
  /** Addresses re-reserved. */
  readonly reserved: string[];
  /** Sandboxes whose leases were reaped. */
  readonly reaped: string[];
  /** Quarantines lifted. */
  readonly lifted: string[];
}

/** Keeps the store and the wire in agreement. */
export class Reconciler {
  readonly #opts: ReconcilerOptions;
  readonly #log: Logger;
  readonly #missSweeps: number;
  #counters: ReconcileCounters = NO_COUNTERS;
  /** The runtime's last declaration; undefined until loaded from the store. */
  #declared: ReconcileInput['declared'] | undefined = undefined;
  #timer: NodeJS.Timeout | null = null;
  #kickTimer: NodeJS.Timeout | null = null;
  #stopped = false;

  /** Builds the reconciler; nothing runs until `sweep`, `start` or `kick`. */
  constructor(opts: ReconcilerOptions) {
    this.#opts = opts;
    this.#log = opts.log.child({ component: 'reconciler' });
    this.#missSweeps = opts.missSweeps ?? DEFAULT_MISS_SWEEPS;
  }

  /**
   * Records the runtime's declared sandbox set (modelled on CNI GC) and sweeps once without
   * counting. Returns the sweep and the leased sandboxes the runtime no longer declares.
   */
  async sync(sandboxes: readonly string[]): Promise<SweepResult & { undeclared: string[] }> {
    const { store } = this.#opts;
    const declared = { sandboxes: new Set(sandboxes), at: new Date().toISOString() };
    const snapshot = await store.snapshot();
    const left = snapshot.leases.filter((l) => undeclared(l, declared)).map((l) => l.sandbox);
    await store.declare(
      this.#node(),
      { sandboxes: [...declared.sandboxes], at: declared.at },
      { declared: declared.sandboxes.size, undeclared: left },
    );
    this.#declared = declared;
    return { ...(await this.sweep('sync')), undeclared: left };
  }

  /** Runs one sweep now. Only periodic sweeps advance the reap/lift counters. */
  sweep(trigger: SweepTrigger): Promise<SweepResult> {
    const { ipam, store, metrics, bridge } = this.#opts;
    return ipam.exclusive(async () => {
      const end = metrics?.reconcileSeconds.startTimer({ trigger });
      try {
        if (this.#declared === undefined) {
          const loaded = await this.#load();
          this.#declared ??= loaded; // a sync meanwhile is newer
        }
        const declared = this.#declared ?? null;
        const present = bridge.current() !== null;
        const ports = new Set(bridge.ports().keys());
        const [snapshot, live] = await Promise.all([store.snapshot(), ipam.live()]);
        const plan = planReconcile({
          pool: ipam.pool,
          snapshot,
          live,
          ports,
          declared,
          counters: this.#counters,
          missThreshold: this.#missSweeps,
          count: trigger === 'periodic' && present,
          node: this.#node(),
        });
        await this.#apply(plan);
        this.#counters = plan.counters;
        await ipam.refreshMetrics(live);
        return {
          trigger,
          reserved: plan.reserve.map((r) => r.ip),
          reaped: plan.reap.map((r) => r.sandbox),
          lifted: plan.lift.map((r) => r.ip),
        };
      } finally {
        end?.();
      }
    });
  }

  /** Starts periodic sweeps every `seconds`. */
  start(seconds: number): void {
    const tick = () => {
      if (this.#stopped) return;
      const t0 = Date.now();
      this.sweep('periodic')
        .catch((err: unknown) => this.#log.error({ err }, 'periodic sweep failed'))
        .finally(() => {
          const took = Date.now() - t0;
          if (took > seconds * 1000) this.#log.warn({ ms: took, seconds }, 'sweep fell behind');
          if (!this.#stopped) this.#timer = setTimeout(tick, seconds * 1000);
        });
    };
    this.#timer = setTimeout(tick, seconds * 1000);
  }

  /** Schedules an event-driven sweep soon (coalescing bursts of wire changes). */
  kick(): void {
    if (this.#stopped || this.#kickTimer) return;
    this.#kickTimer = setTimeout(() => {
      this.#kickTimer = null;
      this.sweep('event').catch((err: unknown) =>
        this.#log.error({ err }, 'event-driven sweep failed'),
      );
    }, KICK_DEBOUNCE_MS);
  }

  /** Stops the timers (a sweep in progress finishes). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#kickTimer) clearTimeout(this.#kickTimer);
  }

  /** This agent's name when the store is shared (etcd), else null. */
  #node(): string | null {
    return this.#opts.store.kind === 'etcd' ? this.#opts.ipam.node : null;
  }

  /** The declaration the store kept from before this process started, if any. */
  async #load(): Promise<ReconcileInput['declared']> {
    const d = await this.#opts.store.declaration(this.#node());
    if (d === null) return null;
    this.#log.info({ sandboxes: d.sandboxes.length, at: d.at }, 'loaded the last declaration');
    return { sandboxes: new Set(d.sandboxes), at: d.at };
  }

  async #apply(plan: ReconcilePlan): Promise<void> {
    const { ipam, store } = this.#opts;
    const at = new Date();
    for (const r of plan.reserve) {
      await ipam.quarantineLive(r.ip, 'live-unleased', r.evidence, { by: 'reconciler' });
    }
    for (const r of plan.reap) {
      await ipam.reap(r.sandbox, at, {
        by: 'reconciler',
        reason: `not declared by the runtime and not seen on the wire for ${r.sweeps} sweeps`,
      });
      this.#log.info({ sandbox: r.sandbox, ip: r.ip, sweeps: r.sweeps }, 'reaped lease');
    }
    for (const l of plan.lift) {
      await store.clearQuarantine(l.ip, at, {
        by: 'reconciler',
        reason: `not seen on the wire for ${l.sweeps} sweeps`,
      });
      this.#log.info({ ip: l.ip, was: l.reason }, 'lifted quarantine');
    }
    for (const b of plan.bind) {
      await store.bind(b.sandbox, { mac: b.mac, ifindex: b.ifindex }, at);
    }
    for (const u of plan.unbind) {
      await store.bind(u.sandbox, { ifindex: null, ifname: null }, at);
      this.#log.info(
        { sandbox: u.sandbox, ifindex: u.ifindex },
        'port binding ended: the port left the bridge',
      );
    }
    if (plan.bind.length + plan.unbind.length > 0) await ipam.followLeases();
  }

  /**
   * Binds the lease on `seen.ip` to the MAC and port its first frame came from, as the bridge
   * guard learned it in the kernel: the same store bind a sweep makes from evidence (a 'bound'
   * event in the history), under the IPAM lock, then the guard follows. Nothing happens when the
   * lease is gone, names another MAC, is bound to a current port already, or the port left.
   *
   * @example guard.onLearned((l) => void reconciler.learned(l));
   */
  learned(seen: {
    readonly ip: string;
    readonly mac: string;
    readonly ifindex: number;
    readonly ifname: string | null;
  }): Promise<void> {
    const { ipam, store, bridge } = this.#opts;
    return ipam.exclusive(async () => {
      const lease = await store.leaseByIp(seen.ip);
      const ports = bridge.ports();
      if (
        !lease ||
        (lease.mac !== null && lease.mac !== seen.mac) ||
        (lease.ifindex !== null && ports.has(lease.ifindex)) ||
        !ports.has(seen.ifindex)
      ) {
        return;
      }
      await store.bind(
        lease.sandbox,
        { mac: seen.mac, ifindex: seen.ifindex, ifname: seen.ifname },
        new Date(),
      );
      this.#log.info(
        { sandbox: lease.sandbox, ip: seen.ip, mac: seen.mac, ifindex: seen.ifindex },
        'lease bound to the port of its first frame',
      );
      await ipam.followLeases();
    });
  }
}
