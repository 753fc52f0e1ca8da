/**
 * A per-source limit on failed token requests: after `maxFailures` failures within `windowMs`
 * the source is refused until the window ends. In memory and bounded (a restart forgets it, which
 * only forgives). The caller passes the time, so it is deterministic to test.
 *
 * @example
 * const limiter = new FailureLimiter({ maxFailures: 5, windowMs: 60_000, maxSources: 4096 });
 * if (limiter.retryAfterSeconds(ip, Date.now()) > 0) refuse();
 * limiter.recordFailure(ip, Date.now());
 */

/** Options of a `FailureLimiter`. */
export interface FailureLimiterOptions {
  /** Failures allowed per window; the next request is refused. */
  readonly maxFailures: number;
  /** Window length in milliseconds, counted from the window's first failure. */
  readonly windowMs: number;
  /** Most sources tracked at once; the oldest windows are dropped beyond it. */
  readonly maxSources: number;
}

interface Window {
  start: number;
  failures: number;
}

/** Counts failures per source in fixed windows. */
export class FailureLimiter {
  readonly #opts: FailureLimiterOptions;
  readonly #windows = new Map<string, Window>();

  /** Creates a limiter; every option must be a positive integer. */
  constructor(opts: FailureLimiterOptions) {
    for (const [k, v] of Object.entries(opts)) {
      if (!Number.isInteger(v) || v < 1)
        throw new RangeError(`FailureLimiter: ${k} must be a positive integer, got ${v}`);
    }
    this.#opts = opts;
  }

  /** Whole seconds until `source` may try again (at least 1), or 0 when it may now. */
  retryAfterSeconds(source: string, nowMs: number): number {
    const w = this.#current(source, nowMs);
    if (!w || w.failures < this.#opts.maxFailures) return 0;
    return Math.max(1, Math.ceil((w.start + this.#opts.windowMs - nowMs) / 1000));
  }

  /** Counts one failure of `source`. */
  recordFailure(source: string, nowMs: number): void {
    const w = this.#current(source, nowMs);
    if (w) {
      w.failures += 1;
      return;
    }
    this.#windows.set(source, { start: nowMs, failures: 1 });
    if (this.#windows.size > this.#opts.maxSources) this.#evict(nowMs);
  }

  /** Number of sources currently tracked. */
  get size(): number {
    return this.#windows.size;
  }

  #current(source: string, nowMs: number): Window | null {
    const w = this.#windows.get(source);
    if (!w) return null;
    if (nowMs - w.start >= this.#opts.windowMs) {
      this.#windows.delete(source);
      return null;
    }
    return w;
  }

  #evict(nowMs: number): void {
    for (const [source, w] of this.#windows) {
      if (nowMs - w.start >= this.#opts.windowMs) this.#windows.delete(source);
    }
    // Map iteration is insertion order: drop the oldest windows first.
    for (const source of this.#windows.keys()) {
      if (this.#windows.size <= this.#opts.maxSources) break;
      this.#windows.delete(source);
    }
  }
}
