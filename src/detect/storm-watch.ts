/**
 * ARP storms, one finding per port: a port is storming while its counters show more ARP frames
 * than `framesPerSecond`, or new bindings over its in-kernel budget (a sender spoofing a new
 * address and MAC in every frame). Pure: fed with `PortActivity` facts (each carries its time)
 * and told which sandboxes are on the port; no I/O and no clock.
 *
 * A storm is raised at the first reading over a threshold, updated when spoofing starts or a
 * sandbox is newly named, resolved at the first reading under both thresholds (or when its port
 * leaves), and cleared once it stayed resolved for the hold-down. Its rates are those of the last
 * reading, with the storm's peaks.
 *
 * @example
 * const storms = new StormWatch({ holdDownMs: 60_000 });
 * storms.observe({ source: 'bpf', ifindex: 7, port: 'veth7', at: 1000, intervalMs: 1000,
 *   arpFrames: 20000, bindings: 100, limited: 19900 }, [{ sandbox: 'app-1', mac: null }]);
 * // [{ type: 'raised', finding: { kind: 'arp-storm', ports: ['veth7'], sandboxes: ['app-1'], ... } }]
 */
import type { PortActivity } from '../observe/types.js';
import type { Finding, FindingChange, StormRates } from './finding.js';
import { HeldFindings } from './held-findings.js';

/** Options of a storm watch. */
export interface StormWatchOptions {
  /** ARP frames per second on one port from which it is a storm (default 1000). */
  readonly framesPerSecond?: number;
  /** How long a storm must stay under the thresholds before its finding clears (ms). */
  readonly holdDownMs: number;
}

/** A sandbox found on a storming port: its id and its lease's MAC when known. */
export interface PortOwner {
  /** Sandbox id. */
  readonly sandbox: string;
  /** Its lease's MAC, or null. */
  readonly mac: string | null;
}

/** The default ARP rate from which a port is storming: far above any sandbox's own need. */
export const STORM_FRAMES_PER_SECOND = 1000;

interface Storm {
  readonly ifindex: number;
  port: string;
  readonly firstSeen: number;
  lastSeen: number;
  resolvedAt: number | null;
  readonly sandboxes: Set<string>;
  readonly macs: Set<string>;
  rates: Omit<StormRates, 'peakArpPerSecond' | 'peakLimitedPerSecond' | 'limitedTotal'>;
  peakArp: number;
  peakLimited: number;
  limitedTotal: number;
}

/** Most storm findings remembered at once (a port each). */
const MAX_STORMS = 4096;

/** The per-port ARP storm state machine. */
export class StormWatch {
  readonly #framesPerSecond: number;
  readonly #storms: HeldFindings<number, Storm>;

  /** A watch with no storms. */
  constructor(opts: StormWatchOptions) {
    this.#framesPerSecond = opts.framesPerSecond ?? STORM_FRAMES_PER_SECOND;
    this.#storms = new HeldFindings(opts.holdDownMs, (s, clearedAt) =>
      this.#toFinding(s, clearedAt),
    );
  }

  /** Feeds one reading of a port's counters; `owners` are the sandboxes on that port. */
  observe(a: PortActivity, owners: readonly PortOwner[]): FindingChange[] {
    const perSecond = (n: number) => (a.intervalMs > 0 ? Math.round((n * 1000) / a.intervalMs) : 0);
    const rates = {
      arpPerSecond: perSecond(a.arpFrames),
      bindingsPerSecond: perSecond(a.bindings),
      limitedPerSecond: perSecond(a.limited),
    };
    const storming = a.limited > 0 || rates.arpPerSecond >= this.#framesPerSecond;
    let s = this.#storms.get(a.ifindex);
    if (!storming) {
      if (s) {
        s.rates = rates;
        s.resolvedAt ??= a.at;
      }
      return [];
    }
    let type: FindingChange['type'] = 'updated';
    if (!s) {
      if (this.#storms.size >= MAX_STORMS) return [];
      s = {
        ifindex: a.ifindex,
        port: a.port,
        firstSeen: a.at,
        lastSeen: a.at,
        resolvedAt: null,
        sandboxes: new Set(),
        macs: new Set(),
        rates,
        peakArp: 0,
        peakLimited: 0,
        limitedTotal: 0,
      };
      this.#storms.set(a.ifindex, s);
      type = 'raised';
    }
    s.resolvedAt = null; // a storm back within its hold-down goes on
    const wasSpoofing = s.limitedTotal > 0;
    const named = s.sandboxes.size;
    s.port = a.port;
    s.lastSeen = a.at;
    s.rates = rates;
    s.peakArp = Math.max(s.peakArp, rates.arpPerSecond);
    s.peakLimited = Math.max(s.peakLimited, rates.limitedPerSecond);
    s.limitedTotal += a.limited;
    for (const o of owners) {
      s.sandboxes.add(o.sandbox);
      if (o.mac) s.macs.add(o.mac);
    }
    const grew = (!wasSpoofing && s.limitedTotal > 0) || s.sandboxes.size > named;
    return type === 'raised' || grew ? [{ type, finding: this.#toFinding(s, null) }] : [];
  }

  /** A port left the bridge: its storm (if any) is over from `at`. */
  portGone(ifindex: number, at: number): void {
    const s = this.#storms.get(ifindex);
    if (s && s.resolvedAt === null) s.resolvedAt = at;
  }

  /** Clears the storms that stayed resolved for the hold-down by `now`. */
  tick(now: number): FindingChange[] {
    return this.#storms.tick(now);
  }

  /** True while no storm is being tracked (nothing for `tick` to clear). */
  idle(): boolean {
    return this.#storms.idle();
  }

  /** Active storm findings (resolving ones included), oldest first. */
  active(): Finding[] {
    return this.#storms.active();
  }

  #toFinding(s: Storm, clearedAt: number | null): Finding {
    return {
      id: `arp-storm/if${s.ifindex}/${s.firstSeen}`,
      kind: 'arp-storm',
      ip: null,
      macs: [...s.macs].sort(),
      ports: [s.port],
      ifindexes: [s.ifindex],
      sandboxes: [...s.sandboxes].sort(),
      sources: ['bpf'],
      severity: 'warn',
      state: clearedAt === null ? 'active' : 'cleared',
      firstSeen: iso(s.firstSeen),
      lastSeen: iso(s.lastSeen),
      resolvedAt: s.resolvedAt === null ? null : iso(s.resolvedAt),
      clearedAt: clearedAt === null ? null : iso(clearedAt),
      quarantine: false,
      rates: {
        ...s.rates,
        peakArpPerSecond: s.peakArp,
        peakLimitedPerSecond: s.peakLimited,
        limitedTotal: s.limitedTotal,
      },
      spoof: null,
    };
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
