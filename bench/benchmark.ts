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
 * A positive numeric flag `--name N` from a benchmark's argv, or `dflt` when absent.
 *
 * @example numberFlag(['--rounds', '3'], 'rounds', 5) // 3
 * @throws Error when the value is not a positive number.
 */
export function numberFlag(argv: readonly string[], name: string, dflt: number): number {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

/** A string flag `--name VALUE`, or undefined. @example stringFlag(['--attach', 'tcx'], 'attach') // 'tcx' */
export function stringFlag(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? undefined : argv[i + 1];
}

/** A figure rounded to `d` decimals for the JSON line; null when unmeasured. @example rounded(1.23456) // 1.235 */
export function rounded(x: number | null | undefined, d = 3): number | null {
  return x === null || x === undefined || !Number.isFinite(x) ? null : Number(x.toFixed(d));
}
