/**
 * Follows the sandbox bridge through its whole life, by name, from rtnetlink link events (after
 * an initial dump; re-dumped when the kernel dropped notifications): it appears (late, or
 * concurrently with the agent's start), changes its MAC, loses and gains ports, disappears
 * (deleted or renamed away), is replaced by a non-bridge link, and comes back with a new ifindex.
 * It is "the current bridge" every part of the agent asks for, and the one port follower they
 * all share.
 *
 * Listeners hear, in order: `bridgeUp` for a (new) bridge instance before any of its ports;
 * `portUp`/`portGone` as ports join and leave; `bridgeChanged` for a new MAC of the same
 * instance; and, when the instance goes, `portGone` for each port it still had, then
 * `bridgeDown`. Listener calls are synchronous; a listener that needs I/O queues it.
 *
 * @example
 * const bridge = await BridgeLifecycle.start({ rtnl, name: 'rt0', log, metrics });
 * bridge.listen({ bridgeUp: (l) => log.info({ ifindex: l.index }, 'up'), portUp: (p) => attach(p) });
 * bridge.current()?.index; // 7, or undefined while absent
 * bridge.close();
 */
import { BridgewardError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { LinkInfo, Rtnl } from '../observe/rtnl.js';
import {
  NEVER_SEEN,
  bridgeStateOf,
  describeBridgeState,
  isNewInstance,
  nextBridgeState,
  type BridgeState,
} from './state.js';

/** What a part of the agent hears about the bridge. Every method is optional. */
export interface BridgeListener {
  /** A bridge instance appeared (at start, late, or recreated with a new ifindex). */
  bridgeUp?(bridge: LinkInfo): void;
  /** The current instance changed an attribute (its MAC follows its ports unless fixed). */
  bridgeChanged?(bridge: LinkInfo): void;
  /** A port joined the current bridge (or was renamed). */
  portUp?(port: LinkInfo): void;
  /** A port left the current bridge (moved off, deleted, or its bridge went away). */
  portGone?(ifindex: number): void;
  /** The instance went away; `now` says what the name is now (absent or not a bridge). */
  bridgeDown?(bridge: LinkInfo, now: BridgeState): void;
}

/** What `BridgeLifecycle.start` needs. */
export interface BridgeLifecycleOptions {
  /** The rtnetlink adapter (link dumps and LINK events). */
  readonly rtnl: Rtnl;
  /** The bridge's name. */
  readonly name: string;
  /** Logger. */
  readonly log: Logger;
  /** Re-dumps after dropped notifications are counted here (`source="links"`). */
  readonly metrics?: Pick<Metrics, 'resyncs'>;
}

/** The sandbox bridge, followed. */
export class BridgeLifecycle {
  readonly #o: BridgeLifecycleOptions;
  readonly #listeners = new Set<BridgeListener>();
  /** Ports of the current instance, by ifindex. */
  readonly #ports = new Map<number, LinkInfo>();
  #state: BridgeState = NEVER_SEEN;
  #since = Date.now();
  #unsubscribe: (() => void) | null = null;
  /** Ports that left while a port dump was in flight (the dump may still list them). */
  #leftDuringDump: Set<number> | null = null;

  private constructor(opts: BridgeLifecycleOptions) {
    this.#o = opts;
  }

  /**
   * Subscribes to link events, then dumps the links (subscribing first: nothing that happens in
   * between is missed).
   *
   * @throws BridgewardError KERNEL_ERROR / MISSING_PRIVILEGE when the dump fails.
   */
  static async start(opts: BridgeLifecycleOptions): Promise<BridgeLifecycle> {
    const b = new BridgeLifecycle(opts);
    b.#unsubscribe = opts.rtnl.subscribe(
      ['LINK'],
      (e) => {
        if (e.type === 'link') b.#onLink(e.deleted, e.link);
      },
      () => b.#onOverrun(),
    );
    try {
      b.#applyDump(await opts.rtnl.links());
    } catch (e) {
      b.close();
      throw e;
    }
    return b;
  }

  /** The bridge's name. */
  get name(): string {
    return this.#o.name;
  }

  /** What the name is right now. */
  state(): BridgeState {
    return this.#state;
  }

  /** The current bridge instance, or null while it is absent or not a bridge. */
  current(): LinkInfo | null {
    return this.#state.kind === 'present' ? this.#state.link : null;
  }

  /**
   * The current bridge instance, for work that needs one (probing, allocating).
   *
   * @throws BridgewardError BRIDGE_ABSENT (503, retryable) while it is absent or not a bridge.
   */
  require(): LinkInfo {
    const link = this.current();
    if (link) return link;
    throw new BridgewardError('BRIDGE_ABSENT', this.describe(), {
      bridge: this.#o.name,
      state: this.#state.kind,
      retryable: true,
    });
  }

  /** When the state last changed instance (ms since the epoch). */
  since(): number {
    return this.#since;
  }

  /** The current instance's ports: ifindex -> name (empty while absent). */
  ports(): ReadonlyMap<number, string> {
    return new Map([...this.#ports].map(([i, l]) => [i, l.name]));
  }

  /** One line describing the state (logs, status, errors). */
  describe(): string {
    return describeBridgeState(this.#o.name, this.#state);
  }

  /**
   * Adds a listener and replays the present to it (`bridgeUp`, then `portUp` per port).
   * Returns a function that removes it.
   */
  listen(l: BridgeListener): () => void {
    this.#listeners.add(l);
    const link = this.current();
    if (link) {
      this.#call(l, 'bridgeUp', (x) => x.bridgeUp?.(link));
      for (const p of this.#ports.values()) this.#call(l, 'portUp', (x) => x.portUp?.(p));
    }
    return () => this.#listeners.delete(l);
  }

  /** Stops following (listeners hear nothing more). */
  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.#listeners.clear();
  }

  #onLink(deleted: boolean, link: LinkInfo): void {
    const next = nextBridgeState(this.#o.name, this.#state, { deleted, link });
    if (next !== this.#state) this.#moveTo(next, null);
    const bridge = this.current();
    if (!bridge || link.index === bridge.index) return;
    if (!deleted && link.master === bridge.index) this.#portUp(link);
    else this.#portGone(link.index);
  }

  #onOverrun(): void {
    this.#o.metrics?.resyncs.inc({ source: 'links' });
    this.#o.log.warn('link notifications were dropped (ENOBUFS); re-dumping links');
    this.#o.rtnl.links().then(
      (links) => this.#applyDump(links),
      (err: unknown) => this.#o.log.error({ err }, 'link re-dump failed'),
    );
  }

  /** Brings state and ports in line with a full dump. */
  #applyDump(links: readonly LinkInfo[]): void {
    this.#moveTo(bridgeStateOf(this.#o.name, links, this.#state), links);
    const bridge = this.current();
    if (bridge) this.#syncPorts(bridge.index, links);
  }

  /**
   * Moves to `next`. A new instance tears the old one down (its ports, then `bridgeDown`) and
   * announces the new one; its ports come from `links` when given, else from a dump.
   */
  #moveTo(next: BridgeState, links: readonly LinkInfo[] | null): void {
    const prev = this.#state;
    this.#state = next;
    if (!isNewInstance(prev, next)) {
      if (next.kind === 'present' && prev.kind === 'present' && next.link.mac !== prev.link.mac)
        this.#emit('bridgeChanged', (l) => l.bridgeChanged?.(next.link));
      return;
    }
    this.#since = Date.now();
    if (prev.kind === 'present') {
      for (const ifindex of [...this.#ports.keys()]) this.#portGone(ifindex);
      this.#emit('bridgeDown', (l) => l.bridgeDown?.(prev.link, next));
    }
    const level = next.kind === 'not-a-bridge' ? 'error' : 'info';
    this.#o.log[level](
      { bridge: this.#o.name, ifindex: next.kind === 'absent' ? null : next.link.index },
      this.describe(),
    );
    if (next.kind !== 'present') return;
    this.#emit('bridgeUp', (l) => l.bridgeUp?.(next.link));
    if (links === null) this.#dumpPorts(next.link.index);
  }

  /** Finds the ports a (re)appeared bridge already has. */
  #dumpPorts(bridge: number): void {
    this.#leftDuringDump = new Set();
    this.#o.rtnl.links().then(
      (links) => {
        const left = this.#leftDuringDump ?? new Set<number>();
        this.#leftDuringDump = null;
        if (this.current()?.index !== bridge) return;
        for (const l of links) if (l.master === bridge && !left.has(l.index)) this.#portUp(l);
      },
      (err: unknown) => {
        this.#leftDuringDump = null;
        this.#o.log.error({ err }, 'cannot list the ports of the bridge');
      },
    );
  }

  #syncPorts(bridge: number, links: readonly LinkInfo[]): void {
    const now = new Map(links.filter((l) => l.master === bridge).map((l) => [l.index, l]));
    for (const ifindex of [...this.#ports.keys()]) if (!now.has(ifindex)) this.#portGone(ifindex);
    for (const l of now.values()) this.#portUp(l);
  }

  #portUp(link: LinkInfo): void {
    const had = this.#ports.get(link.index);
    this.#ports.set(link.index, link);
    if (had?.name === link.name) return;
    this.#emit('portUp', (l) => l.portUp?.(link));
  }

  #portGone(ifindex: number): void {
    this.#leftDuringDump?.add(ifindex);
    if (!this.#ports.delete(ifindex)) return;
    this.#emit('portGone', (l) => l.portGone?.(ifindex));
  }

  #emit(what: string, f: (l: BridgeListener) => void): void {
    for (const l of this.#listeners) this.#call(l, what, f);
  }

  #call(l: BridgeListener, what: string, f: (l: BridgeListener) => void): void {
    try {
      f(l);
    } catch (err) {
      this.#o.log.error({ err, event: what }, 'a bridge listener failed');
    }
  }
}
