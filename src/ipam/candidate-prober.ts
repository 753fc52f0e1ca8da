/**
 * The pre-handout check with the probe taken off the allocation path (policy:
 * `probed-candidates.ts`). A background loop keeps the next addresses the allocator would hand
 * out probed silent within the freshness bound; the check passes such an address at once and
 * probes any other on the allocation's path, as before. It asks the IPAM service for the
 * candidates and the prober for the probes; a probe that fails (no bridge, no MAC, no addon)
 * only means nothing is fresh.
 *
 * While addresses are being handed out the loop goes round every `BUSY_POLL_MS` after its probe
 * batch (which takes its window); otherwise it sleeps until a candidate is due again or a
 * handout wakes it. A handout that found its address stale wakes it too.
 *
 * @example
 * const candidates = new CandidateProber({
 *   candidates: (k) => ipam.nextCandidates(k),
 *   probe: (ips) => prober.probeMany(ips),
 *   silentAt: (ip) => prober.silentAt(ip),
 *   probeNow: (ip) => prober.preHandoutCheck(ip),
 *   log,
 * });
 * ipam.setPreHandoutCheck((ip) => candidates.check(ip));
 * candidates.start();
 */
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { LiveEvidence } from '../observe/types.js';
import {
  candidateTarget,
  countHandout,
  dueForProbe,
  handingOut,
  isFresh,
  nextDueIn,
  peakPerSecond,
  type SecondCount,
} from './probed-candidates.js';

/** What the background prober needs. */
export interface CandidateProberOptions {
  /** The next `k` addresses the allocator would hand out, in its order. */
  candidates(k: number): Promise<string[]>;
  /** Probes addresses in one batch, recording the silent ones; rejects when it cannot probe. */
  probe(ips: readonly string[]): Promise<void>;
  /** When the last silent probe of an address started, if any. */
  silentAt(ip: string): number | undefined;
  /** Probes one address now; evidence when anyone answered. */
  probeNow(ip: string): Promise<LiveEvidence | null>;
  /** Logger. */
  readonly log: Logger;
  /** Counts checks by result (fresh or probed). */
  readonly metrics?: Pick<Metrics, 'prehandoutChecks'>;
}

/** How often the loop goes round while allocations run (ms). */
const BUSY_POLL_MS = 50;
/** How long it waits after a failed round (ms). */
const RETRY_MS = 1000;

/** Keeps the next candidates probed and checks addresses before handout. */
export class CandidateProber {
  readonly #o: CandidateProberOptions;
  #handouts: SecondCount[] = [];
  #stopped = false;
  #failing = false;
  /** Ends the current sleep early (set while sleeping). */
  #wake: (() => void) | null = null;
  /** True while no handout happened this second or the one before. */
  #idle = false;

  /** Creates it; nothing is probed before `start()`. */
  constructor(opts: CandidateProberOptions) {
    this.#o = opts;
  }

  /** Starts the loop. */
  start(): void {
    void this.#loop();
  }

  /** Stops the loop (a batch in flight finishes). */
  stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }

  /**
   * The pre-handout check: null at once for an address probed silent within the bound, else the
   * result of probing it now. Counts the handout (more candidates are kept after a burst) and
   * wakes the loop when it is idle or fell behind.
   */
  async check(ip: string): Promise<LiveEvidence | null> {
    const now = Date.now();
    this.#handouts = countHandout(this.#handouts, now);
    const fresh = isFresh(this.#o.silentAt(ip), now);
    if (this.#idle || !fresh) this.#wake?.();
    this.#o.metrics?.prehandoutChecks.inc({ result: fresh ? 'fresh' : 'probed' });
    return fresh ? null : this.#o.probeNow(ip);
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      let wait: number;
      try {
        wait = await this.#round();
        if (this.#failing) this.#o.log.info('background probing works again');
        this.#failing = false;
      } catch (err) {
        if (!this.#failing) {
          this.#o.log.warn(
            { err },
            'background probe failed; allocations probe on their path until it works again',
          );
        }
        this.#failing = true;
        wait = RETRY_MS;
      }
      if (!this.#stopped) await this.#sleep(wait);
    }
  }

  /** Probes what is due; returns how long to wait before the next round. */
  async #round(): Promise<number> {
    const now = Date.now();
    const peak = peakPerSecond(this.#handouts, now);
    const candidates = await this.#o.candidates(candidateTarget(peak));
    const due = dueForProbe(candidates, this.#o.silentAt, now);
    if (due.length > 0) await this.#o.probe(due);
    this.#idle = !handingOut(this.#handouts, Date.now());
    if (!this.#idle) return BUSY_POLL_MS;
    return Math.max(BUSY_POLL_MS, nextDueIn(candidates, this.#o.silentAt, Date.now()));
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }
}
