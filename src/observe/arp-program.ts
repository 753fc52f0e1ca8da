/**
 * The loaded eBPF ARP observer (`bpf/arp_observer.bpf.o`) through the addon: attach/detach on
 * ports, map dumps and the event stream, parsed into the records of `arp-records.ts`. An adapter:
 * I/O and parsing only, no policy.
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
} from '../native.js';
import {
  BPF_NAMES,
  parseArpEvent,
  parseBindings,
  parsePortStats,
  type ArpEvent,
  type KernelBinding,
  type PortStats,
} from './arp-records.js';

/** Path of the compiled program. */
export const ARP_OBJECT_PATH = join(REPO_ROOT, 'bpf', 'arp_observer.bpf.o');

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
    const native = loadNative();
    if (!native.addon) throw new BridgewardError('MISSING_FEATURE', native.error);
    const { RingbufReader } = native.addon;
    return this.#call('reading the event ring buffer', () => {
      const fd = this.#obj.mapFd(BPF_NAMES.events);
      return new RingbufReader(fd, (records) => {
        const events: ArpEvent[] = [];
        for (const r of records) {
          const e = parseArpEvent(r);
          if (e) events.push(e);
          else onBadRecord();
        }
        if (events.length > 0) onEvents(events);
      });
    });
  }

  /** BPF_PROG_TEST_RUN on one frame arriving on `ifindex` (0: loopback); returns the tc verdict. */
  testRun(frame: Buffer, ifindex = 0): number {
    return this.#call('BPF_PROG_TEST_RUN', () =>
      this.#obj.testRun(BPF_NAMES.program, frame, ifindex),
    ).retval;
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
