/**
 * The eBPF observer: keeps the ARP program attached to every port of the current bridge (it
 * follows the bridge through `bridgeListener`: every port of every bridge instance, present and
 * future), turns ring-buffer events into `Observation`s, serves the in-kernel binding map as the
 * `bpf` `LiveSource`, and folds the per-port counters into Prometheus. Lost ring-buffer events
 * are made good by diffing a map dump against what was last reported.
 *
 * The program, its maps and the ring buffer live as long as the agent; only the attachments
 * belong to a bridge instance. Stopping leaves the filters attached and the maps pinned, so the
 * kernel keeps recording while the agent is down; the next start replaces the filters and reads
 * what was queued.
 *
 * @example
 * const bpf = await startBpfObserver({ pinDir: cfg.bpfPinDir, log, metrics,
 *   onObservation: (o) => pipeline.submit(o) });
 * bridge.listen(bpf.bridgeListener);
 * bpf.removeStale(await rtnl.links()); // filters left on former ports while the agent was down
 * const live = await bpf.source.live();
 * await bpf.close();
 */
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { EventReader } from '../native.js';
import { ArpProgram } from './arp-program.js';
import {
  bindingToObservation,
  changedBindings,
  eventToObservation,
  monoToEpochMs,
  type ArpEvent,
  type ClockPair,
  type KernelBinding,
  type KnownBinding,
  type PortStats,
} from './arp-records.js';
import { ensureBpffs } from './bpffs.js';
import type { BridgeListener } from '../bridge/lifecycle.js';
import type { LinkInfo } from './rtnl.js';
import type { LiveEvidence, LiveSource, Observation } from './types.js';

/** What `startBpfObserver` needs. */
export interface BpfObserverOptions {
  /** bpffs directory for the pinned maps (mounted when missing); null: nothing is pinned. */
  readonly pinDir: string | null;
  /** Logger. */
  readonly log: Logger;
  /** Metrics: per-port ARP and malformed counters, malformed frames, re-syncs. */
  readonly metrics: Pick<
    Metrics,
    'portArpFrames' | 'portMalformedFrames' | 'malformedFrames' | 'resyncs'
  >;
  /** Called for every binding that is new or changed MAC or port, and every new prober. */
  readonly onObservation: (o: Observation) => void;
  /** How often the per-port counters are read (ms, default 5000). */
  readonly statsIntervalMs?: number;
}

/** A running eBPF observer. */
export interface BpfObserver {
  /** Addresses bound in the kernel map on a current port. */
  readonly source: LiveSource;
  /** Attaches to every port of the current bridge as ports join; detaches as they leave. */
  readonly bridgeListener: BridgeListener;
  /** Removes the agent's filter from links that are not ports now (left while it was down). */
  removeStale(links: readonly LinkInfo[]): void;
  /** ifindex -> name of the ports the program is attached to. */
  ports(): ReadonlyMap<number, string>;
  /** The program's id and run-time totals (run time needs kernel.bpf_stats_enabled=1). */
  runStats(): { id: number; runTimeNs: number; runCnt: number };
  /** Reads the per-port counters now and updates the metrics (also done on a timer). */
  refreshStats(): void;
  /** Stops watching; filters stay attached and maps stay pinned. */
  close(): Promise<void>;
}

/** Longest a dump of the bindings map answers `live()` while no event arrives (ms). */
const LIVE_DUMP_MAX_AGE_MS = 1000;

/** Clock pair for turning kernel monotonic time into epoch ms. */
function clockNow(): ClockPair {
  return { monoNs: process.hrtime.bigint(), epochMs: Date.now() };
}

/**
 * Loads the program (reusing pinned maps) and starts reading the event ring buffer; ports are
 * attached through `bridgeListener`.
 *
 * @throws BridgewardError MISSING_FEATURE / MISSING_PRIVILEGE / KERNEL_ERROR when the program
 * cannot be loaded; nothing stays attached then.
 */
export async function startBpfObserver(opts: BpfObserverOptions): Promise<BpfObserver> {
  const { log, metrics } = opts;
  if (opts.pinDir) {
    if (await ensureBpffs(opts.pinDir)) log.info({ pinDir: opts.pinDir }, 'mounted bpffs');
  }
  const prog = ArpProgram.load(opts.pinDir);
  const ports = new Map<number, string>();
  const known = new Map<string, KnownBinding>();
  let baseline: Map<number, PortStats> | null = null;
  let closed = false;

  const emit = (o: Observation | null) => {
    if (o) opts.onObservation(o);
  };
  // The last dump of the bindings map, for `live()`: dumping walks every bucket of the map (tens
  // of microseconds even when nearly empty) and the IPAM asks once per allocation batch. Every new
  // or changed binding arrives as an event, and each event (or re-sync) drops the dump; its age is
  // bounded so last-seen times stay fresh and LRU evictions show.
  let dump: { readonly at: number; readonly bindings: readonly KernelBinding[] } | null = null;
  const onEvents = (events: ArpEvent[]) => {
    const clock = clockNow();
    for (const e of events) {
      if (e.kind !== 'probe') {
        known.set(e.ip, { mac: e.mac, ifindex: e.ifindex });
        dump = null;
      }
      emit(eventToObservation(e, clock));
    }
  };

  const attach = (link: LinkInfo) => {
    if (ports.get(link.index) === link.name) return;
    try {
      const progId = prog.attach(link.index);
      ports.set(link.index, link.name);
      log.debug({ port: link.name, ifindex: link.index, progId }, 'eBPF observer attached');
    } catch (e) {
      // The port may be gone again already (a racing delete); its leave event settles it.
      log.warn({ err: e, port: link.name, ifindex: link.index }, 'cannot attach eBPF observer');
    }
  };
  /** The port left the bridge: detach when the link still exists (moved off, bridge gone). */
  const forget = (ifindex: number) => {
    const name = ports.get(ifindex);
    if (name === undefined) return;
    ports.delete(ifindex);
    try {
      prog.detach(ifindex); // false when the link is gone with its filter
    } catch (e) {
      log.warn({ err: e, port: name, ifindex }, 'cannot detach eBPF observer');
    }
    log.debug({ port: name, ifindex }, 'eBPF observer detached');
  };
  /** A link that left the bridge while nobody watched may still carry our filter. */
  const removeStale = (links: readonly LinkInfo[]) => {
    for (const l of links) {
      if (ports.has(l.index)) continue;
      try {
        if (prog.attachedProgId(l.index) === null) continue;
        prog.detach(l.index);
        log.info({ port: l.name, ifindex: l.index }, 'removed eBPF observer from a former port');
      } catch (e) {
        log.warn(
          { err: e, link: l.name, ifindex: l.index },
          'cannot check link for a stale filter',
        );
      }
    }
  };

  const resync = (why: string) => {
    dump = null;
    const missed = changedBindings(known, prog.bindings());
    const clock = clockNow();
    for (const b of missed) {
      known.set(b.ip, { mac: b.mac, ifindex: b.ifindex });
      emit(bindingToObservation(b, clock));
    }
    metrics.resyncs.inc({ source: 'bpf' });
    log.warn({ why, replayed: missed.length }, 'eBPF observer fell behind; re-synced from the map');
  };

  const refreshStats = () => {
    if (closed) return;
    const stats = prog.portStats();
    const prev = baseline;
    baseline = stats;
    if (!prev) return; // first reading: counters count from here
    let lost = 0;
    for (const [ifindex, s] of stats) {
      const p = prev.get(ifindex) ?? { arp: 0, malformed: 0, mismatch: 0, events: 0, lost: 0 };
      const port = ports.get(ifindex) ?? String(ifindex);
      if (s.arp > p.arp) metrics.portArpFrames.inc({ port }, s.arp - p.arp);
      if (s.malformed > p.malformed) {
        metrics.portMalformedFrames.inc({ port }, s.malformed - p.malformed);
        metrics.malformedFrames.inc({ source: 'bpf' }, s.malformed - p.malformed);
      }
      lost += Math.max(0, s.lost - p.lost);
    }
    if (lost > 0) resync(`${lost} ring-buffer events lost`);
  };

  let reader: EventReader | null = null;
  let timer: NodeJS.Timeout | null = null;
  try {
    // What the kernel already knows counts as reported; changes queued while the agent was
    // down arrive through the ring buffer.
    for (const b of prog.bindings()) known.set(b.ip, { mac: b.mac, ifindex: b.ifindex });
    refreshStats();
    reader = prog.readEvents(onEvents, () =>
      log.error('eBPF event of unexpected size (bpf/arp_observer.h and arp-records.ts differ)'),
    );
    timer = setInterval(() => {
      try {
        refreshStats();
      } catch (err) {
        log.warn({ err }, 'cannot read eBPF port counters');
      }
    }, opts.statsIntervalMs ?? 5000);
    timer.unref();
  } catch (e) {
    reader?.close();
    prog.close();
    throw e;
  }
  log.info({ pinDir: opts.pinDir, progId: prog.runStats().id }, 'eBPF observer running');

  const source: LiveSource = {
    name: 'bpf',
    async live() {
      reader?.drain(); // events already in the ring buffer count (and drop a stale dump)
      const clock = clockNow();
      if (dump === null || clock.epochMs - dump.at > LIVE_DUMP_MAX_AGE_MS) {
        dump = { at: clock.epochMs, bindings: prog.bindings() };
      }
      const out = new Map<string, LiveEvidence>();
      for (const b of dump.bindings) {
        if (!ports.has(b.ifindex)) continue; // the port is gone: so is the binding
        out.set(b.ip, {
          ip: b.ip,
          macs: [b.mac],
          ifindexes: [b.ifindex],
          sources: ['bpf'],
          lastSeen: monoToEpochMs(b.lastSeenNs, clock),
        });
      }
      return out;
    },
  };

  return {
    source,
    bridgeListener: {
      portUp: (port) => attach(port),
      portGone: (ifindex) => forget(ifindex),
    },
    removeStale,
    ports: () => new Map(ports),
    runStats: () => prog.runStats(),
    refreshStats,
    async close() {
      if (closed) return;
      closed = true;
      if (timer) clearInterval(timer);
      reader?.close();
      prog.close();
    },
  };
}
