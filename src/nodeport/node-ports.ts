/**
 * The node-port shell: keeps the agent's nftables table equal to the store. The store is the one
 * source of truth; the table is derived from it and rebuilt from it at start (a restart is a
 * rebuild, so a crash between a store commit and an nft apply heals).
 *
 * - `start()`: one atomic full replace of the table, verified by reading it back.
 * - `sync()`: reads the store, diffs against what was applied, applies the diff as one
 *   transaction (a full replace if that fails), then clears conntrack entries of old backends.
 * - `verify()`: reads the table back; a flushed/edited rule or a missing table means a full
 *   replace, edited elements an incremental repair; each repair is counted and logged.
 *   `verifySoon()` runs one shortly, when `nft monitor` saw another process touch the table.
 * - `add()`/`remove()`/`list()`: the API's operations (store first, then one transaction for
 *   that key; the stale conntrack flows it leaves are cleared right after the answer).
 * - `bridgeUp()`: a new bridge instance (its ports start without hairpin): a full `sync()`.
 *   `hairpinSoon()`: the bridge learned where a sandbox is: hairpin for the backends at once.
 *
 * All kernel work is serialised, so a verify never races an apply.
 *
 * @example
 * const np = new NodePorts({ store, nft: openNftDriver(), reader: nftBinaryDriver(), table, metrics, log,
 *   clearConntrack: (c) => conntrack.clear(c), hairpin });
 * await np.start();
 * await np.add({ proto: 'tcp', hostPort: 6667, sandbox: 'app-2', port: 8080 });
 */
import { BridgewardError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { LeaseStore, PortMapping } from '../store/types.js';
import { byKey, desiredElements } from './desired.js';
import { diffElements, isEmptyDiff, renderDiff } from './diff.js';
import { mergeChanges, type ElementChange } from './conntrack-flows.js';
import type { Backend, HairpinPorts } from './hairpin.js';
import { elementKey, type NatElement, type Proto } from './element.js';
import { isNoSuchObject, type NftDriver, type NftDriverKind } from './nft-driver.js';
import { parseTableListing, type TableListing } from './readback.js';
import {
  LIST_TABLE,
  TABLE_FAMILY,
  TABLE_NAME,
  renderFullReplace,
  type TableSpec,
} from './ruleset.js';

/** A node port as the API shows it: the mapping plus the backend address. */
export interface NodePortView extends PortMapping {
  /** The sandbox's leased address, or null if it has none (a mapping being released). */
  readonly addr: string | null;
}

/** What `status` reports about node ports. */
export interface NodePortStatus {
  /** Which nft implementation runs the transactions. */
  readonly driver: NftDriverKind;
  /** The table the agent owns. */
  readonly table: string;
  /** Elements applied. */
  readonly elements: number;
  /** Drift repairs since start. */
  readonly repairs: number;
}

/** What the node-port shell needs. */
export interface NodePortDeps {
  /** The lease store (source of truth). */
  readonly store: Pick<
    LeaseStore,
    'listPorts' | 'snapshot' | 'putPort' | 'removePort' | 'leaseBySandbox' | 'revision'
  >;
  /** Runs the transactions (in-process libnftables when available: sub-millisecond). */
  readonly nft: NftDriver;
  /**
   * Runs the read-backs. Listing 10,000 elements takes libnftables ~120 ms of blocking work, so
   * the agent lists through the `nft` binary in a child process and the API never stalls.
   */
  readonly reader: NftDriver;
  /**
   * Keys (`tcp . 7123`) of the agent's own listening ports with what uses them: a node port
   * there would capture the agent's traffic (e.g. sandboxes' token requests), so it is refused.
   */
  readonly reserved: ReadonlyMap<string, string>;
  /** The bridge and sandbox subnet the fixed rules match. */
  readonly table: TableSpec;
  /** Repair and transaction counters. */
  readonly metrics: Pick<
    Metrics,
    'nodeportRepairs' | 'nodeportChangeSeconds' | 'nftTransactions' | 'resyncs'
  >;
  /** Logger. */
  readonly log: Logger;
  /** Keeps the bridge ports of backends in hairpin mode where needed. */
  readonly hairpin: Pick<HairpinPorts, 'update' | 'include' | 'reset'>;
  /** Deletes the conntrack entries a change made stale; resolves to how many. */
  readonly clearConntrack: (change: ElementChange) => Promise<number>;
}

/** How long `verifySoon()` gathers further calls before reading the table back. */
const VERIFY_SOON_MS = 20;
/** How long stale-flow clean-ups of API changes gather before one conntrack dump serves them. */
const CLEANUP_DELAY_MS = 50;
/** How long `hairpinSoon()` gathers a burst of bridge changes before updating hairpin. */
const HAIRPIN_SOON_MS = 10;

/** Keeps the agent's table equal to the store's node ports. */
export class NodePorts {
  readonly #d: NodePortDeps;
  /** Elements the kernel holds as far as we know, by key; null forces a full replace. */
  #applied: Map<string, NatElement> | null = null;
  /** Structure fingerprint read back after the last full replace. */
  #structure: string | null = null;
  #repairs = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | null = null;
  #ticking = false;
  #verifyTimer: NodeJS.Timeout | null = null;
  #hairpinTimer: NodeJS.Timeout | null = null;
  /** API changes whose stale flows are not cleared yet, merged. */
  #pendingCleanup: ElementChange | null = null;
  /** The running clean-up of API changes, off the request path. */
  #cleaning: Promise<void> | null = null;
  /** Backends of the node ports as of the last sync or add (for `hairpinSoon`). */
  #backends: Backend[] = [];
  #stopped = false;

  /** Creates the shell; nothing touches the kernel until `start()`. */
  constructor(deps: NodePortDeps) {
    this.#d = deps;
  }

  /**
   * Replaces the whole table from the store in one transaction and verifies it by reading it
   * back; clears conntrack entries of backends that were in the old table but not in the new.
   *
   * @throws BridgewardError KERNEL_ERROR when nft fails or the read-back differs.
   */
  start(): Promise<void> {
    return this.#serial(async () => {
      const before = await this.#readTable();
      const { desired, backends } = await this.#desired();
      await this.#fullReplace(desired);
      await this.#clearStale(before?.elements ?? [], desired);
      await this.#hairpin(backends);
    });
  }

  /**
   * Brings the whole table up to date with the store (one transaction for the changes). This
   * catches changes made without the API, e.g. ports removed with their lease.
   */
  sync(): Promise<void> {
    return this.#serial(() => this.#syncNow());
  }

  /**
   * Takes a just-ended lease's node ports out of the kernel: a `sync()` when an applied element
   * still points at its address (or nothing is known to be applied yet), nothing otherwise. The
   * check runs in turn after any node-port change already in progress.
   *
   * @example
   * ipam.onReleased((lease) => void nodePorts.released(lease.ip));
   */
  released(ip: string): Promise<void> {
    return this.#serial(async () => {
      const applied = this.#applied;
      if (applied !== null && ![...applied.values()].some((e) => e.addr === ip)) return;
      await this.#syncNow();
    });
  }

  /**
   * Reads the table back and repairs drift (missing table, edited rules, edited elements) in one
   * transaction. Resolves to true when it repaired something.
   */
  verify(): Promise<boolean> {
    return this.#serial(async () => {
      if (this.#applied === null) return false;
      const applied = [...this.#applied.values()];
      const now = await this.#readTable();
      if (now && now.foreign === 0 && now.structure === this.#structure) {
        const d = diffElements(now.elements, applied);
        if (isEmptyDiff(d)) return false;
        this.#repaired('elements', { removed: d.remove.length, added: d.add.length });
        await this.#applyDiff(now.elements, applied);
        await this.#clearStale(now.elements, applied);
        return true;
      }
      this.#repaired(now ? 'rules' : 'table missing', {});
      await this.#fullReplace(applied);
      return true;
    });
  }

  /**
   * Every `intervalMs` until `stop()`: a `sync()` when the store's revision moved since the last
   * one (a full diff of every mapping; nothing to do on an idle runner), then a `verify()` (a
   * read-back through an `nft` child process) unless `watch` says another watcher reports every
   * foreign change (`nft monitor`): then the read-back runs only once per `watch.safetyMs`, a
   * safety net. A tick that finds the previous one still running is skipped, counted
   * (resyncs{source="nodeport"}) and logged.
   */
  startLoop(intervalMs: number, watch?: { watching(): boolean; safetyMs: number }): void {
    let lastVerify = Date.now();
    let synced: string | null = null;
    const syncIfChanged = async () => {
      const revision = await this.#d.store.revision(); // read first: later writes sync next time
      if (revision === synced) return;
      await this.sync();
      synced = revision;
    };
    this.#timer = setInterval(() => {
      if (this.#ticking) {
        this.#d.metrics.resyncs.inc({ source: 'nodeport' });
        this.#d.log.warn({ intervalMs }, 'node-port reconcile fell behind; skipping a tick');
        return;
      }
      this.#ticking = true;
      const readBack =
        !watch?.watching() || Date.now() - lastVerify >= (watch?.safetyMs ?? intervalMs);
      syncIfChanged()
        .then(async () => {
          if (!readBack) return;
          lastVerify = Date.now();
          await this.verify();
        })
        .catch((e: unknown) => this.#d.log.error({ err: e }, 'node-port reconcile failed'))
        .finally(() => (this.#ticking = false));
    }, intervalMs);
  }

  /**
   * A new bridge instance appeared: its ports start without hairpin, so the table and hairpin
   * are brought up to date from the store at once.
   */
  bridgeUp(): Promise<void> {
    this.#d.hairpin.reset();
    return this.sync();
  }

  /**
   * Updates hairpin for the known backends soon, coalescing a burst of calls: for when the
   * bridge learned where a sandbox is (FDB or neighbour change), so a sandbox reaches its own
   * node port right after its first frame. Costs nothing while no sandbox backs a node port.
   */
  hairpinSoon(): void {
    if (this.#hairpinTimer || this.#stopped || this.#backends.length === 0) return;
    this.#hairpinTimer = setTimeout(() => {
      this.#hairpinTimer = null;
      void this.#serial(() => this.#hairpin(this.#backends));
    }, HAIRPIN_SOON_MS);
  }

  /**
   * Schedules a `verify()` soon, coalescing a burst of calls into one read-back: for when another
   * process was seen changing the table (`nft monitor`).
   */
  verifySoon(): void {
    if (this.#verifyTimer || this.#stopped) return;
    this.#verifyTimer = setTimeout(() => {
      this.#verifyTimer = null;
      this.verify().catch((e: unknown) =>
        this.#d.log.error({ err: e }, 'node-port read-back failed'),
      );
    }, VERIFY_SOON_MS);
  }

  /** Stops the loop and waits for queued kernel work. The table stays (a restart rebuilds it). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#verifyTimer) clearTimeout(this.#verifyTimer);
    if (this.#hairpinTimer) clearTimeout(this.#hairpinTimer);
    this.#timer = null;
    this.#verifyTimer = null;
    this.#hairpinTimer = null;
    await this.#queue.catch(() => undefined);
    await this.#cleaning;
  }

  /**
   * Adds or moves a node port in the store, then applies it.
   *
   * @throws BridgewardError PORT_IN_USE (reserved, or another sandbox's), UNKNOWN_SANDBOX,
   *   KERNEL_ERROR.
   */
  add(m: PortMapping): Promise<NodePortView> {
    const timer = this.#d.metrics.nodeportChangeSeconds.startTimer({ op: 'add' });
    return this.#serial(async () => {
      const usedBy = this.#d.reserved.get(elementKey(m));
      if (usedBy) {
        throw new BridgewardError(
          'PORT_IN_USE',
          `${m.proto}/${m.hostPort} is reserved for ${usedBy} on this runner`,
          { proto: m.proto, hostPort: m.hostPort },
        );
      }
      await this.#d.store.putPort(m, new Date());
      const lease = await this.#d.store.leaseBySandbox(m.sandbox);
      if (!lease) {
        throw new BridgewardError('UNKNOWN_SANDBOX', `sandbox ${m.sandbox} has no active lease`);
      }
      const want = { proto: m.proto, hostPort: m.hostPort, addr: lease.ip, port: m.port };
      await this.#applyOne(elementKey(m), want);
      const backend = { ip: lease.ip, mac: lease.mac, ifindex: lease.ifindex };
      if (!this.#backends.some((b) => b.ip === lease.ip)) this.#backends.push(backend);
      await this.#hairpinInclude(backend);
      return { ...m, addr: lease.ip };
    }).finally(timer);
  }

  /**
   * Removes a node port from the store, then from the table.
   *
   * @throws BridgewardError UNKNOWN_PORT (from the store), KERNEL_ERROR.
   */
  remove(proto: Proto, hostPort: number): Promise<PortMapping> {
    const timer = this.#d.metrics.nodeportChangeSeconds.startTimer({ op: 'remove' });
    return this.#serial(async () => {
      const removed = await this.#d.store.removePort(proto, hostPort, new Date());
      await this.#applyOne(elementKey({ proto, hostPort }), null);
      return removed;
    }).finally(timer);
  }

  /** Every node port with its backend address, sorted by proto and host port. */
  async list(): Promise<NodePortView[]> {
    const [ports, snap] = await Promise.all([this.#d.store.listPorts(), this.#d.store.snapshot()]);
    const ipOf = new Map(snap.leases.map((l) => [l.sandbox, l.ip]));
    return ports
      .map((m) => ({ ...m, addr: ipOf.get(m.sandbox) ?? null }))
      .sort((a, b) => (a.proto === b.proto ? a.hostPort - b.hostPort : a.proto < b.proto ? -1 : 1));
  }

  /** The status report. */
  status(): NodePortStatus {
    return {
      driver: this.#d.nft.kind,
      table: `${TABLE_FAMILY} ${TABLE_NAME}`,
      elements: this.#applied?.size ?? 0,
      repairs: this.#repairs,
    };
  }

  async #syncNow(): Promise<void> {
    const { desired, backends } = await this.#desired();
    const before = this.#applied ? [...this.#applied.values()] : null;
    if (before === null) await this.#fullReplace(desired);
    else await this.#applyDiff(before, desired);
    await this.#clearStale(before ?? [], desired);
    await this.#hairpin(backends);
  }

  #serial<T>(f: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(f, f);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #desired(): Promise<{ desired: NatElement[]; backends: Backend[] }> {
    const ports = await this.#d.store.listPorts();
    const snap = await this.#d.store.snapshot();
    const used = new Set(ports.map((p) => p.sandbox));
    const backends = snap.leases
      .filter((l) => used.has(l.sandbox))
      .map((l) => ({ ip: l.ip, mac: l.mac, ifindex: l.ifindex }));
    this.#backends = backends;
    return { desired: desiredElements(ports, snap.leases, this.#d.reserved), backends };
  }

  async #hairpinInclude(backend: Backend): Promise<void> {
    try {
      if (!(await this.#d.hairpin.include(backend)))
        this.#d.log.debug({ ip: backend.ip }, 'bridge port of a node-port backend not known yet');
    } catch (e) {
      this.#d.log.warn({ err: e }, 'could not set hairpin mode on a node-port backend');
    }
  }

  async #hairpin(backends: readonly Backend[]): Promise<void> {
    try {
      const unresolved = await this.#d.hairpin.update(backends);
      if (unresolved.length)
        this.#d.log.debug({ unresolved }, 'bridge port of a node-port backend not known yet');
    } catch (e) {
      this.#d.log.warn({ err: e }, 'could not set hairpin mode on node-port backends');
    }
  }

  async #readTable(): Promise<TableListing | null> {
    try {
      return parseTableListing(await this.#d.reader.run(LIST_TABLE, true));
    } catch (e) {
      if (isNoSuchObject(e)) return null;
      throw e;
    }
  }

  async #transaction(script: string): Promise<void> {
    try {
      await this.#d.nft.run(script);
      this.#d.metrics.nftTransactions.inc({ result: 'ok' });
    } catch (e) {
      this.#d.metrics.nftTransactions.inc({ result: 'error' });
      throw e;
    }
  }

  async #fullReplace(desired: readonly NatElement[]): Promise<void> {
    this.#applied = null;
    await this.#transaction(renderFullReplace(this.#d.table, desired));
    const back = await this.#readTable();
    const d = back ? diffElements(back.elements, desired) : null;
    if (!back || !d || !isEmptyDiff(d) || back.foreign !== 0) {
      throw new BridgewardError(
        'KERNEL_ERROR',
        'nft table read back after a full replace differs',
        {
          expected: desired.length,
          found: back?.elements.length ?? null,
        },
      );
    }
    this.#structure = back.structure;
    this.#applied = byKey(desired);
    this.#d.log.info(
      { elements: desired.length, driver: this.#d.nft.kind },
      'node-port table replaced',
    );
  }

  async #applyDiff(current: readonly NatElement[], desired: readonly NatElement[]): Promise<void> {
    const script = renderDiff(diffElements(current, desired));
    if (script === null) return;
    try {
      await this.#transaction(script);
      this.#applied = byKey(desired);
    } catch (e) {
      this.#d.log.warn({ err: e }, 'node-port transaction failed; replacing the whole table');
      await this.#fullReplace(desired);
    }
  }

  /**
   * The steady-state path for one key the API just changed in the store: diffs only that key
   * against what was applied (cheap with many mappings) and applies it as one transaction; on
   * failure, or before the first full replace, replaces the whole table from the store.
   */
  async #applyOne(key: string, want: NatElement | null): Promise<void> {
    const applied = this.#applied;
    if (applied === null) {
      await this.#fullReplace((await this.#desired()).desired);
      return;
    }
    const cur = applied.get(key);
    const d = diffElements(cur ? [cur] : [], want ? [want] : []);
    const script = renderDiff(d);
    if (script === null) return;
    try {
      await this.#transaction(script);
      if (want) applied.set(key, want);
      else applied.delete(key);
    } catch (e) {
      this.#d.log.warn({ err: e }, 'node-port transaction failed; replacing the whole table');
      await this.#fullReplace((await this.#desired()).desired);
    }
    // The mapping is live now; stale flows (a `conntrack` dump and deletes, several ms) are
    // cleared right after the answer instead of on the request path, a burst of changes with
    // one dump.
    this.#cleanupLater({ added: d.add, removed: d.remove });
  }

  /**
   * Queues a change's stale-flow clean-up. It runs `CLEANUP_DELAY_MS` after the first change
   * queued, so a burst of changes shares one conntrack dump (the kernel walks its whole hash
   * table for every dump: milliseconds, whatever is in it); changes queued while one runs share
   * the next.
   */
  #cleanupLater(change: ElementChange): void {
    this.#pendingCleanup = this.#pendingCleanup
      ? mergeChanges(this.#pendingCleanup, change)
      : change;
    if (this.#cleaning) return;
    this.#cleaning = (async () => {
      while (this.#pendingCleanup) {
        if (!this.#stopped) await new Promise((r) => setTimeout(r, CLEANUP_DELAY_MS));
        const next = this.#pendingCleanup;
        this.#pendingCleanup = null;
        await this.#clearFlows(next);
      }
      this.#cleaning = null;
    })();
  }

  async #clearStale(before: readonly NatElement[], after: readonly NatElement[]): Promise<void> {
    const d = diffElements(before, after);
    if (!isEmptyDiff(d)) await this.#clearFlows({ added: d.add, removed: d.remove });
  }

  async #clearFlows(change: ElementChange): Promise<void> {
    try {
      const deleted = await this.#d.clearConntrack(change);
      if (deleted > 0) this.#d.log.info({ deleted }, 'cleared stale conntrack entries');
    } catch (e) {
      this.#d.log.warn({ err: e }, 'could not clear conntrack entries of old backends');
    }
  }

  #repaired(what: string, detail: Record<string, unknown>): void {
    this.#repairs++;
    this.#d.metrics.nodeportRepairs.inc();
    this.#d.log.warn({ drift: what, ...detail }, 'node-port table drifted; repairing');
  }
}
