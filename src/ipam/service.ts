/**
 * The IPAM service: the imperative shell around the pure allocator. Requests queue up and are
 * decided in batches, one batch at a time under an in-process lock (which the reconciler also
 * takes): one store snapshot and one read of the live sources per batch, the pure allocator per
 * request (addresses chosen earlier in the batch excluded), the optional pre-handout check
 * (e.g. an ARP probe) on each chosen address, then all claims and releases together (the SQLite
 * store commits them at once). A claim lost to another writer (CONFLICT) is decided again in a
 * later batch with that address skipped.
 *
 * An address a check or an observer finds live without a lease is quarantined ('live-unleased')
 * with a finding; an address still live after its release is quarantined ('live-after-release').
 * No new address is handed out while the bridge is absent (nothing could be checked on the
 * wire): such requests fail with BRIDGE_ABSENT; a sandbox's existing lease is still answered.
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
import {
  chooseAddress,
  countPool,
  exhaustedError,
  nextCandidates,
  viewPool,
  type Pool,
  type PoolCounts,
  type PoolInput,
  type PoolView,
} from './allocator.js';
import { collectLive } from './live-set.js';
import { Mutex } from './mutex.js';

/** A check run on an address right before it is handed out; evidence means "in use, skip it". */
export type PreHandoutCheck = (ip: string) => Promise<LiveEvidence | null>;

/**
 * Kernel state derived from the leases that must follow every lease change before the change is
 * answered (the bridge guard: a new lease's binding exists before its address is handed out, a
 * released one's is gone before the release is answered).
 */
export interface LeaseFollower {
  /** Resolves, never rejects, once every lease change committed before the call is followed. */
  sync(): Promise<void>;
}

/** What the service needs. */
export interface IpamOptions {
  /** The lease store. */
  readonly store: LeaseStore;
  /** The address pool. */
  readonly pool: Pool;
  /** Logger. */
  readonly log: Logger;
  /** Metrics to keep (allocations by result, addresses by state). */
  readonly metrics?: Pick<Metrics, 'allocations' | 'allocationSeconds' | 'leases'>;
  /** Clock (ms since the epoch); tests pass a fake. */
  readonly now?: () => number;
  /** This agent's node name, recorded on its leases and quarantines (default: none). */
  readonly node?: string;
  /** The bridge addresses are handed out on: `require()` throws while it is absent. */
  readonly bridge?: { require(): unknown };
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
/** Most allocations decided in one batch. */
const MAX_BATCH = 64;

/** A queued allocation request. */
interface PendingAllocation {
  readonly sandbox: string;
  readonly mac: string | null;
  /** Addresses this request must not get (found live, or lost to another writer). */
  readonly skip: Set<string>;
  /** Claims lost to other writers so far. */
  attempts: number;
  readonly resolve: (r: ClaimResult) => void;
  readonly reject: (e: unknown) => void;
}

/** A queued release request. */
interface PendingRelease {
  readonly sandbox: string;
  readonly detail: Record<string, unknown>;
  readonly resolve: (r: ReleaseResult) => void;
  readonly reject: (e: unknown) => void;
}

/** What a batch decided for its allocations. */
interface Decisions {
  /** The time the batch was decided at (ms since the epoch). */
  readonly now: number;
  /** Sandboxes that already hold a lease. */
  readonly existing: { readonly p: PendingAllocation; readonly lease: Lease }[];
  /** Addresses to claim. */
  readonly chosen: {
    readonly p: PendingAllocation;
    readonly ip: string;
    readonly cooling: boolean;
  }[];
  /** Requests to decide again in a later batch. */
  readonly again: PendingAllocation[];
}

/** The decision for one request within a batch. */
type Choice =
  | { readonly kind: 'existing'; readonly lease: Lease }
  | { readonly kind: 'chosen'; readonly ip: string; readonly cooling: boolean }
  | { readonly kind: 'later' };

/** Allocates and releases addresses safely. */
export class IpamService {
  readonly #store: LeaseStore;
  readonly #pool: Pool;
  readonly #log: Logger;
  readonly #metrics: IpamOptions['metrics'];
  readonly #now: () => number;
  readonly #node: string | null;
  readonly #bridge: IpamOptions['bridge'];
  readonly #mutex = new Mutex();
  readonly #sources: LiveSource[] = [];
  readonly #allocations: PendingAllocation[] = [];
  readonly #releases: PendingRelease[] = [];
  #draining = false;
  #check: PreHandoutCheck | null = null;
  #follower: LeaseFollower | null = null;
  readonly #releasedListeners: ((lease: Lease) => void)[] = [];
  #metricsTimer: NodeJS.Timeout | null = null;

  /** Builds the service; add live sources and a pre-handout check before serving. */
  constructor(opts: IpamOptions) {
    this.#store = opts.store;
    this.#pool = opts.pool;
    this.#log = opts.log.child({ component: 'ipam' });
    this.#metrics = opts.metrics;
    this.#now = opts.now ?? Date.now;
    this.#node = opts.node ?? null;
    this.#bridge = opts.bridge;
  }

  /** This agent's node name, or null when none was given. */
  get node(): string | null {
    return this.#node;
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

  /** Installs the kernel state that follows every lease change before it is answered. */
  setFollower(follower: LeaseFollower): void {
    this.#follower = follower;
  }

  /** Resolves once the follower (if any) holds every lease change committed so far. */
  followLeases(): Promise<void> {
    return this.#follower?.sync() ?? Promise.resolve();
  }

  /** Everything the live sources see right now, merged per address. */
  live(): Promise<Map<string, LiveEvidence>> {
    return collectLive(this.#sources, (s, e) =>
      this.#log.warn({ source: s.name, err: e }, 'live source failed; ignoring it this time'),
    );
  }

  /**
   * Gives `sandbox` an address (its existing lease if it has one). Concurrent requests are
   * decided together in one batch (one snapshot, one store commit).
   *
   * @throws BridgewardError POOL_EXHAUSTED with counts; CONFLICT when other writers kept winning;
   *   BRIDGE_ABSENT (retryable) for a new address while the bridge is absent; STORE_UNAVAILABLE
   *   when the store fails.
   */
  allocate(sandbox: string, mac: string | null): Promise<ClaimResult> {
    const timer = this.#metrics?.allocationSeconds.startTimer();
    return new Promise((resolve, reject) => {
      this.#allocations.push({
        sandbox,
        mac,
        skip: new Set(),
        attempts: 0,
        resolve: (r) => {
          timer?.();
          this.#metrics?.allocations.inc({ result: r.existing ? 'existing' : 'ok' });
          resolve(r);
        },
        reject: (e) => {
          timer?.();
          this.#metrics?.allocations.inc({ result: failureResult(e) });
          reject(e);
        },
      });
      this.#drain();
    });
  }

  /**
   * Calls `listener` after every lease that ended (released or reaped) is committed, e.g. to
   * take its node ports out of the kernel at once.
   */
  onReleased(listener: (lease: Lease) => void): void {
    this.#releasedListeners.push(listener);
  }

  /**
   * Ends a lease the reconciler found abandoned (not declared by the runtime, not seen on the
   * wire). The caller holds the lock (`exclusive`).
   *
   * @throws BridgewardError UNKNOWN_SANDBOX; STORE_UNAVAILABLE.
   */
  async reap(sandbox: string, at: Date, detail: Record<string, unknown>): Promise<Lease> {
    const lease = await this.#store.release(sandbox, at, detail);
    await this.followLeases();
    this.#notifyReleased(lease);
    return lease;
  }

  #notifyReleased(lease: Lease): void {
    for (const listener of this.#releasedListeners) listener(lease);
  }

  /**
   * Ends the sandbox's lease (the caller has confirmed the sandbox is gone). If the address is
   * still seen live it is quarantined ('live-after-release') instead of cooling towards reuse.
   *
   * @throws BridgewardError UNKNOWN_SANDBOX; STORE_UNAVAILABLE.
   */
  release(sandbox: string, detail: Record<string, unknown> = {}): Promise<ReleaseResult> {
    return new Promise((resolve, reject) => {
      this.#releases.push({ sandbox, detail, resolve, reject });
      this.#drain();
    });
  }

  /**
   * Runs one batch of queued releases and allocations under the lock, then the next. The live
   * sources are read once per batch. The allocations are decided first, on a snapshot taken
   * before this batch's releases are written (an address freed in this batch is not handed out
   * in it; it is cooling anyway); then every release and claim of the batch is issued in one
   * synchronous stretch, so they share one store commit.
   */
  #drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    // The batch starts once this event-loop turn's I/O has been read (setImmediate, no timer), so
    // every request that arrived together with this one joins it and shares its one commit.
    setImmediate(() => this.#runBatch());
  }

  #runBatch(): void {
    void this.#mutex
      .run(async () => {
        const releases = this.#releases.splice(0);
        const allocations = this.#allocations.splice(0, MAX_BATCH);
        const live = await this.live(); // never rejects: a failing source contributes nothing
        const decided = await this.#decide(allocations, new Set(live.keys()));
        await Promise.all([this.#releaseBatch(releases, live), this.#claimBatch(decided)]);
      })
      .finally(() => {
        this.#draining = false;
        this.#scheduleMetrics();
        if (this.#releases.length || this.#allocations.length) this.#drain();
      });
  }

  /** Ends the leases (the writes are issued before the first await), quarantining live ones. */
  async #releaseBatch(batch: PendingRelease[], live: Map<string, LiveEvidence>): Promise<void> {
    if (batch.length === 0) return;
    const at = new Date(this.#now());
    const ended = await Promise.allSettled(
      batch.map((p) => this.#store.release(p.sandbox, at, p.detail)),
    );
    // The old owners' bindings are gone from the kernel before any release is answered.
    if (ended.some((r) => r.status === 'fulfilled')) await this.followLeases();
    for (const [i, p] of batch.entries()) {
      const r = ended[i] as PromiseSettledResult<Lease>;
      if (r.status === 'rejected') {
        p.reject(r.reason);
        continue;
      }
      this.#notifyReleased(r.value);
      const evidence = live.get(r.value.ip) ?? null;
      try {
        if (evidence) {
          await this.quarantineLive(r.value.ip, 'live-after-release', evidence, {
            sandbox: p.sandbox,
          });
        }
        p.resolve({ lease: r.value, stillLive: evidence });
      } catch (e) {
        p.reject(e);
      }
    }
  }

  /** Decides every allocation of a batch on one snapshot; writes nothing (but quarantines). */
  async #decide(batch: PendingAllocation[], live: ReadonlySet<string>): Promise<Decisions> {
    const now = this.#now();
    const d: Decisions = { now, existing: [], chosen: [], again: [] };
    if (batch.length === 0) return d;
    let view: PoolView;
    try {
      view = viewPool({ pool: this.#pool, snapshot: await this.#store.snapshot(), live, now });
    } catch (e) {
      for (const p of batch) p.reject(e);
      return d;
    }
    // Every request chooses at once (an address goes into `taken` as it is chosen, before its
    // check), so the checks of a batch that must probe on its path share one probe window.
    const taken = new Set<string>();
    const sandboxes = new Set<string>();
    const choices = await Promise.allSettled(
      batch.map((p): Promise<Choice> => {
        // The same sandbox twice: decide the second once the first is stored.
        if (sandboxes.has(p.sandbox)) return Promise.resolve({ kind: 'later' });
        sandboxes.add(p.sandbox);
        return this.#choose(p, view, taken);
      }),
    );
    for (const [i, p] of batch.entries()) {
      const r = choices[i] as PromiseSettledResult<Choice>;
      if (r.status === 'rejected') {
        p.reject(r.reason);
        continue;
      }
      const choice = r.value;
      if (choice.kind === 'existing') d.existing.push({ p, lease: choice.lease });
      else if (choice.kind === 'later') d.again.push(p);
      else d.chosen.push({ p, ip: choice.ip, cooling: choice.cooling });
    }
    return d;
  }

  /** Claims the chosen addresses (the writes are issued before the first await). */
  async #claimBatch(d: Decisions): Promise<void> {
    await Promise.all([
      ...d.existing.map(({ p, lease }) =>
        this.#bindMac(lease, p.mac).then((l) => p.resolve({ lease: l, existing: true }), p.reject),
      ),
      ...d.chosen.map(({ p, ip, cooling }) => this.#claim(p, ip, cooling, d.now, d.again)),
    ]);
    this.#allocations.unshift(...d.again);
  }

  /**
   * Chooses an address for one request, running the pre-handout check on each candidate. The
   * address joins `taken` as soon as it is chosen (and stays there if found live).
   */
  async #choose(p: PendingAllocation, view: PoolView, taken: Set<string>): Promise<Choice> {
    for (;;) {
      const skip = p.skip.size === 0 ? taken : new Set([...p.skip, ...taken]);
      const d = chooseAddress(view, p.sandbox, skip);
      if (d.kind === 'existing') return { kind: 'existing', lease: d.lease };
      if (d.kind === 'exhausted') {
        // Addresses taken in this batch may yet fail to be claimed: decide again later.
        if (taken.size > 0) return { kind: 'later' };
        throw exhaustedError(this.#pool.subnet, d.counts);
      }
      this.#bridge?.require();
      taken.add(d.ip);
      const evidence = this.#check ? await this.#check(d.ip) : null;
      if (!evidence) return { kind: 'chosen', ip: d.ip, cooling: d.cooling };
      p.skip.add(d.ip);
      await this.quarantineLive(d.ip, 'live-unleased', evidence, { check: 'pre-handout' });
    }
  }

  /** Claims `ip` for a request; on CONFLICT queues it again (bounded) with the address skipped. */
  async #claim(
    p: PendingAllocation,
    ip: string,
    cooling: boolean,
    now: number,
    again: PendingAllocation[],
  ): Promise<void> {
    try {
      const result = await this.#store.claim({
        sandbox: p.sandbox,
        ip,
        mac: p.mac,
        ...(this.#node === null ? {} : { node: this.#node }),
        at: new Date(now),
      });
      if (!result.existing) {
        this.#log.info(
          { sandbox: p.sandbox, ip, generation: result.lease.generation, cooling },
          'allocated',
        );
        await this.followLeases(); // the new lease's binding exists before the address is handed out
      }
      p.resolve(result);
    } catch (e) {
      if (isBridgewardError(e, 'CONFLICT') && ++p.attempts < MAX_CLAIM_ATTEMPTS) {
        p.skip.add(ip);
        again.push(p);
      } else if (isBridgewardError(e, 'CONFLICT')) {
        p.reject(
          new BridgewardError(
            'CONFLICT',
            `could not claim an address for ${p.sandbox}: other writers won ${MAX_CLAIM_ATTEMPTS} times; retry`,
          ),
        );
      } else {
        p.reject(e);
      }
    }
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
    const ev = {
      ...evidenceDetail(evidence),
      ...(this.#node === null ? {} : { node: this.#node }),
      ...extra,
    };
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

  /**
   * The next `k` addresses new sandboxes would get, in the allocator's order (for the
   * background prober; the batch decides again when they are asked for).
   */
  async nextCandidates(k: number): Promise<string[]> {
    return nextCandidates(viewPool(await this.#poolNow()), k);
  }

  /** How the pool's addresses are used now (store snapshot and live sources). */
  async counts(): Promise<PoolCounts> {
    return countPool(await this.#poolNow());
  }

  /** The pool as the store and the live sources see it now. */
  async #poolNow(): Promise<PoolInput> {
    const [snapshot, live] = await Promise.all([this.#store.snapshot(), this.live()]);
    return { pool: this.#pool, snapshot, live: new Set(live.keys()), now: this.#now() };
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

  async #bindMac(lease: Lease, mac: string | null): Promise<Lease> {
    if (mac === null || lease.mac !== null) return lease;
    const bound = await this.#store.bind(lease.sandbox, { mac }, new Date(this.#now()));
    await this.followLeases();
    return bound;
  }
}

/** The allocations metric label of a failure. */
function failureResult(e: unknown): string {
  if (isBridgewardError(e, 'POOL_EXHAUSTED')) return 'exhausted';
  if (isBridgewardError(e, 'CONFLICT')) return 'conflict';
  return 'error';
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
