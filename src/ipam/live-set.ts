/**
 * Merges what several live sources report into one map of evidence per address.
 *
 * @example
 * const live = await collectLive([neighbours, bpf]);
 * live.has('10.8.64.2');
 */
import type { LiveEvidence, LiveSource } from '../observe/types.js';

/**
 * Asks every source and merges their evidence (MACs, ports and sources united, latest sighting
 * kept). A source that fails is reported through `onError` and contributes nothing.
 */
export async function collectLive(
  sources: readonly LiveSource[],
  onError: (source: LiveSource, e: unknown) => void,
): Promise<Map<string, LiveEvidence>> {
  const maps = await Promise.all(
    sources.map((s) =>
      s.live().catch((e: unknown) => {
        onError(s, e);
        return new Map<string, LiveEvidence>();
      }),
    ),
  );
  const out = new Map<string, LiveEvidence>();
  for (const m of maps)
    for (const ev of m.values()) out.set(ev.ip, mergeEvidence(out.get(ev.ip), ev));
  return out;
}

/** Unites two pieces of evidence about one address. */
export function mergeEvidence(a: LiveEvidence | undefined, b: LiveEvidence): LiveEvidence {
  if (!a) return b;
  return {
    ip: a.ip,
    macs: [...new Set([...a.macs, ...b.macs])],
    ifindexes: [...new Set([...a.ifindexes, ...b.ifindexes])],
    sources: [...new Set([...a.sources, ...b.sources])],
    lastSeen: Math.max(a.lastSeen, b.lastSeen),
  };
}
