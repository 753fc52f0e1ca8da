/**
 * The detection pipeline: the shell around the pure detector. Observers submit observations and
 * port changes; one loop feeds them, in order, to the detector with the current leases, publishes
 * the resulting finding changes (logs, metrics, webhook, event stream) and writes the feedback to
 * the lease store: quarantine for duplicate-ip / unleased-claim / gateway-claim, a 'finding'
 * event in the history for every raised and cleared finding (an arp-storm's with no address), and lifting its own quarantine once
 * a finding cleared. A conflict finding (duplicate-ip, gateway-claim) takes over an automatic
 * reservation of its address ('live-unleased', 'live-after-release': the reconciler or the
 * release path may get there first) so the record carries its evidence; an unleased-claim says
 * no more than such a reservation and leaves it; any other reason is left alone. A timer ticks the detector so presence windows and hold-downs run out.
 *
 * Submitting never waits: the input queue is bounded; when it is full new input is dropped,
 * counted (`bridgeward_resyncs_total{source="detector"}`) and logged.
 *
 * @example
 * const pipeline = new DetectionPipeline({ detector, alerts, store, log, metrics });
 * neighbours.onObservation((o) => pipeline.submit(o));
 * pipeline.start();
 * await pipeline.close();
 */
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type {
  GuardActivity,
  Observation,
  PortActivity,
  SpoofObservation,
} from '../observe/types.js';
import type { LeaseStore, StoreSnapshot } from '../store/types.js';
import type { Alerts } from '../alerts/alerts.js';
import type { ConflictDetector } from './detector.js';
import { FINDING_KINDS, type FindingChange } from './finding.js';
import { indexLeases, type LeaseIndex } from './lease-index.js';
import { SELF_LIFTING_REASONS } from '../ipam/reconcile.js';

/** What the pipeline needs. */
export interface PipelineOptions {
  /** The pure detector. */
  readonly detector: ConflictDetector;
  /** Where finding changes are published. */
  readonly alerts: Alerts;
  /** The lease store (leases in; quarantine and history out). */
  readonly store: LeaseStore;
  /** Logger. */
  readonly log: Logger;
  /** Metrics (observations by source, overruns). */
  readonly metrics: Pick<Metrics, 'observations' | 'resyncs'>;
  /** Most inputs waiting (default 10 000). */
  readonly maxQueue?: number;
  /** Tick interval (ms, default 1000). */
  readonly tickMs?: number;
  /** Clock for ticks (default Date.now). */
  readonly now?: () => number;
  /**
   * Queue inputs without processing them until `release()` (default false): the agent holds
   * what the observers report at start (eBPF events queued while it was down among them) until
   * its boot reconcile has compared the store with the wire.
   */
  readonly held?: boolean;
}

type Input =
  | { readonly type: 'observation'; readonly obs: Observation }
  | { readonly type: 'port-activity'; readonly activity: PortActivity }
  | { readonly type: 'spoof'; readonly spoof: SpoofObservation }
  | { readonly type: 'guard-activity'; readonly activity: GuardActivity }
  | { readonly type: 'port-gone'; readonly ifindex: number; readonly at: number }
  | { readonly type: 'tick'; readonly at: number };

/** Quarantine reasons the detector sets, and so may lift. */
const OWN_REASONS: ReadonlySet<string> = new Set(FINDING_KINDS);
/** Findings of a conflict between parties, which an automatic reservation cannot express. */
const CONFLICT_KINDS: ReadonlySet<string> = new Set(['duplicate-ip', 'gateway-claim']);

/**
 * Whether a finding of `kind` puts its quarantine over one held for `held`: over none, over the
 * detector's own, and (a conflict finding only) over an automatic reservation.
 */
function mayReplace(held: string | undefined, kind: string): boolean {
  if (held === undefined || OWN_REASONS.has(held)) return true;
  return CONFLICT_KINDS.has(kind) && SELF_LIFTING_REASONS.includes(held);
}

/** Feeds observers into the detector and the detector's conclusions back into the store. */
export class DetectionPipeline {
  readonly #o: Required<PipelineOptions>;
  readonly #queue: Input[] = [];
  #draining: Promise<void> | null = null;
  #writes: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | null = null;
  #overrun = false;
  #closed = false;
  #held: boolean;

  /** Creates an idle pipeline; call `start()` to begin ticking. */
  constructor(opts: PipelineOptions) {
    this.#o = { maxQueue: 10_000, tickMs: 1000, now: Date.now, held: false, ...opts };
    this.#held = this.#o.held;
  }

  /** Starts processing what was queued while held, and everything after. */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    if (this.#queue.length > 0)
      this.#draining ??= this.#drain().finally(() => (this.#draining = null));
  }

  /** Queues an observation; never waits. */
  submit(obs: Observation): void {
    this.#o.metrics.observations.inc({ source: obs.source });
    this.#push({ type: 'observation', obs });
  }

  /** Queues a reading of a port's ARP counters (ARP storms); never waits. */
  submitActivity(activity: PortActivity): void {
    this.#push({ type: 'port-activity', activity });
  }

  /** Queues a bridge-guard report of a spoofed frame; never waits. */
  submitSpoof(spoof: SpoofObservation): void {
    this.#push({ type: 'spoof', spoof });
  }

  /** Queues a reading of the bridge guard's counts on a port; never waits. */
  submitGuardActivity(activity: GuardActivity): void {
    this.#push({ type: 'guard-activity', activity });
  }

  /** A port joined the bridge (or was renamed). */
  portUp(ifindex: number, name: string): void {
    this.#o.detector.portUp(ifindex, name);
  }

  /** A port left the bridge: its claims end. */
  portGone(ifindex: number, at: number = this.#o.now()): void {
    this.#push({ type: 'port-gone', ifindex, at });
  }

  /** Queues a tick: expire stale claims, re-check leases, clear findings past their hold-down. */
  tick(at: number = this.#o.now()): void {
    this.#push({ type: 'tick', at });
  }

  /** Starts ticking every `tickMs` (skipped while the detector holds nothing to expire). */
  start(): void {
    this.#timer ??= setInterval(() => {
      if (!this.#o.detector.idle()) this.tick();
    }, this.#o.tickMs);
    this.#timer.unref();
  }

  /** Resolves once everything queued so far has been processed and written to the store. */
  async idle(): Promise<void> {
    while (this.#draining) await this.#draining;
    await this.#writes;
  }

  /** Stops ticking, finishes what is queued and stops accepting input. */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.idle();
    this.#closed = true;
  }

  #push(input: Input): void {
    if (this.#closed) return;
    if (this.#queue.length >= this.#o.maxQueue) {
      if (!this.#overrun) {
        this.#overrun = true;
        this.#o.log.warn(
          { maxQueue: this.#o.maxQueue },
          'detector input queue full; dropping observations until it drains',
        );
      }
      this.#o.metrics.resyncs.inc({ source: 'detector' });
      return;
    }
    this.#queue.push(input);
    if (this.#held) return;
    this.#draining ??= this.#drain().finally(() => (this.#draining = null));
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0);
      this.#overrun = false;
      let snapshot: StoreSnapshot;
      try {
        snapshot = await this.#o.store.snapshot();
      } catch (err) {
        this.#o.log.error(
          { err, dropped: batch.length },
          'detector cannot read leases; skipping a batch',
        );
        continue;
      }
      const leases = indexLeases(snapshot.leases);
      const changes = batch.flatMap((input) => this.#apply(input, leases));
      if (changes.length === 0) continue;
      this.#o.alerts.publish(changes, this.#o.detector.active());
      // Store writes (fsync) run in order on their own chain, never delaying the next batch.
      this.#writes = this.#writes.then(() => this.#feedBack(changes));
    }
  }

  #apply(input: Input, leases: LeaseIndex): FindingChange[] {
    const d = this.#o.detector;
    switch (input.type) {
      case 'observation':
        return d.observe(input.obs, leases);
      case 'port-activity':
        return d.portActivity(input.activity, leases);
      case 'spoof':
        return d.spoof(input.spoof, leases);
      case 'guard-activity':
        d.guardActivity(input.activity);
        return [];
      case 'port-gone':
        return d.portGone(input.ifindex, input.at, leases);
      case 'tick':
        return d.tick(input.at, leases);
    }
  }

  /** Quarantine, history and lifting of the detector's own quarantines. */
  async #feedBack(changes: readonly FindingChange[]): Promise<void> {
    const { store, detector, log } = this.#o;
    let quarantined: Map<string, string>;
    try {
      quarantined = new Map((await store.snapshot()).quarantine.map((q) => [q.ip, q.reason]));
    } catch (err) {
      log.error({ err }, 'detector cannot read quarantine; findings not recorded');
      return;
    }
    for (const { type, finding: f } of changes) {
      if (type === 'updated') continue;
      const at = new Date(this.#o.now());
      try {
        await store.appendEvent({
          at: at.toISOString(),
          kind: 'finding',
          ip: f.ip,
          sandbox: f.sandboxes[0] ?? null,
          detail: { finding: f.kind, event: type, ...f },
        });
        if (f.ip === null) continue; // an arp-storm: a port, no address to quarantine
        const held = quarantined.get(f.ip);
        if (type === 'raised' && f.quarantine && mayReplace(held, f.kind)) {
          const evidence = { id: f.id, macs: f.macs, ports: f.ports, sandboxes: f.sandboxes };
          await store.quarantine(
            { ip: f.ip, reason: f.kind, evidence, since: f.firstSeen, until: null },
            at,
          );
          quarantined.set(f.ip, f.kind);
          log.warn({ ip: f.ip, reason: f.kind }, `${f.ip} quarantined (${f.kind})`);
        }
        const reason = quarantined.get(f.ip);
        if (
          type === 'cleared' &&
          reason !== undefined &&
          OWN_REASONS.has(reason) &&
          !detector.isQuarantined(f.ip)
        ) {
          await store.clearQuarantine(f.ip, at, { by: 'detector', finding: f.id });
          quarantined.delete(f.ip);
          log.info({ ip: f.ip, reason }, `${f.ip} released from quarantine (${f.kind} cleared)`);
        }
      } catch (err) {
        log.error({ err, ip: f.ip, finding: f.id }, 'could not record a finding in the store');
      }
    }
  }
}
