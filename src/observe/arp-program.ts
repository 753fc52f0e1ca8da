/**
 * The loaded eBPF ARP observer (`bpf/arp_observer.bpf.o`) through the addon: clsact filters and
 * TCX links on ports, the binding budget, map dumps and the event stream, parsed into the records
 * of `arp-records.ts`. An adapter: I/O and parsing only, no policy (which attachment a port gets
 * is `port-attachments.ts`'s call).
 *
 * @example
 * const prog = ArpProgram.load('/sys/fs/bpf/bridgeward');
 * prog.attach(7);
 * const reader = prog.readEvents((events) => console.log(events));
 * reader.close();
 * prog.close();
 */
import { join } from 'node:path';
import { BridgewardError } from '../errors.js';
import {
  REPO_ROOT,
  loadNative,
  nativeFailure,
  type BpfObjectHandle,
  type EventReader,
  type LinkInfoRecord,
} from '../native.js';
import {
  BPF_NAMES,
  encodeConfig,
  ifindexKey,
  parseArpEvent,
  parseBindings,
  parsePortStats,
  type ArpEvent,
  type BindingBudget,
  type KernelBinding,
  type MapDump,
  type PortStats,
} from './arp-records.js';

/** Path of the compiled program. */
export const ARP_OBJECT_PATH = join(REPO_ROOT, 'bpf', 'arp_observer.bpf.o');

/**
 * Raw access to the loaded object's maps by name, for a part that owns other maps of the same
 * program (the bridge guard's, `src/guard/`). Failures are BridgewardErrors (KERNEL_ERROR,
 * MISSING_PRIVILEGE).
 *
 * @example
 * prog.maps().update('bw_guard_config', ifindexKey(0), config);
 */
export interface BpfMaps {
  /** Creates or replaces one entry (not of a per-CPU map). */
  update(map: string, key: Buffer, value: Buffer): void;
  /** Deletes one entry; false when there was none. */
  delete(map: string, key: Buffer): boolean;
  /** One entry's value, or null when there is none (not of a per-CPU map). */
  lookup(map: string, key: Buffer): Buffer | null;
  /** Every entry. */
  dump(map: string): MapDump;
  /** Reads a ring-buffer map: `onRecords` gets each batch of raw records, queued ones first. */
  readRing(map: string, onRecords: (records: Buffer[]) => void): EventReader;
}

/** The ARP observer program and its maps, loaded in this process. */
export class ArpProgram {
  readonly #obj: BpfObjectHandle;

  private constructor(obj: BpfObjectHandle) {
    this.#obj = obj;
  }

  /**
   * Loads the program. With `pinDir` (on a bpffs) its maps are pinned there, or reused from a
   * previous run; with null they live only as long as the program.
   *
   * @throws BridgewardError MISSING_FEATURE without the addon; MISSING_PRIVILEGE or KERNEL_ERROR
   * when the kernel refuses.
   */
  static load(pinDir: string | null, path: string = ARP_OBJECT_PATH): ArpProgram {
    const native = loadNative();
    if (!native.addon) throw new BridgewardError('MISSING_FEATURE', native.error);
    try {
      return new ArpProgram(new native.addon.BpfObject(path, pinDir));
    } catch (e) {
      throw nativeFailure(e, 'loading the eBPF ARP observer');
    }
  }

  /** Attaches to the ingress of port `ifindex` (replacing bridgeward's earlier filter there); returns the prog id. */
  attach(ifindex: number): number {
    return this.#call(`attaching to ifindex ${ifindex}`, () =>
      this.#obj.tcAttach(BPF_NAMES.program, ifindex),
    );
  }

  /** Detaches bridgeward's filter from `ifindex`; false when there was none or the port is gone. */
  detach(ifindex: number): boolean {
    return this.#call(`detaching from ifindex ${ifindex}`, () => this.#obj.tcDetach(ifindex));
  }

  /** Prog id of bridgeward's filter on `ifindex`, or null when none is attached. */
  attachedProgId(ifindex: number): number | null {
    return this.#call(`querying ifindex ${ifindex}`, () => this.#obj.tcQuery(ifindex));
  }

  /**
   * Attaches to the TCX ingress of port `ifindex` with a link pinned at `pinPath`; returns the
   * link id. A NativeError-derived KERNEL_ERROR with `details.errno` EINVAL on kernels without TCX.
   */
  attachLink(ifindex: number, pinPath: string): number {
    return this.#call(`attaching a tcx link to ifindex ${ifindex}`, () =>
      this.#obj.tcxAttach(BPF_NAMES.program, ifindex, pinPath),
    );
  }

  /** The link pinned at `pinPath`, or null when none is. */
  link(pinPath: string): LinkInfoRecord | null {
    return this.#call(`reading link ${pinPath}`, () => this.#obj.linkInfo(pinPath));
  }

  /** Makes the link pinned at `pinPath` run this program (replacing an earlier agent's). */
  updateLink(pinPath: string): void {
    this.#call(`updating link ${pinPath}`, () => this.#obj.linkUpdate(pinPath, BPF_NAMES.program));
  }

  /** Detaches and unpins the link pinned at `pinPath`; false when there was none. */
  unpinLink(pinPath: string): boolean {
    return this.#call(`removing link ${pinPath}`, () => this.#obj.linkUnpin(pinPath));
  }

  /** Sets the per-port budget for new or changed bindings (applies to the next frame). */
  setBudget(budget: BindingBudget): void {
    this.#call('setting the binding budget', () =>
      this.#obj.mapUpdate(BPF_NAMES.config, ifindexKey(0), encodeConfig(budget)),
    );
  }

  /** Forgets a port's counters and budget (it left the bridge; its ifindex may come back). */
  forgetPort(ifindex: number): void {
    this.#call(`forgetting ifindex ${ifindex}`, () => {
      this.#obj.mapDelete(BPF_NAMES.portStats, ifindexKey(ifindex));
      this.#obj.mapDelete(BPF_NAMES.portBudget, ifindexKey(ifindex));
    });
  }

  /** Every ip -> binding the kernel holds. */
  bindings(): KernelBinding[] {
    return parseBindings(
      this.#call('dumping bindings', () => this.#obj.mapDump(BPF_NAMES.bindings)),
    );
  }

  /** Every probed ip -> last prober the kernel holds. */
  probes(): KernelBinding[] {
    return parseBindings(this.#call('dumping probes', () => this.#obj.mapDump(BPF_NAMES.probes)));
  }

  /** Per-port counters, by ifindex. */
  portStats(): Map<number, PortStats> {
    return parsePortStats(
      this.#call('dumping port counters', () => this.#obj.mapDump(BPF_NAMES.portStats)),
    );
  }

  /**
   * Reads the event ring buffer: `onEvents` gets each batch, parsed; `onBadRecord` is told about
   * records of the wrong size (a header/TS mismatch). Events queued while nobody read come first.
   */
  readEvents(
    onEvents: (events: ArpEvent[]) => void,
    onBadRecord: () => void = () => undefined,
  ): EventReader {
    return readRecords(this.maps(), BPF_NAMES.events, parseArpEvent, onEvents, onBadRecord);
  }

  /** The object's maps by name (see `BpfMaps`). */
  maps(): BpfMaps {
    return {
      update: (map, key, value) =>
        this.#call(`updating ${map}`, () => this.#obj.mapUpdate(map, key, value)),
      delete: (map, key) => this.#call(`deleting from ${map}`, () => this.#obj.mapDelete(map, key)),
      lookup: (map, key) => this.#call(`reading ${map}`, () => this.#obj.mapLookup(map, key)),
      dump: (map) => this.#call(`dumping ${map}`, () => this.#obj.mapDump(map)),
      readRing: (map, onRecords) => {
        const native = loadNative();
        if (!native.addon) throw new BridgewardError('MISSING_FEATURE', native.error);
        const { RingbufReader } = native.addon;
        return this.#call(`reading the ring buffer ${map}`, () => {
          return new RingbufReader(this.#obj.mapFd(map), onRecords);
        });
      },
    };
  }

  /** BPF_PROG_TEST_RUN on one frame arriving on `ifindex` (0: loopback); returns the tc verdict. */
  testRun(frame: Buffer, ifindex = 0): number {
    return this.#call('BPF_PROG_TEST_RUN', () =>
      this.#obj.testRun(BPF_NAMES.program, frame, ifindex),
    ).retval;
  }

  /**
   * Mean ns per run of BPF_PROG_TEST_RUN on one frame arriving on `ifindex` (0: loopback),
   * repeated `repeat` times (the program alone).
   */
  testRunNs(frame: Buffer, repeat: number, ifindex = 0): number {
    return this.#call('BPF_PROG_TEST_RUN', () =>
      this.#obj.testRun(BPF_NAMES.program, frame, ifindex, repeat),
    ).durationNs;
  }

  /** Program id and cumulative run time/count (run time needs kernel.bpf_stats_enabled=1). */
  runStats(): { id: number; runTimeNs: number; runCnt: number } {
    return this.#call('reading program info', () => this.#obj.progInfo(BPF_NAMES.program));
  }

  /** Releases this process's handles; attached filters and pinned maps stay in the kernel. */
  close(): void {
    this.#obj.close();
  }

  #call<T>(what: string, f: () => T): T {
    try {
      return f();
    } catch (e) {
      throw nativeFailure(e, what);
    }
  }
}

/**
 * Reads ring-buffer map `map` and parses each record with `parse`: `onEvents` gets each batch's
 * parsed records, `onBadRecord` hears of each record `parse` refused (a header/TS mismatch).
 *
 * @example
 * readRecords(prog.maps(), 'bw_events', parseArpEvent, (events) => handle(events), () => log.error('bad record'));
 */
export function readRecords<T>(
  maps: BpfMaps,
  map: string,
  parse: (record: Buffer) => T | null,
  onEvents: (events: T[]) => void,
  onBadRecord: () => void,
): EventReader {
  return maps.readRing(map, (records) => {
    const events: T[] = [];
    for (const r of records) {
      const e = parse(r);
      if (e) events.push(e);
      else onBadRecord();
    }
    if (events.length > 0) onEvents(events);
  });
}
