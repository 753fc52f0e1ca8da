/**
 * Shared shape and statistics of the side-by-side benchmarks.
 *
 * @example
 * median([3, 1, 2]); // 2
 */

/** A benchmark: runs bridgeward and its peer and returns figures (null + notes when unmeasurable). */
export interface Benchmark {
  /** Runs the benchmark with its own argv; resolves to the figures (without the `bench` key). */
  run(argv: string[]): Promise<Record<string, unknown>>;
}

/** The q-quantile (0..1) of samples, nearest-rank. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

/** The median of samples. */
export function median(samples: readonly number[]): number {
  return quantile(samples, 0.5);
}

/** Writes a progress line to stderr (stdout's last line is reserved for the JSON result). */
export function progress(text: string): void {
  process.stderr.write(`${text}\n`);
}

/**
 * A figure for the JSON line: rounded to `digits` decimals, null when it could not be measured.
 *
 * @example
 * rounded(3.14159, 2); // 3.14
 * rounded(NaN); // null
 */
export function rounded(x: number | null, digits = 2): number | null {
  return x === null || !Number.isFinite(x) ? null : Number(x.toFixed(digits));
}
