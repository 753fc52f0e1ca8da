/**
 * Exponential backoff with a cap, as a pure function of the attempt number.
 *
 * @example
 * backoffMs(1, { baseMs: 500, maxMs: 30_000 }); // 500
 * backoffMs(3, { baseMs: 500, maxMs: 30_000 }); // 2000
 */

/** Backoff settings. */
export interface Backoff {
  /** Delay before the first retry (ms). */
  readonly baseMs: number;
  /** Upper bound for any delay (ms). */
  readonly maxMs: number;
}

/** Delay before retry number `attempt` (1-based): base * 2^(attempt-1), capped at max. */
export function backoffMs(attempt: number, b: Backoff): number {
  return Math.min(b.maxMs, b.baseMs * 2 ** Math.max(0, attempt - 1));
}
