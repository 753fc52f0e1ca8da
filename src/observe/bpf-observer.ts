/**
 * The eBPF observer: keeps the ARP program attached to every port of the current bridge (it
 * follows the bridge through `bridgeListener`: every port of every bridge instance, present and
 * future; TCX links or clsact filters, see `port-attachments.ts`), turns ring-buffer events into
 * `Observation`s, serves the in-kernel binding map as the `bpf` `LiveSource`, sets the per-port
 * budget for new bindings, and reads the per-port counters every `statsIntervalMs`: into
 * Prometheus, and as one `PortActivity` per port for the detector (ARP storms). Lost ring-buffer
 * events are made good by diffing a map dump against what was last reported.
 *
 * The program, its maps and the ring buffer live as long as the agent; only the attachments
 * belong to a bridge instance. Stopping leaves the attachments in place and the maps pinned, so
 * the kernel keeps recording while the agent is down; the next start takes the attachments over
 * and reads what was queued. What user space remembers of the kernel's bindings is bounded like
 * the map itself, so a storm of spoofed bindings cannot grow the agent.
 *
 * @example
 * const bpf = await startBpfObserver({ pinDir: cfg.bpfPinDir, log, metrics,
 *   onObservation: (o) => pipeline.submit(o), onPortActivity: (a) => pipeline.submitActivity(a) });
 * bridge.listen(bpf.bridgeListener);
 * bpf.removeStale(await rtnl.links()); // attachments left on former ports while the agent was down
 * const live = await bpf.source.live();
 * await bpf.close();
 */
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { EventReader } from '../native.js';
import { ArpProgram, type BpfMaps } from './arp-program.js';
import {
  bindingToObservation,
  changedBindings,
  eventToObservation,
  monoToEpochMs,
  ZERO_PORT_STATS,
  type ArpEvent,
  type BindingBudget,
  type ClockPair,
  type KernelBinding,
  type KnownBinding,
  type PortStats,
} from './arp-records.js';
import { ensureBpffs } from './bpffs.js';
import { BoundedMap } from './bounded-map.js';
import { PortAttachments, type AttachMode } from './port-attachments.js';
import type { BridgeListener } from '../bridge/lifecycle.js';
import type { LinkInfo } from './rtnl.js';
import type { LiveEvidence, LiveSource, Observation, PortActivity } from './types.js';

/** What `startBpfObserver` needs. */
export interface BpfObserverOptions {
  /** bpffs directory for the pinned maps (mounted when missing); null: nothing is pinned. */
  readonly pinDir: string | null;
  /** Logger. */
  readonly log: Logger;
  /** Metrics: per-port ARP and malformed counters, malformed frames, re-syncs. */
  readonly metrics: Pick<
    Metrics,
    'portArpFrames' | 'portLimitedBindings' | 'portMalformedFrames' | 'malformedFrames' | 'resyncs'
  >;
  /** Called for every binding that is new or changed MAC or port, and every new prober. */
  readonly onObservation: (o: Observation) => void;
  /** Called with each attached port's counters when they are read: every reading with ARP, and the first silent one after it. */
  readonly onPortActivity?: (a: PortActivity) => void;
  /** How often the per-port counters are read (ms, default 1000). */
  readonly statsIntervalMs?: number;
  /** New or changed bindings each port may record (default `DEFAULT_BINDING_BUDGET`). */
  readonly budget?: BindingBudget;
  /** How the program is attached to new ports (default 'tcx', which falls back to 'clsact'). */
  readonly attach?: AttachMode;
}

/**
 * The default per-port budget: 100 new or changed bindings a second, 200 at once. A sandbox
 * claims a handful of addresses in its life; a spoofing storm is held to this rate.
 */
export const DEFAULT_BINDING_BUDGET: BindingBudget = { perSecond: 100, burst: 200 };

/** Most bindings user space remembers as reported: the kernel map's size (BW_BINDINGS_MAX). */
const KNOWN_MAX = 65_536;

/** A running eBPF observer. */
export interface BpfObserver {
  /** Addresses bound in the kernel map on a current port. */
  readonly source: LiveSource;
  /** Attaches to every port of the current bridge as ports join; detaches as they leave. */
  readonly bridgeListener: BridgeListener;
  /** Removes the agent's attachments from links that are not ports now (left while it was down). */
  removeStale(links: readonly LinkInfo[]): void;
  /** How new ports get the program ('tcx' or, on older kernels or without a pin dir, 'clsact'). */
  attachMode(): AttachMode;
  /** ifindex -> name of the ports the program is attached to. */
  ports(): ReadonlyMap<number, string>;
  /** The program's id and run-time totals (run time needs kernel.bpf_stats_enabled=1). */
  runStats(): { id: number; runTimeNs: number; runCnt: number };
  /** The program's maps by name (the bridge guard's live in the same program). */
  maps(): BpfMaps;
  /** Reads the per-port counters now and updates the metrics (also done on a timer). */
  refreshStats(): void;
  /** Stops watching; filters stay attached and maps stay pinned. */
  close(): Promise<void>;
}

/** A binding an event reported since the last dump of the bindings map. */
interface EventBinding {
  readonly mac: string;
  readonly ifindex: number;
  readonly lastSeenNs: bigint;
}

/**
 * Longest a dump of the bindings map answers `live()` (ms). Events are laid over it and the
 * re-sync after lost events drops it at once; the age bound only refreshes last-seen times and
 * shows LRU evictions (an evicted binding stays live until then: the safe side).
 */
const LIVE_DUMP_MAX_AGE_MS = 30_000;

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
  const known = new BoundedMap<string, KnownBinding>(KNOWN_MAX);
  let baseline: Map<number, PortStats> | null = null;
  let baselineAt = Date.now();
  /** Ports whose last reading was silent (not reported again while they stay so). */
  const silentPorts = new Set<number>();
  let closed = false;

  const emit = (o: Observation | null) => {
    if (o) opts.onObservation(o);
  };
  // The last dump of the bindings map, for `live()`: dumping walks every bucket of the map
  // (0.1-0.3 ms even when nearly empty, far more when a storm has filled it) and the IPAM asks
  // once per allocation batch and once per background probe round. Every new or changed binding
  // arrives as an event, laid over the dump until the next one; a loss shows in a counter read
  // every second, and the re-sync drops the dump.
  let dump: { readonly at: number; readonly bindings: readonly KernelBinding[] } | null = null;
  let sinceDump = new Map<string, EventBinding>();
  const onEvents = (events: ArpEvent[]) => {
    const clock = clockNow();
    for (const e of events) {
      if (e.kind !== 'probe') {
        known.set(e.ip, { mac: e.mac, ifindex: e.ifindex });
        sinceDump.set(e.ip, { mac: e.mac, ifindex: e.ifindex, lastSeenNs: e.tsNs });
      }
      emit(eventToObservation(e, clock));
    }
  };

  let attachments: PortAttachments;
  const attach = (link: LinkInfo) => {
    if (ports.get(link.index) === link.name) return;
    try {
      const mode = attachments.attach(link.index);
      ports.set(link.index, link.name);
      log.debug({ port: link.name, ifindex: link.index, mode }, 'eBPF observer attached');
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
    silentPorts.delete(ifindex);
    baseline?.delete(ifindex); // its counters go with it (a later port may get its ifindex)
    try {
      attachments.detach(ifindex); // false when the link is gone with its attachment
      prog.forgetPort(ifindex);
    } catch (e) {
      log.warn({ err: e, port: name, ifindex }, 'cannot detach eBPF observer');
    }
    log.debug({ port: name, ifindex }, 'eBPF observer detached');
  };
  /** A link that left the bridge while nobody watched may still carry our program. */
  const removeStale = (links: readonly LinkInfo[]) => {
    try {
      for (const ifindex of attachments.removeStale((i) => ports.has(i), links)) {
        log.info({ ifindex }, 'removed eBPF observer from a former port');
      }
    } catch (e) {
      log.warn({ err: e }, 'cannot check links for stale eBPF attachments');
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
    if (ports.size === 0 && baseline !== null) {
      // Nothing attached, nothing to count (a reading walks the whole counters map). A port's
      // entry is made by its first frame and removed when it leaves, so the baseline stays
      // right for the next port: its frames since it was attached are counted, in this interval.
      baselineAt = Date.now();
      return;
    }
    const stats = prog.portStats();
    const prev = baseline;
    baseline = stats;
    if (!prev) {
      baselineAt = Date.now();
      return; // first reading: counters count from here
    }
    const at = Date.now();
    const intervalMs = at - baselineAt;
    baselineAt = at;
    let lost = 0;
    for (const [ifindex, name] of ports) {
      const s = stats.get(ifindex) ?? ZERO_PORT_STATS;
      const p = prev.get(ifindex) ?? ZERO_PORT_STATS;
      const arpFrames = Math.max(0, s.arp - p.arp);
      const limited = Math.max(0, s.limited - p.limited);
      const bindings = Math.max(0, s.events + s.lost - p.events - p.lost);
      // A silent port is reported once (it ends a storm), then not again until it speaks.
      const silent = arpFrames === 0 && limited === 0 && bindings === 0;
      if (silent && silentPorts.has(ifindex)) continue;
      if (silent) silentPorts.add(ifindex);
      else silentPorts.delete(ifindex);
      opts.onPortActivity?.({
        source: 'bpf',
        ifindex,
        port: name,
        at,
        intervalMs,
        arpFrames,
        bindings,
        limited,
      });
    }
    for (const [ifindex, s] of stats) {
      const p = prev.get(ifindex) ?? ZERO_PORT_STATS;
      const port = ports.get(ifindex) ?? String(ifindex);
      if (s.arp > p.arp) metrics.portArpFrames.inc({ port }, s.arp - p.arp);
      if (s.limited > p.limited) metrics.portLimitedBindings.inc({ port }, s.limited - p.limited);
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
    prog.setBudget(opts.budget ?? DEFAULT_BINDING_BUDGET);
    attachments = new PortAttachments(prog, opts.pinDir, opts.attach ?? 'tcx', log);
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
    }, opts.statsIntervalMs ?? 1000);
    timer.unref();
  } catch (e) {
    reader?.close();
    prog.close();
    throw e;
  }
  log.info(
    { pinDir: opts.pinDir, progId: prog.runStats().id, attach: attachments.mode },
    'eBPF observer running',
  );

  const source: LiveSource = {
    name: 'bpf',
    async live() {
      reader?.drain(); // events already in the ring buffer count
      const clock = clockNow();
      if (dump === null || clock.epochMs - dump.at > LIVE_DUMP_MAX_AGE_MS) {
        dump = { at: clock.epochMs, bindings: prog.bindings() };
        sinceDump = new Map();
      }
      const out = new Map<string, LiveEvidence>();
      const add = (ip: string, b: EventBinding) => {
        if (!ports.has(b.ifindex)) return; // the port is gone: so is the binding
        out.set(ip, {
          ip,
          macs: [b.mac],
          ifindexes: [b.ifindex],
          sources: ['bpf'],
          lastSeen: monoToEpochMs(b.lastSeenNs, clock),
        });
      };
      for (const b of dump.bindings) add(b.ip, b);
      for (const [ip, b] of sinceDump) add(ip, b); // newer than the dump: they win
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
    attachMode: () => attachments.mode,
    ports: () => new Map(ports),
    runStats: () => prog.runStats(),
    maps: () => prog.maps(),
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
