/**
 * The neighbour observer: the kernel's ARP table on the bridge and the bridge FDB, read through
 * the rtnetlink adapter (a full dump on the dump socket, then NEIGH notifications on the event
 * socket; a fresh dump whenever the kernel dropped notifications). It is a `LiveSource` for the
 * allocator and the reconciler, and emits `Observation`s for anyone listening (the detector).
 * It follows the bridge (`setBridge` for each instance): each new instance starts from a fresh
 * dump, and while the bridge is absent nothing is live.
 *
 * @example
 * const nb = NeighbourObserver.start({ rtnl, subnet, log });
 * await nb.setBridge(bridge.index);
 * nb.onChange(() => reconciler.kick());
 * const live = await nb.live();
 * nb.close();
 */
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Subnet } from '../net/ipv4.js';
import { NeighbourTables, parseNeighbourMessage, toObservation } from './neighbour-table.js';
import type { Rtnl, RtnlEvent } from './rtnl.js';
import type { LiveEvidence, LiveSource, Observation } from './types.js';

/** What the observer needs. */
export interface NeighbourObserverOptions {
  /** The rtnetlink adapter. */
  readonly rtnl: Rtnl;
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
  /** The current bridge instance's tables, or null while there is none. */
  #tables: NeighbourTables | null = null;
  /** The bridge instance the tables follow (a second `setBridge` for it keeps them). */
  #ifindex: number | null = null;
  readonly #listeners = new Set<(o: Observation) => void>();
  readonly #changeListeners = new Set<() => void>();
  #unsubscribe: (() => void) | null = null;
  #resyncing: { readonly tables: NeighbourTables; readonly done: Promise<void> } | null = null;

  private constructor(opts: NeighbourObserverOptions) {
    this.#opts = opts;
  }

  /**
   * Subscribes to NEIGH notifications; the tables are dumped once a bridge is set (subscribing
   * first means no change between the dump and the subscription is missed).
   */
  static start(opts: NeighbourObserverOptions): NeighbourObserver {
    const o = new NeighbourObserver(opts);
    o.#unsubscribe = opts.rtnl.subscribe(
      ['NEIGH'],
      (e) => o.#onEvent(e),
      () => o.#onOverrun(),
    );
    return o;
  }

  /**
   * Follows bridge `ifindex` from now on (null: none), starting from a fresh dump. Resolves once
   * the dump is applied. Setting the instance it already follows changes nothing.
   *
   * @throws BridgewardError KERNEL_ERROR / MISSING_PRIVILEGE when the dump fails.
   */
  setBridge(ifindex: number | null): Promise<void> {
    if (ifindex !== null && ifindex === this.#ifindex)
      return this.#resyncing?.done ?? Promise.resolve();
    this.#ifindex = ifindex;
    this.#tables = ifindex === null ? null : new NeighbourTables(ifindex, this.#opts.subnet);
    this.#changed();
    return ifindex === null ? Promise.resolve() : this.resync();
  }

  /** Addresses live on the bridge right now (from the kept tables, no kernel round trip). */
  async live(): Promise<ReadonlyMap<string, LiveEvidence>> {
    return this.#tables?.live() ?? new Map();
  }

  /** Bridge ports a MAC is currently learned on. */
  portsOf(mac: string): number[] {
    return this.#tables?.portsOf(mac) ?? [];
  }

  /** MACs the bridge has learned on `port` (FDB), none while the bridge is absent. */
  macsOn(port: number): string[] {
    return this.#tables?.macsOn(port) ?? [];
  }

  /** The MAC the bridge's ARP table holds for an address, or null. */
  macOf(ip: string): string | null {
    return this.#tables?.macOf(ip) ?? null;
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

  /** Re-reads both tables from the kernel (concurrent calls for one bridge share one dump). */
  resync(): Promise<void> {
    const tables = this.#tables;
    if (tables === null) return Promise.resolve();
    if (this.#resyncing?.tables === tables) return this.#resyncing.done;
    const done = this.#dump(tables).finally(() => {
      if (this.#resyncing?.tables === tables) this.#resyncing = null;
    });
    this.#resyncing = { tables, done };
    return done;
  }

  /** Stops listening. */
  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  async #dump(tables: NeighbourTables): Promise<void> {
    const arp = await this.#opts.rtnl.neighbours('inet');
    const fdb = await this.#opts.rtnl.neighbours('bridge');
    if (this.#tables !== tables) return; // the bridge changed meanwhile: its own dump follows
    const now = Date.now();
    tables.clear();
    for (const m of [...fdb, ...arp]) {
      const entry = parseNeighbourMessage(m, false, now);
      if (entry) tables.apply(entry);
    }
    this.#changed();
  }

  #onEvent(e: RtnlEvent): void {
    if (e.type !== 'other' || e.message.kind !== 'neighbor') return;
    const now = Date.now();
    const entry = parseNeighbourMessage(e.message, e.deleted, now);
    if (!entry || !this.#tables?.apply(entry)) return;
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
