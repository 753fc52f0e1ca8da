/**
 * The IPAM service: the imperative shell around the pure allocator. It serialises allocations
 * and releases in-process (a mutex), reads the store and the live sources, runs an optional
 * pre-handout check (e.g. an ARP probe) on the chosen address, and claims it in the store,
 * retrying with a fresh snapshot when another writer won the address (CONFLICT).
 *
 * An address a check or an observer finds live without a lease is quarantined ('live-unleased')
 * with a finding; an address still live after its release is quarantined ('live-after-release').
 *
 * @example
 * const ipam = new IpamService({ store, pool, log, metrics });
 * ipam.addLiveSource(neighbours);
 * const { lease } = await ipam.allocate('app-1', null);
 * await ipam.release('app-1');
 */
import { BridgewardError, isBridgewardError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { LiveEvidence, LiveSource } from '../observe/types.js';
import type { ClaimResult, Lease, LeaseStore } from '../store/types.js';
import { chooseAddress, countPool, exhaustedError, type Pool } from './allocator.js';
import { collectLive } from './live-set.js';
import { Mutex } from './mutex.js';

/** A check run on an address right before it is handed out; evidence means "in use, skip it". */
export type PreHandoutCheck = (ip: string) => Promise<LiveEvidence | null>;

/** What the service needs. */
export interface IpamOptions {
  /** The lease store. */
  readonly store: LeaseStore;
  /** The address pool. */
  readonly pool: Pool;
  /** Logger. */
  readonly log: Logger;
  /** Metrics to keep (allocations by result, addresses by state). */
  readonly metrics?: Pick<Metrics, 'allocations' | 'leases'>;
  /** Clock (ms since the epoch); tests pass a fake. */
  readonly now?: () => number;
}

/** The outcome of a release. */
export interface ReleaseResult {
  /** The lease that ended. */
  readonly lease: Lease;
  /** Evidence when the address was still live and therefore quarantined, else null. */
  readonly stillLive: LiveEvidence | null;
}

/** Delay of the coalesced lease-gauge refresh after allocations and releases. */
const METRICS_DELAY_MS = 250;

/** How many times an allocation re-chooses after losing its address to another writer. */
const MAX_CLAIM_ATTEMPTS = 16;

/** Allocates and releases addresses safely. */
export class IpamService {
  readonly #store: LeaseStore;
  readonly #pool: Pool;
  readonly #log: Logger;
  readonly #metrics: IpamOptions['metrics'];
  readonly #now: () => number;
  readonly #mutex = new Mutex();
  readonly #sources: LiveSource[] = [];
  #check: PreHandoutCheck | null = null;
  #metricsTimer: NodeJS.Timeout | null = null;

  /** Builds the service; add live sources and a pre-handout check before serving. */
  constructor(opts: IpamOptions) {
    this.#store = opts.store;
    this.#pool = opts.pool;
    this.#log = opts.log.child({ component: 'ipam' });
    this.#metrics = opts.metrics;
    this.#now = opts.now ?? Date.now;
  }

  /** The pool this service allocates from. */
  get pool(): Pool {
    return this.#pool;
  }

  /** Adds a source of live addresses (neighbour table, eBPF, probes). */
  addLiveSource(source: LiveSource): void {
    this.#sources.push(source);
  }

  /** Installs the check run on every chosen address before it is claimed (one at a time). */
  setPreHandoutCheck(check: PreHandoutCheck): void {
    this.#check = check;
  }

  /** Everything the live sources see right now, merged per address. */
  live(): Promise<Map<string, LiveEvidence>> {
    return collectLive(this.#sources, (s, e) =>
      this.#log.warn({ source: s.name, err: e }, 'live source failed; ignoring it this time'),
    );
  }

  /**
   * Gives `sandbox` an address (its existing lease if it has one).
   *
   * @throws BridgewardError POOL_EXHAUSTED with counts; CONFLICT when other writers kept winning;
   *   STORE_UNAVAILABLE when the store fails.
   */
  allocate(sandbox: string, mac: string | null): Promise<ClaimResult> {
    return this.#mutex.run(async () => {
      try {
        const result = await this.#allocate(sandbox, mac);
        this.#metrics?.allocations.inc({ result: result.existing ? 'existing' : 'ok' });
        return result;
      } catch (e) {
        const result = isBridgewardError(e, 'POOL_EXHAUSTED')
          ? 'exhausted'
          : isBridgewardError(e, 'CONFLICT')
            ? 'conflict'
            : 'error';
        this.#metrics?.allocations.inc({ result });
        throw e;
      } finally {
        this.#scheduleMetrics();
      }
    });
  }

  /**
   * Ends the sandbox's lease (the caller has confirmed the sandbox is gone). If the address is
   * still seen live it is quarantined ('live-after-release') instead of cooling towards reuse.
   *
   * @throws BridgewardError UNKNOWN_SANDBOX; STORE_UNAVAILABLE.
   */
  release(sandbox: string, detail: Record<string, unknown> = {}): Promise<ReleaseResult> {
    return this.#mutex.run(async () => {
      try {
        const lease = await this.#store.release(sandbox, new Date(this.#now()), detail);
        const evidence = (await this.live()).get(lease.ip) ?? null;
        if (evidence) {
          await this.quarantineLive(lease.ip, 'live-after-release', evidence, { sandbox });
        }
        return { lease, stillLive: evidence };
      } finally {
        this.#scheduleMetrics();
      }
    });
  }

  /**
   * Quarantines an address found live when it should not be, and records a finding naming it.
   * Serialised with allocations by the callers that hold no lock (the reconciler).
   */
  async quarantineLive(
    ip: string,
    reason: 'live-unleased' | 'live-after-release',
    evidence: LiveEvidence,
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    const at = new Date(this.#now());
    const ev = { ...evidenceDetail(evidence), ...extra };
    await this.#store.quarantine(
      { ip, reason, evidence: ev, since: at.toISOString(), until: null },
      at,
    );
    await this.#store.appendEvent({
      at: at.toISOString(),
      kind: 'finding',
      ip,
      sandbox: typeof extra.sandbox === 'string' ? extra.sandbox : null,
      detail: { finding: reason, ...ev },
    });
    this.#log.warn(
      { ip, reason, evidence: ev },
      `${ip} is live on the wire: quarantined (${reason})`,
    );
  }

  /** Runs `f` while no allocation or release is in progress. */
  exclusive<T>(f: () => Promise<T>): Promise<T> {
    return this.#mutex.run(f);
  }

  /** Refreshes the addresses-by-state gauge soon (at most once per METRICS_DELAY_MS). */
  #scheduleMetrics(): void {
    if (!this.#metrics || this.#metricsTimer) return;
    this.#metricsTimer = setTimeout(() => {
      this.#metricsTimer = null;
      void this.refreshMetrics();
    }, METRICS_DELAY_MS);
    this.#metricsTimer.unref();
  }

  /** Updates the addresses-by-state gauge from a fresh snapshot. */
  async refreshMetrics(live?: ReadonlyMap<string, LiveEvidence>): Promise<void> {
    if (!this.#metrics) return;
    try {
      const snapshot = await this.#store.snapshot();
      const c = countPool({
        pool: this.#pool,
        snapshot,
        live: new Set((live ?? new Map()).keys()),
        now: this.#now(),
      });
      const g = this.#metrics.leases;
      g.set({ state: 'active' }, c.active);
      g.set({ state: 'quarantined' }, c.quarantined);
      g.set({ state: 'cooling' }, c.cooling);
      g.set({ state: 'live-unleased' }, c.liveUnleased);
      g.set({ state: 'free' }, c.free);
    } catch (e) {
      this.#log.warn({ err: e }, 'could not refresh lease metrics');
    }
  }

  async #allocate(sandbox: string, mac: string | null): Promise<ClaimResult> {
    const skip = new Set<string>();
    let live: Map<string, LiveEvidence> | null = null;
    for (let attempt = 1; attempt <= MAX_CLAIM_ATTEMPTS; attempt++) {
      const snapshot = await this.#store.snapshot();
      live ??= await this.live();
      const now = this.#now();
      const d = chooseAddress({
        pool: this.#pool,
        snapshot,
        live: new Set(live.keys()),
        skip,
        sandbox,
        now,
      });
      if (d.kind === 'existing')
        return { lease: await this.#bindMac(d.lease, mac), existing: true };
      if (d.kind === 'exhausted') throw exhaustedError(this.#pool.subnet, d.counts);
      const evidence = this.#check ? await this.#check(d.ip) : null;
      if (evidence) {
        skip.add(d.ip);
        await this.quarantineLive(d.ip, 'live-unleased', evidence, { check: 'pre-handout' });
        continue;
      }
      try {
        const result = await this.#store.claim({ sandbox, ip: d.ip, mac, at: new Date(now) });
        if (!result.existing) {
          this.#log.info(
            { sandbox, ip: d.ip, generation: result.lease.generation, cooling: d.cooling },
            'allocated',
          );
        }
        return result;
      } catch (e) {
        if (!isBridgewardError(e, 'CONFLICT')) throw e;
        skip.add(d.ip);
      }
    }
    throw new BridgewardError(
      'CONFLICT',
      `could not claim an address for ${sandbox}: other writers won ${MAX_CLAIM_ATTEMPTS} times; retry`,
    );
  }

  async #bindMac(lease: Lease, mac: string | null): Promise<Lease> {
    if (mac === null || lease.mac !== null) return lease;
    return this.#store.bind(lease.sandbox, { mac }, new Date(this.#now()));
  }
}

/** The evidence as a plain record for the store and the logs. */
function evidenceDetail(e: LiveEvidence): Record<string, unknown> {
  return {
    macs: e.macs,
    ifindexes: e.ifindexes,
    sources: e.sources,
    lastSeen: new Date(e.lastSeen).toISOString(),
  };
}
