/**
 * Where the ARP program hangs on each bridge port, and how it gets there: a TCX ingress link
 * (BPF_LINK_CREATE, kernel >= 6.6) pinned in `<pinDir>/links/` when there is a pin dir, a tc
 * clsact filter otherwise or when the kernel has no TCX. Both outlive the agent (the link by its
 * pin, the filter by itself), both are replaced in place by the next agent (BPF_LINK_UPDATE, or
 * the filter's fixed handle), and both are removed per port when it leaves. A TCX attachment
 * also removes a clsact filter an earlier version left on the same port, so the program never
 * runs twice for one packet.
 *
 * TCX is worth having because a packet then reaches the program straight from the ingress hook
 * instead of through the clsact qdisc and the cls_bpf classifier (see docs/dataplane.md).
 *
 * @example
 * const ports = new PortAttachments(prog, '/sys/fs/bpf/bridgeward', 'tcx', log);
 * ports.attach(7); // 'tcx'
 * ports.removeStale((ifindex) => bridge.ports().has(ifindex), await rtnl.links());
 * ports.detach(7); // true
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isBridgewardError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ArpProgram } from './arp-program.js';
import type { LinkInfo } from './rtnl.js';

/** How the program is attached to a port. */
export type AttachMode = 'tcx' | 'clsact';

/** File name prefix of a pinned TCX ingress link; the ifindex follows. */
const LINK_PREFIX = 'tcx-ingress-';

/** The program's attachments to bridge ports. */
export class PortAttachments {
  readonly #prog: ArpProgram;
  readonly #linkDir: string | null;
  readonly #log: Logger;
  #mode: AttachMode;

  /**
   * `prefer` is what new attachments use: 'tcx' needs a pin dir (links are pinned in its
   * `links/` folder) and falls back to 'clsact' for good when the kernel refuses TCX.
   */
  constructor(prog: ArpProgram, pinDir: string | null, prefer: AttachMode, log: Logger) {
    this.#prog = prog;
    this.#log = log;
    this.#linkDir = pinDir === null ? null : join(pinDir, 'links');
    this.#mode = prefer === 'tcx' && this.#linkDir !== null ? 'tcx' : 'clsact';
    if (this.#linkDir !== null) mkdirSync(this.#linkDir, { recursive: true, mode: 0o700 });
  }

  /** What new attachments use now. */
  get mode(): AttachMode {
    return this.#mode;
  }

  /**
   * Attaches the program to port `ifindex`, or points the attachment already there at it (an
   * earlier agent's); returns how it is attached.
   *
   * @throws BridgewardError KERNEL_ERROR / MISSING_PRIVILEGE when the kernel refuses.
   */
  attach(ifindex: number): AttachMode {
    if (this.#mode === 'tcx') {
      try {
        this.#attachLink(ifindex);
        this.#prog.detach(ifindex); // a clsact filter of an earlier version
        return 'tcx';
      } catch (e) {
        if (!isBridgewardError(e) || e.details?.errno !== 'EINVAL') throw e;
        this.#mode = 'clsact';
        this.#log.warn({ err: e }, 'the kernel has no TCX links; attaching with tc clsact');
      }
    }
    this.#prog.attach(ifindex);
    return 'clsact';
  }

  /** Removes the program from port `ifindex`; false when it was not attached there. */
  detach(ifindex: number): boolean {
    const link = this.#linkPath(ifindex);
    const unpinned = link !== null && this.#prog.unpinLink(link);
    return this.#prog.detach(ifindex) || unpinned;
  }

  /** Id of the program attached to port `ifindex` (link or filter), or null. */
  progId(ifindex: number): number | null {
    const link = this.#linkPath(ifindex);
    const info = link === null ? null : this.#prog.link(link);
    if (info && info.ifindex === ifindex) return info.progId;
    return this.#prog.attachedProgId(ifindex);
  }

  /**
   * Removes attachments left on links that are not ports now (they left while no agent
   * watched), and pinned links whose device is gone. Returns the ifindexes it cleaned.
   */
  removeStale(isPort: (ifindex: number) => boolean, links: readonly LinkInfo[]): number[] {
    const cleaned = new Set<number>();
    for (const name of this.#linkDir === null ? [] : readdirSync(this.#linkDir)) {
      const ifindex = Number(name.slice(LINK_PREFIX.length));
      if (!name.startsWith(LINK_PREFIX) || !Number.isInteger(ifindex) || isPort(ifindex)) continue;
      const path = join(this.#linkDir as string, name);
      const info = this.#prog.link(path);
      this.#prog.unpinLink(path);
      if (info?.ifindex) cleaned.add(ifindex);
    }
    for (const l of links) {
      if (isPort(l.index) || this.#prog.attachedProgId(l.index) === null) continue;
      this.#prog.detach(l.index);
      cleaned.add(l.index);
    }
    return [...cleaned];
  }

  /** Pins a new link on `ifindex`, or re-points the live one pinned for it. */
  #attachLink(ifindex: number): void {
    const path = this.#linkPath(ifindex) as string;
    const info = this.#prog.link(path);
    if (info && info.ifindex === ifindex) {
      if (info.progId !== this.#prog.runStats().id) this.#prog.updateLink(path);
      return;
    }
    if (info) this.#prog.unpinLink(path); // its device is gone; the ifindex was reused
    this.#prog.attachLink(ifindex, path);
  }

  #linkPath(ifindex: number): string | null {
    return this.#linkDir === null ? null : join(this.#linkDir, `${LINK_PREFIX}${ifindex}`);
  }
}
