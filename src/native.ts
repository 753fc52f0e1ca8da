/**
 * Loads the N-API addon (`native/`) and describes its functions with TypeScript types. The addon
 * does syscalls only; everything it returns is raw data that TypeScript parses.
 *
 * @example
 * const n = loadNative();
 * if (n.addon) console.log(n.addon.version().libbpf);
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { BridgewardError } from './errors.js';

/** The functions the addon exports. */
export interface NativeAddon {
  /** Addon and libbpf versions. */
  version(): { addon: string; libbpf: string };
  /**
   * Runs one libnftables command buffer (one kernel transaction, all-or-nothing) in this
   * process's network namespace, with one context reused per process. `json` selects JSON
   * output (`list` commands). Never throws for nft failures: `rc` is non-zero and `error` holds
   * libnftables' message.
   *
   * @example
   * const r = addon.nftRun('list tables', false); // { rc: 0, output: 'table inet bridgeward\n', error: '' }
   */
  nftRun(cmd: string, json: boolean): NftResult;
  /**
   * Opens and loads an eBPF object file. With `pinDir` (a bpffs directory), maps declared
   * `LIBBPF_PIN_BY_NAME` are pinned there and maps already pinned there are reused; with null
   * nothing is pinned. Throws a `NativeError` on failure.
   *
   * @example
   * const obj = new addon.BpfObject('bpf/arp_observer.bpf.o', '/sys/fs/bpf/bridgeward');
   */
  BpfObject: new (path: string, pinDir: string | null) => BpfObjectHandle;
  /**
   * Reads a BPF ring buffer (by map fd) on the JS thread, handing records to `onRecords` in
   * batches; records already queued come first. `drain()` hands over what is queued right now,
   * synchronously. Keeps the event loop alive until `close()`.
   *
   * @example
   * const r = new addon.RingbufReader(obj.mapFd('bw_events'), (recs) => handle(recs));
   */
  RingbufReader: new (mapFd: number, onRecords: (records: Buffer[]) => void) => EventReader;
  /**
   * An AF_PACKET raw socket bound to `ifindex` and `ethertype`: `send` transmits a whole
   * Ethernet frame; `onFrames` receives every frame of that ethertype arriving on the interface
   * (never the socket's own) while listening (`listening`, default true; `listen(on)` switches,
   * cheaply: a socket filter; `listen(program)` takes only the frames a classic BPF program of
   * `struct sock_filter` records accepts). Keeps the event loop alive until `close()`.
   *
   * @example
   * const s = new addon.PacketSocket(ifindex, 0x0806, (frames) => frames.forEach(parse), false);
   * s.listen(true);
   * s.send(frame);
   */
  PacketSocket: new (
    ifindex: number,
    ethertype: number,
    onFrames: (frames: Buffer[]) => void,
    listening?: boolean,
  ) => Closable & { send(frame: Buffer): void; listen(on: boolean | Buffer): void };
}

/** Something that holds kernel resources until closed. */
export interface Closable {
  /** Releases the resources; idempotent. */
  close(): void;
}

/** A ring-buffer reader (`RingbufReader`). */
export interface EventReader extends Closable {
  /** Hands the records queued right now to the callback, before this function returns. */
  drain(): void;
}

/**
 * A loaded eBPF object. tc filters use bridgeward's fixed handle and priority, so attaching
 * replaces bridgeward's earlier filter on that port and detaching leaves others' alone.
 */
export interface BpfObjectHandle extends Closable {
  /** Attaches program `prog` to the clsact ingress hook of `ifindex` (created when missing); returns the prog id. */
  tcAttach(prog: string, ifindex: number): number;
  /** Removes bridgeward's ingress filter from `ifindex`; false when there was none or the device is gone. */
  tcDetach(ifindex: number): boolean;
  /** Prog id of bridgeward's ingress filter on `ifindex`, or null. */
  tcQuery(ifindex: number): number | null;
  /**
   * Attaches program `prog` to the TCX ingress of `ifindex` (BPF_LINK_CREATE, kernel >= 6.6) and
   * pins the link at `pinPath` (which must not exist), so it outlives the process; returns the
   * link id. Throws EINVAL on kernels without TCX.
   */
  tcxAttach(prog: string, ifindex: number, pinPath: string): number;
  /** The link pinned at `pinPath`, or null when none is; `ifindex` is 0 once its device is gone. */
  linkInfo(pinPath: string): LinkInfoRecord | null;
  /** Makes the link pinned at `pinPath` run program `prog` (BPF_LINK_UPDATE). */
  linkUpdate(pinPath: string, prog: string): void;
  /** Detaches the link pinned at `pinPath` and removes the pin; false when nothing was pinned there. */
  linkUnpin(pinPath: string): boolean;
  /** The fd of map `map` (owned by this object). */
  mapFd(map: string): number;
  /** Creates or replaces one entry of map `map` (key and value sized as the map's; not per-CPU maps). */
  mapUpdate(map: string, key: Buffer, value: Buffer): void;
  /** Deletes one entry of map `map`; false when there was none. */
  mapDelete(map: string, key: Buffer): boolean;
  /** The value of one entry of map `map`, or null when there is none (not per-CPU maps). */
  mapLookup(map: string, key: Buffer): Buffer | null;
  /**
   * Every entry of map `map`: keys and values concatenated in the same order. A per-CPU map has
   * `cpus` values per key (one per possible CPU, each `valueSize` bytes); other maps have 1.
   */
  mapDump(map: string): {
    keySize: number;
    valueSize: number;
    cpus: number;
    keys: Buffer;
    values: Buffer;
  };
  /**
   * BPF_PROG_TEST_RUN of `prog` on one frame (ifindex 0: loopback), `repeat` times (default 1);
   * `durationNs` is the mean per run. Frames under 14 bytes are rejected (EINVAL).
   */
  testRun(
    prog: string,
    frame: Buffer,
    ifindex: number,
    repeat?: number,
  ): { retval: number; durationNs: number };
  /** Program id and run statistics (run time needs `kernel.bpf_stats_enabled=1`). */
  progInfo(prog: string): { id: number; runTimeNs: number; runCnt: number };
}

/** A BPF link as `bpf_obj_get_info_by_fd` describes it (TCX fields). */
export interface LinkInfoRecord {
  /** Link id. */
  readonly id: number;
  /** Id of the program it runs. */
  readonly progId: number;
  /** enum bpf_link_type (11: TCX). */
  readonly type: number;
  /** Device it is attached to; 0 once the device is gone. */
  readonly ifindex: number;
  /** enum bpf_attach_type (46: TCX ingress). */
  readonly attachType: number;
}

/** What the addon throws for a failed syscall: the message names the call and the errno. */
export interface NativeError extends Error {
  /** errno number. */
  readonly errno: number;
  /** errno name (`EPERM`, `ENOENT`, ...). */
  readonly code: string;
}

/** What `nftRun` returns. */
export interface NftResult {
  /** 0 on success, non-zero when libnftables rejected or the kernel refused the buffer. */
  readonly rc: number;
  /** Buffered standard output (e.g. a listing; JSON text when asked for JSON). */
  readonly output: string;
  /** Buffered error output (parser or kernel errors), empty on success. */
  readonly error: string;
}

/** The addon, or why it could not be loaded. */
export type NativeLoad = { addon: NativeAddon; error: null } | { addon: null; error: string };

/** Repository root (two levels above dist/src/). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

let cached: NativeLoad | undefined;

/** Loads the addon once per process; never throws. */
export function loadNative(): NativeLoad {
  if (cached) return cached;
  const path = join(REPO_ROOT, 'native', 'build', 'Release', 'bridgeward_native.node');
  try {
    const require = createRequire(import.meta.url);
    cached = { addon: require(path) as NativeAddon, error: null };
  } catch (e) {
    cached = { addon: null, error: `cannot load ${path}: ${(e as Error).message}` };
  }
  return cached;
}

/**
 * Turns an error thrown by the addon into a BridgewardError: EPERM/EACCES become
 * MISSING_PRIVILEGE, anything else KERNEL_ERROR; `what` prefixes the message.
 *
 * @example
 * try { obj.tcAttach('arp_observer', 7); } catch (e) { throw nativeFailure(e, 'attach to port 7'); }
 */
export function nativeFailure(e: unknown, what: string): BridgewardError {
  const err = e as Partial<NativeError>;
  const message = `${what}: ${err.message ?? String(e)}`;
  const code = err.code === 'EPERM' || err.code === 'EACCES' ? 'MISSING_PRIVILEGE' : 'KERNEL_ERROR';
  return new BridgewardError(code, message, err.code ? { errno: err.code } : undefined);
}
