/**
 * The neighbour observer: the kernel's ARP table on the bridge and the bridge FDB, read through
 * the rtnetlink adapter (a full dump on the dump socket, then NEIGH notifications on the event
 * socket; a fresh dump whenever the kernel dropped notifications). It is a `LiveSource` for the
 * allocator and the reconciler, and emits `Observation`s for anyone listening (the detector).
 *
 * @example
 * const nb = await NeighbourObserver.start({ rtnl, bridge: 4, subnet, log });
 * nb.onChange(() => reconciler.kick());
 * const live = await nb.live();
 * nb.close();
 */
import type { rt } from 'netlink';
import { BridgewardError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Subnet } from '../net/ipv4.js';
import { NeighbourTables, parseNeighbourMessage, toObservation } from './neighbour-table.js';
import type { Rtnl, RtnlEvent } from './rtnl.js';
import type { LiveEvidence, LiveSource, Observation } from './types.js';

const AF_INET = 2;
const AF_BRIDGE = 7;

/** What the observer needs. */
export interface NeighbourObserverOptions {
  /** The rtnetlink adapter. */
  readonly rtnl: Rtnl;
  /** ifindex of the bridge. */
  readonly bridge: number;
  /** The sandbox subnet (ARP entries outside it are ignored). */
  readonly subnet: Subnet;
  /** Logger. */
  readonly log: Logger;
  /** Metrics (observations by source, re-syncs). */
  readonly metrics?: Pick<Metrics, 'observations' | 'resyncs'>;
}

/** Watches the bridge's ARP table and FDB. */
export class NeighbourObserver implements LiveSource {
  /** Name shown in status and findings. */
  readonly name = 'netlink-neigh' as const;
  readonly #opts: NeighbourObserverOptions;
  readonly #tables: NeighbourTables;
  readonly #listeners = new Set<(o: Observation) => void>();
  readonly #changeListeners = new Set<() => void>();
  #unsubscribe: (() => void) | null = null;
  #resyncing: Promise<void> | null = null;

  private constructor(opts: NeighbourObserverOptions) {
    this.#opts = opts;
    this.#tables = new NeighbourTables(opts.bridge, opts.subnet);
  }

  /**
   * Subscribes to NEIGH notifications, then dumps both tables (subscribing first means no change
   * between the dump and the subscription is missed).
   *
   * @throws BridgewardError KERNEL_ERROR / MISSING_PRIVILEGE when the dump fails.
   */
  static async start(opts: NeighbourObserverOptions): Promise<NeighbourObserver> {
    const o = new NeighbourObserver(opts);
    o.#unsubscribe = opts.rtnl.subscribe(
      ['NEIGH'],
      (e) => o.#onEvent(e),
      () => o.#onOverrun(),
    );
    try {
      await o.resync();
    } catch (e) {
      o.close();
      throw e;
    }
    return o;
  }

  /** Addresses live on the bridge right now (from the kept tables, no kernel round trip). */
  async live(): Promise<ReadonlyMap<string, LiveEvidence>> {
    return this.#tables.live();
  }

  /** Bridge ports a MAC is currently learned on. */
  portsOf(mac: string): number[] {
    return this.#tables.portsOf(mac);
  }

  /** Calls `f` with every observation; returns an unsubscribe function. */
  onObservation(f: (o: Observation) => void): () => void {
    this.#listeners.add(f);
    return () => this.#listeners.delete(f);
  }

  /** Calls `f` after any change to the tables (event or re-dump); returns an unsubscribe function. */
  onChange(f: () => void): () => void {
    this.#changeListeners.add(f);
    return () => this.#changeListeners.delete(f);
  }

  /** Re-reads both tables from the kernel (concurrent calls share one dump). */
  resync(): Promise<void> {
    this.#resyncing ??= this.#dump().finally(() => {
      this.#resyncing = null;
    });
    return this.#resyncing;
  }

  /** Stops listening. */
  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  async #dump(): Promise<void> {
    const sock = this.#opts.rtnl.socket;
    let arp: rt.NeighborMessage[];
    let fdb: rt.NeighborMessage[];
    try {
      arp = await sock.getNeighbors({ family: AF_INET });
      fdb = await sock.getNeighbors({ family: AF_BRIDGE });
    } catch (e) {
      throw new BridgewardError('KERNEL_ERROR', `netlink dump neighbours: ${(e as Error).message}`);
    }
    const now = Date.now();
    this.#tables.clear();
    for (const m of [...fdb, ...arp]) {
      const entry = parseNeighbourMessage(m, false, now);
      if (entry) this.#tables.apply(entry);
    }
    this.#changed();
  }

  #onEvent(e: RtnlEvent): void {
    if (e.type !== 'other' || e.message.kind !== 'neighbor') return;
    const now = Date.now();
    const entry = parseNeighbourMessage(e.message, e.deleted, now);
    if (!entry || !this.#tables.apply(entry)) return;
    const obs = toObservation(entry, now);
    if (obs) {
      this.#opts.metrics?.observations.inc({ source: obs.source });
      for (const f of this.#listeners) f(obs);
    }
    this.#changed();
  }

  #onOverrun(): void {
    this.#opts.metrics?.resyncs.inc({ source: 'netlink' });
    this.#opts.log.warn('neighbour notifications were dropped (ENOBUFS); re-dumping');
    this.resync().catch((err: unknown) =>
      this.#opts.log.error({ err }, 'neighbour re-dump failed'),
    );
  }

  #changed(): void {
    for (const f of this.#changeListeners) f();
  }
}
