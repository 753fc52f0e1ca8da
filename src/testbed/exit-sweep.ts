/**
 * Destroys what tests and benches left standing when the process exits or is interrupted
 * (SIGINT/SIGTERM, re-raised afterwards), so no namespace, link or mount outlives a run.
 *
 * @example
 * const live = new Set<Testbed>();
 * destroyOnExit(live); // live.add(bed) ... live.delete(bed) once destroyed
 */

/** Something that can tear itself down synchronously. */
export interface Destroyable {
  destroySync(): void;
}

const sets: ReadonlySet<Destroyable>[] = [];

/** Sweeps `live` at exit, after the sets registered before it; registering twice is harmless. */
export function destroyOnExit(live: ReadonlySet<Destroyable>): void {
  if (sets.includes(live)) return;
  sets.push(live);
  if (sets.length > 1) return;
  const sweep = () => {
    for (const set of sets) for (const x of set) x.destroySync();
  };
  process.on('exit', sweep);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      sweep();
      process.kill(process.pid, sig);
    });
  }
}
