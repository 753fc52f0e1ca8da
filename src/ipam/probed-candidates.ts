/**
 * The policy that takes the pre-handout ARP probe off the allocation path without weakening it:
 * an address is handed out only if a probe found it silent at most `FRESH_FOR_MS` ago (and the
 * live sources do not see it); the background prober keeps the next few candidates that fresh.
 * Pure: every function takes the time.
 *
 * Why 5 s. The probe is there for silent squatters: a host that holds an address but has not
 * spoken, so the passive observers (eBPF on every port, the neighbour table) cannot know it. One
 * present when the probe ran answers it. What a probe cannot vouch for is a squatter that appears
 * after it and stays silent until the handout; the bound caps that window at 5 s, and even such a
 * squatter is no silent duplicate for long: the new owner's first ARP makes it a `duplicate-ip`
 * finding within milliseconds and quarantines the address. A candidate is probed again once its
 * last silent probe is 4 s old (the one handed out is 0-4.1 s old; the rest of the bound is slack
 * for the probe's window and a busy event loop), so a few candidates cost one probe round every
 * 4 s: about 0.3 ms of CPU a second, against 1.2 ms with a 2 s bound refreshed every second
 * (measured idle, `perf stat` on the agent). Before this policy a probe vouched for an address
 * from the first handout since start for as long as the agent ran.
 *
 * How many. At least `MIN_CANDIDATES` (a runtime adding a sandbox now and then finds one
 * fresh); after a burst of allocations, twice what its busiest second handed out (new candidates
 * are probed as soon as they are next, every 50 ms while handing out), for a minute after it
 * (runtimes start sandboxes in bursts: the next one finds its candidates fresh from the first
 * allocation), at most `MAX_CANDIDATES` per probe batch: 128 frames a second at the very most
 * while refreshing, and only in that minute. A failed or absent probe never makes an address
 * fresh.
 *
 * @example
 * isFresh(silentAt, Date.now()); // true within 5 s of a silent probe
 * dueForProbe(['10.8.64.2', '10.8.64.3'], (ip) => ledger.get(ip), Date.now()); // those to probe now
 */

/** How long a silent probe vouches for an address (ms). */
export const FRESH_FOR_MS = 5000;
/** Age of its last silent probe at which a candidate is probed again (ms). */
export const REFRESH_AFTER_MS = 4000;
/** Candidates kept probed while nothing is allocated. */
export const MIN_CANDIDATES = 2;
/** Most candidates probed in one batch. */
export const MAX_CANDIDATES = 256;
/** How long the busiest second of a burst keeps its candidates probed (ms). */
export const DEMAND_HOLD_MS = 60_000;

/** How many handouts one second (since the epoch) saw. */
export interface SecondCount {
  /** Whole seconds since the epoch. */
  readonly second: number;
  /** Handouts in it. */
  readonly count: number;
}

/**
 * True when a probe that started at `silentAt` (ms since the epoch) and got no answer still
 * vouches for its address at `now`. No probe (undefined) is never fresh.
 *
 * @example
 * isFresh(1000, 5500); // true
 * isFresh(1000, 6001); // false
 */
export function isFresh(silentAt: number | undefined, now: number): boolean {
  return silentAt !== undefined && now - silentAt <= FRESH_FOR_MS && silentAt <= now;
}

/**
 * How many candidates to keep probed, given the busiest second of the last minute.
 *
 * @example
 * candidateTarget(0); // 2
 * candidateTarget(40); // 82
 */
export function candidateTarget(peakPerSecond: number): number {
  return Math.min(MAX_CANDIDATES, MIN_CANDIDATES + 2 * peakPerSecond);
}

/**
 * The candidates to probe now: never probed silent, or silent longer ago than the refresh age.
 *
 * @example
 * dueForProbe(['a', 'b'], (ip) => (ip === 'a' ? now - 200 : undefined), now); // ['b']
 */
export function dueForProbe(
  candidates: readonly string[],
  silentAt: (ip: string) => number | undefined,
  now: number,
): string[] {
  return candidates.filter((ip) => {
    const at = silentAt(ip);
    return at === undefined || now - at >= REFRESH_AFTER_MS;
  });
}

/**
 * How long until the first of `candidates` is due again (ms, at most the refresh age).
 *
 * @example
 * nextDueIn(['a'], () => now - 600, now); // 400
 */
export function nextDueIn(
  candidates: readonly string[],
  silentAt: (ip: string) => number | undefined,
  now: number,
): number {
  let wait = REFRESH_AFTER_MS;
  for (const ip of candidates) {
    const at = silentAt(ip);
    wait = Math.min(wait, at === undefined ? 0 : Math.max(0, at + REFRESH_AFTER_MS - now));
  }
  return wait;
}

/**
 * Counts one handout at `now` into per-second counts (the seconds older than the hold dropped).
 *
 * @example
 * let counts = countHandout([], now);
 * counts = countHandout(counts, now); // [{ second: floor(now / 1000), count: 2 }]
 */
export function countHandout(counts: readonly SecondCount[], now: number): SecondCount[] {
  const second = Math.floor(now / 1000);
  const last = counts.at(-1);
  if (last?.second === second) return [...counts.slice(0, -1), { second, count: last.count + 1 }];
  return [
    ...counts.filter((c) => (second - c.second) * 1000 < DEMAND_HOLD_MS),
    { second, count: 1 },
  ];
}

/**
 * The most handouts any second of the last `DEMAND_HOLD_MS` saw (0 when none did).
 *
 * @example
 * peakPerSecond([{ second: 5, count: 3 }, { second: 6, count: 9 }], 6500); // 9
 */
export function peakPerSecond(counts: readonly SecondCount[], now: number): number {
  const second = Math.floor(now / 1000);
  let peak = 0;
  for (const c of counts) {
    if ((second - c.second) * 1000 < DEMAND_HOLD_MS) peak = Math.max(peak, c.count);
  }
  return peak;
}

/**
 * True when this second or the one before saw a handout: candidates are being used up, so the
 * background prober goes round often instead of waiting for the next refresh.
 *
 * @example
 * handingOut([{ second: 6, count: 1 }], 7900); // true
 * handingOut([{ second: 6, count: 1 }], 8000); // false
 */
export function handingOut(counts: readonly SecondCount[], now: number): boolean {
  const last = counts.at(-1);
  return last !== undefined && last.second >= Math.floor(now / 1000) - 1;
}
