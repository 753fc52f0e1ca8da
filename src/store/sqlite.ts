/**
 * The embedded `LeaseStore`: one SQLite file (better-sqlite3) in the state dir, in WAL mode.
 * Every mutation is answered only once it is on disk, so an answered lease survives a crash or
 * power loss: SQLite writes a commit to the WAL (`synchronous=NORMAL`) and the store then
 * fdatasyncs the WAL off the event loop (libuv's thread pool), one sync at a time, covering every
 * commit made before it started. This is the guarantee of `synchronous=FULL` without the event
 * loop standing still in the fsync: the agent goes on reading requests meanwhile. SQLite
 * still syncs the WAL before each checkpoint and the database after it, as with FULL. Reads
 * (snapshots, lookups) may see a commit before its sync has finished; only the writers' answers
 * wait for it.
 *
 * Every mutation is atomic (its own savepoint) inside an IMMEDIATE transaction (the write lock
 * is taken before anything is read); mutations issued in one synchronous stretch share one
 * commit, made as soon as that stretch ends (group commit: the IPAM issues a whole batch of
 * allocations and releases at once). The address is the primary key of
 * `leases` and a partial unique index keeps a sandbox to one active lease.
 * The event history is append-only (triggers refuse UPDATE and DELETE). The allocator's
 * snapshot is served from rows kept in memory, updated by each committed mutation and reloaded in
 * full when another connection has written the file.
 *
 * @example
 * const store = openSqliteStore('/var/lib/bridgeward/leases.db');
 * await store.claim({ sandbox: 'app-1', ip: '10.8.64.7', mac: null, at: new Date() });
 * await store.close();
 */
import { closeSync, fdatasync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { BridgewardError } from '../errors.js';
import { SQLITE_MIGRATIONS } from './migrations.js';
import { storeEvents, type NewEvent } from './events.js';
import type {
  ClaimRequest,
  ClaimResult,
  CoolingAddress,
  Declaration,
  Identity,
  Lease,
  LeaseEvent,
  LeaseStore,
  PortMapping,
  Quarantine,
  StoreSnapshot,
} from './types.js';

/** How long a writer waits for another process's write lock before the store reports busy. */
const BUSY_TIMEOUT_MS = 5000;

interface LeaseRow {
  ip: string;
  sandbox: string;
  mac: string | null;
  ifindex: number | null;
  ifname: string | null;
  state: 'active' | 'released';
  generation: number;
  allocated_at: string;
  updated_at: string;
  released_at: string | null;
  node: string | null;
}

type CoolingRow = Pick<LeaseRow, 'ip' | 'sandbox' | 'generation' | 'released_at' | 'updated_at'>;

interface QuarantineRow {
  ip: string;
  reason: string;
  evidence: string;
  since: string;
  until: string | null;
}

interface EventRow {
  id: number;
  at: string;
  kind: string;
  ip: string | null;
  sandbox: string | null;
  detail: string;
}

interface PortRow {
  proto: 'tcp' | 'udp';
  host_port: number;
  sandbox: string;
  port: number;
}

interface IdentityRow {
  sandbox: string;
  ip: string;
  generation: number;
  secret_hash: string;
  app: string | null;
  audiences: string;
  created_at: string;
  rotated_at: string;
}

/**
 * Brings a database to the newest schema version, one transaction per migration.
 *
 * @throws BridgewardError STORE_UNAVAILABLE when the file was written by a newer bridgeward.
 */
export function migrate(db: Database.Database): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SQLITE_MIGRATIONS.length) {
    throw new BridgewardError(
      'STORE_UNAVAILABLE',
      `store ${db.name} has schema version ${current}, newer than this bridgeward (${SQLITE_MIGRATIONS.length})`,
    );
  }
  for (let v = current; v < SQLITE_MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(SQLITE_MIGRATIONS[v] as string);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
  return SQLITE_MIGRATIONS.length;
}

/**
 * Opens (creating if needed) the SQLite store at `path` and migrates it.
 *
 * @throws BridgewardError STORE_UNAVAILABLE when the file cannot be opened or migrated.
 */
export function openSqliteStore(path: string): LeaseStore {
  let db: Database.Database | null = null;
  try {
    db = new Database(path);
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') {
      throw new BridgewardError(
        'STORE_UNAVAILABLE',
        `store ${path}: SQLite cannot use WAL mode here (journal mode stays ${String(mode)})`,
      );
    }
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    migrate(db); // its reads have created the WAL file, which lives as long as this connection
    // From here on the store syncs the WAL itself before answering (see the file comment).
    db.pragma('synchronous = NORMAL');
    return new SqliteStore(db, openSync(`${path}-wal`, 'r'));
  } catch (e) {
    db?.close();
    throw storeError(e, `open ${path}`);
  }
}

/** A queued mutation of the group commit. */
interface PendingWrite {
  readonly what: string;
  readonly f: () => unknown;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

/** What one mutation of a group commit came to. */
type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** A committed group whose callers wait for the WAL sync that makes it durable. */
interface Unsynced {
  readonly batch: readonly PendingWrite[];
  readonly outcomes: readonly Outcome[];
}

/**
 * The rows a snapshot is made of, kept in memory between snapshots (reading and materialising
 * every lease row for each allocation batch dominated its cost). Each mutation of this
 * connection stages the change it made to them, applied once its commit succeeded; a commit by
 * any other connection (another process on the same file) changes `PRAGMA data_version`, and
 * the next snapshot then reloads everything.
 */
interface SnapshotRows {
  /** `PRAGMA data_version` when the rows were loaded. */
  readonly dataVersion: number;
  /** Active leases by address. */
  readonly leases: Map<string, Lease>;
  /** Released addresses by address. */
  readonly cooling: Map<string, CoolingAddress>;
  /** Every quarantine record (expired ones too) by address. */
  readonly quarantine: Map<string, Quarantine>;
  /** The round-robin cursor. */
  cursor: string | null;
}

/** A mutation's change to the snapshot rows, applied once the mutation has committed. */
type RowChange = (rows: SnapshotRows) => void;

class SqliteStore implements LeaseStore {
  readonly kind = 'sqlite' as const;
  readonly #db: Database.Database;
  readonly #q;
  /** Runs one mutation in its own savepoint (built once: better-sqlite3 wrappers are costly). */
  readonly #inSavepoint: (f: () => unknown) => unknown;
  /** Runs a group of mutations in one IMMEDIATE transaction, each in its savepoint. */
  readonly #group: (batch: readonly PendingWrite[]) => Outcome[];
  /** Loads every snapshot row in one read transaction. */
  readonly #loadRows: () => SnapshotRows;
  /** The snapshot rows, or null until the first snapshot (or after a failed commit). */
  #rows: SnapshotRows | null = null;
  /** Groups this connection committed (with `PRAGMA data_version`: the store's revision). */
  #commits = 0;
  /** The row changes of the mutations of the group being committed that succeeded so far. */
  readonly #changes: RowChange[] = [];
  readonly #pending: PendingWrite[] = [];
  /** Descriptor of the WAL file, synced before callers are answered. */
  readonly #walFd: number;
  /** Committed groups not yet covered by a finished sync. */
  readonly #unsynced: Unsynced[] = [];
  /** The sync in flight (with the start of the next one chained on), or null. */
  #syncing: Promise<void> | null = null;

  constructor(db: Database.Database, walFd: number) {
    this.#db = db;
    this.#walFd = walFd;
    this.#q = {
      activeBySandbox: db.prepare<[string], LeaseRow>(
        `SELECT * FROM leases WHERE sandbox = ? AND state = 'active'`,
      ),
      byIp: db.prepare<[string], LeaseRow>(`SELECT * FROM leases WHERE ip = ?`),
      active: db.prepare<[], LeaseRow>(`SELECT * FROM leases WHERE state = 'active'`),
      released: db.prepare<[], CoolingRow>(
        `SELECT ip, sandbox, generation, released_at, updated_at FROM leases WHERE state = 'released'`,
      ),
      upsertLease: db.prepare(
        `INSERT INTO leases (ip, sandbox, mac, ifindex, ifname, state, generation, allocated_at, updated_at, released_at, node)
         VALUES (@ip, @sandbox, @mac, NULL, NULL, 'active', @generation, @at, @at, NULL, @node)
         ON CONFLICT (ip) DO UPDATE SET sandbox = excluded.sandbox, mac = excluded.mac, node = excluded.node,
           ifindex = NULL, ifname = NULL, state = 'active', generation = excluded.generation,
           allocated_at = excluded.allocated_at, updated_at = excluded.updated_at, released_at = NULL`,
      ),
      releaseLease: db.prepare(
        `UPDATE leases SET state = 'released', released_at = @at, updated_at = @at WHERE ip = @ip`,
      ),
      bindLease: db.prepare(
        `UPDATE leases SET mac = @mac, ifindex = @ifindex, ifname = @ifname, updated_at = @at WHERE ip = @ip`,
      ),
      quarantineByIp: db.prepare<[string], QuarantineRow>(`SELECT * FROM quarantine WHERE ip = ?`),
      quarantineAll: db.prepare<[], QuarantineRow>(`SELECT * FROM quarantine`),
      dataVersion: db.prepare<[], number>(`PRAGMA data_version`).pluck(),
      upsertQuarantine: db.prepare(
        `INSERT INTO quarantine (ip, reason, evidence, since, until) VALUES (@ip, @reason, @evidence, @since, @until)
         ON CONFLICT (ip) DO UPDATE SET reason = excluded.reason, evidence = excluded.evidence, until = excluded.until`,
      ),
      deleteQuarantine: db.prepare(`DELETE FROM quarantine WHERE ip = ?`),
      getMeta: db.prepare<[string], { value: string }>(`SELECT value FROM meta WHERE key = ?`),
      // The round-robin cursor: the address of the newest 'allocated' event.
      lastAllocated: db
        .prepare<[], string>(
          `SELECT ip FROM events WHERE kind = 'allocated' ORDER BY id DESC LIMIT 1`,
        )
        .pluck(),
      setMeta: db.prepare(
        `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
      ),
      insertEvent: db.prepare(
        `INSERT INTO events (at, kind, ip, sandbox, detail) VALUES (@at, @kind, @ip, @sandbox, @detail)`,
      ),
      ports: db.prepare<[], PortRow>(`SELECT * FROM ports ORDER BY proto, host_port`),
      portsBySandbox: db.prepare<[string], PortRow>(
        `SELECT * FROM ports WHERE sandbox = ? ORDER BY proto, host_port`,
      ),
      port: db.prepare<[string, number], PortRow>(
        `SELECT * FROM ports WHERE proto = ? AND host_port = ?`,
      ),
      upsertPort: db.prepare(
        `INSERT INTO ports (proto, host_port, sandbox, port) VALUES (@proto, @hostPort, @sandbox, @port)
         ON CONFLICT (proto, host_port) DO UPDATE SET sandbox = excluded.sandbox, port = excluded.port`,
      ),
      deletePort: db.prepare(`DELETE FROM ports WHERE proto = ? AND host_port = ?`),
      deletePortsBySandbox: db.prepare(`DELETE FROM ports WHERE sandbox = ?`),
      identity: db.prepare<[string], IdentityRow>(`SELECT * FROM identities WHERE sandbox = ?`),
      upsertIdentity: db.prepare(
        `INSERT INTO identities (sandbox, ip, generation, secret_hash, app, audiences, created_at, rotated_at)
         VALUES (@sandbox, @ip, @generation, @secretHash, @app, @audiences, @createdAt, @rotatedAt)
         ON CONFLICT (sandbox) DO UPDATE SET ip = excluded.ip, generation = excluded.generation,
           secret_hash = excluded.secret_hash, app = excluded.app, audiences = excluded.audiences,
           created_at = excluded.created_at, rotated_at = excluded.rotated_at`,
      ),
      deleteIdentity: db.prepare(`DELETE FROM identities WHERE sandbox = ?`),
    };
    this.#inSavepoint = db.transaction((f: () => unknown) => f());
    this.#group = db.transaction((batch: readonly PendingWrite[]) =>
      batch.map((m): Outcome => {
        const staged = this.#changes.length;
        try {
          return { ok: true, value: this.#inSavepoint(m.f) };
        } catch (error) {
          this.#changes.length = staged; // rolled back with its savepoint
          return { ok: false, error };
        }
      }),
    ).immediate;
    this.#loadRows = db.transaction((): SnapshotRows => ({
      dataVersion: this.#q.dataVersion.get() as number,
      leases: new Map(this.#q.active.all().map((r) => [r.ip, toLease(r)])),
      cooling: new Map(this.#q.released.all().map((r) => [r.ip, toCooling(r)])),
      quarantine: new Map(this.#q.quarantineAll.all().map((r) => [r.ip, toQuarantine(r)])),
      cursor: this.#q.lastAllocated.get() ?? null,
    })).deferred;
  }

  async snapshot(): Promise<StoreSnapshot> {
    return this.#read('snapshot', () => {
      let rows = this.#rows;
      if (rows === null || rows.dataVersion !== this.#q.dataVersion.get()) {
        rows = this.#rows = this.#loadRows();
      }
      const now = new Date().toISOString();
      return {
        leases: [...rows.leases.values()].sort(byIp),
        cooling: [...rows.cooling.values()], // as many as the pool: left unsorted (order is moot)
        quarantine: [...rows.quarantine.values()]
          .filter((q) => q.until === null || q.until > now)
          .sort(byIp),
        cursor: rows.cursor,
      };
    });
  }

  async claim(req: ClaimRequest): Promise<ClaimResult> {
    return this.#write('claim', () => {
      const mine = this.#q.activeBySandbox.get(req.sandbox);
      if (mine) return { lease: toLease(mine), existing: true };
      const at = req.at.toISOString();
      const row = this.#q.byIp.get(req.ip);
      if (row?.state === 'active') {
        throw new BridgewardError(
          'CONFLICT',
          `${req.ip} is already leased to sandbox ${row.sandbox}`,
          { ip: req.ip },
        );
      }
      const q = this.#q.quarantineByIp.get(req.ip);
      if (q && (q.until === null || q.until > at)) {
        throw new BridgewardError('CONFLICT', `${req.ip} is quarantined (${q.reason})`, {
          ip: req.ip,
        });
      }
      const generation = (row?.generation ?? 0) + 1;
      this.#q.upsertLease.run({
        ip: req.ip,
        sandbox: req.sandbox,
        mac: req.mac,
        generation,
        at,
        node: req.node ?? null,
      });
      this.#event(storeEvents.allocated(at, req.ip, req.sandbox, generation, req.mac));
      // The row just written, without reading it back.
      const lease: Lease = {
        sandbox: req.sandbox,
        ip: req.ip,
        mac: req.mac,
        ifindex: null,
        ifname: null,
        state: 'active',
        node: req.node ?? null,
        generation,
        allocatedAt: at,
        updatedAt: at,
      };
      this.#stage((rows) => {
        rows.cooling.delete(req.ip);
        rows.leases.set(req.ip, lease);
        rows.cursor = req.ip;
      });
      return { lease, existing: false };
    });
  }

  async release(sandbox: string, at: Date, detail: Record<string, unknown> = {}): Promise<Lease> {
    return this.#write('release', () => {
      const row = this.#mustLease(sandbox);
      const when = at.toISOString();
      const ports = this.#q.portsBySandbox.all(sandbox);
      if (ports.length > 0) this.#q.deletePortsBySandbox.run(sandbox);
      const hadIdentity = this.#q.deleteIdentity.run(sandbox).changes > 0;
      this.#q.releaseLease.run({ ip: row.ip, at: when });
      this.#stage((rows) => {
        rows.leases.delete(row.ip);
        rows.cooling.set(row.ip, toCooling({ ...row, released_at: when }));
      });
      this.#event(storeEvents.released(when, row, ports.map(toPort), hadIdentity, detail));
      return toLease(row);
    });
  }

  async bind(
    sandbox: string,
    binding: { mac?: string; ifindex?: number | null; ifname?: string | null },
    at: Date,
  ): Promise<Lease> {
    return this.#write('bind', () => {
      const row = this.#mustLease(sandbox);
      const next = {
        mac: binding.mac ?? row.mac,
        ifindex: binding.ifindex === undefined ? row.ifindex : binding.ifindex,
        ifname: binding.ifname === undefined ? row.ifname : binding.ifname,
      };
      if (next.mac === row.mac && next.ifindex === row.ifindex && next.ifname === row.ifname) {
        return toLease(row);
      }
      const when = at.toISOString();
      this.#q.bindLease.run({ ip: row.ip, at: when, ...next });
      this.#event(storeEvents.bound(when, row.ip, sandbox, next));
      const lease = toLease(this.#q.byIp.get(row.ip) as LeaseRow);
      this.#stage((rows) => rows.leases.set(row.ip, lease));
      return lease;
    });
  }

  async leaseBySandbox(sandbox: string): Promise<Lease | null> {
    return this.#read('lease lookup', () => {
      const row = this.#q.activeBySandbox.get(sandbox);
      return row ? toLease(row) : null;
    });
  }

  async leaseByIp(ip: string): Promise<Lease | null> {
    return this.#read('lease lookup', () => {
      const row = this.#q.byIp.get(ip);
      return row?.state === 'active' ? toLease(row) : null;
    });
  }

  async quarantine(q: Quarantine, at: Date): Promise<void> {
    await this.#write('quarantine', () => {
      const when = at.toISOString();
      let before = this.#q.quarantineByIp.get(q.ip);
      if (before && before.until !== null && before.until <= when) {
        // An expired record is replaced, not refreshed: a new quarantine starts.
        this.#q.deleteQuarantine.run(q.ip);
        before = undefined;
      }
      this.#q.upsertQuarantine.run({
        ip: q.ip,
        reason: q.reason,
        evidence: JSON.stringify(q.evidence),
        since: q.since,
        until: q.until,
      });
      const stored = toQuarantine(this.#q.quarantineByIp.get(q.ip) as QuarantineRow);
      this.#stage((rows) => rows.quarantine.set(q.ip, stored));
      if (!before) {
        this.#event(storeEvents.quarantined(when, q));
      }
    });
  }

  async clearQuarantine(ip: string, at: Date, detail: Record<string, unknown>): Promise<void> {
    await this.#write('clear quarantine', () => {
      const before = this.#q.quarantineByIp.get(ip);
      if (!before) {
        throw new BridgewardError('UNKNOWN_ADDRESS', `${ip} is not quarantined`, { ip });
      }
      this.#q.deleteQuarantine.run(ip);
      this.#stage((rows) => rows.quarantine.delete(ip));
      this.#event(storeEvents.quarantineCleared(at.toISOString(), ip, before.reason, detail));
    });
  }

  async appendEvent(e: Omit<LeaseEvent, 'id'>): Promise<void> {
    await this.#write('append event', () => this.#event(e));
  }

  async history(filter: { ip?: string; sandbox?: string; limit?: number }): Promise<LeaseEvent[]> {
    return this.#read('history', () => {
      const where: string[] = [];
      const args: (string | number)[] = [];
      if (filter.ip !== undefined) {
        where.push('ip = ?');
        args.push(filter.ip);
      }
      if (filter.sandbox !== undefined) {
        where.push('sandbox = ?');
        args.push(filter.sandbox);
      }
      const sql =
        `SELECT * FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC` +
        (filter.limit !== undefined ? ' LIMIT ?' : '');
      if (filter.limit !== undefined) args.push(filter.limit);
      const rows = this.#db.prepare<(string | number)[], EventRow>(sql).all(...args);
      return rows.reverse().map(toEvent);
    });
  }

  async declare(
    node: string | null,
    d: Declaration,
    detail: Record<string, unknown>,
  ): Promise<void> {
    await this.#write('declare', () => {
      this.#q.setMeta.run(declarationKey(node), JSON.stringify(d));
      this.#event(storeEvents.synced(d.at, detail));
    });
  }

  async declaration(node: string | null): Promise<Declaration | null> {
    return this.#read('declaration lookup', () => {
      const row = this.#q.getMeta.get(declarationKey(node));
      return row ? (JSON.parse(row.value) as Declaration) : null;
    });
  }

  async revision(): Promise<string> {
    return this.#read('revision', () => `${this.#commits}:${this.#q.dataVersion.get() as number}`);
  }

  async listPorts(): Promise<PortMapping[]> {
    return this.#read('list ports', () => this.#q.ports.all().map(toPort));
  }

  async putPort(m: PortMapping, at: Date): Promise<void> {
    await this.#write('put port', () => {
      const lease = this.#mustLease(m.sandbox);
      const before = this.#q.port.get(m.proto, m.hostPort);
      if (before && before.sandbox !== m.sandbox) {
        throw new BridgewardError(
          'PORT_IN_USE',
          `${m.proto}/${m.hostPort} is already mapped to sandbox ${before.sandbox}`,
          { proto: m.proto, hostPort: m.hostPort, sandbox: before.sandbox },
        );
      }
      if (before && before.port === m.port) return;
      this.#q.upsertPort.run({ ...m });
      this.#event(storeEvents.portMapped(at.toISOString(), lease.ip, m, before?.port ?? null));
    });
  }

  async removePort(proto: 'tcp' | 'udp', hostPort: number, at: Date): Promise<PortMapping> {
    return this.#write('remove port', () => {
      const before = this.#q.port.get(proto, hostPort);
      if (!before) {
        throw new BridgewardError('UNKNOWN_PORT', `no node port ${proto}/${hostPort}`, {
          proto,
          hostPort,
        });
      }
      this.#q.deletePort.run(proto, hostPort);
      const lease = this.#q.activeBySandbox.get(before.sandbox);
      this.#event(storeEvents.portUnmapped(at.toISOString(), lease?.ip ?? null, toPort(before)));
      return toPort(before);
    });
  }

  async putIdentity(i: Identity, at: Date): Promise<void> {
    await this.#write('put identity', () => {
      const lease = this.#mustLease(i.sandbox);
      const existed = this.#q.identity.get(i.sandbox) !== undefined;
      this.#q.upsertIdentity.run({
        sandbox: i.sandbox,
        ip: i.ip,
        generation: i.generation,
        secretHash: i.secretHash,
        app: i.app,
        audiences: JSON.stringify(i.audiences),
        createdAt: i.createdAt,
        rotatedAt: i.rotatedAt,
      });
      this.#event(storeEvents.identityPut(at.toISOString(), lease.ip, i, existed));
    });
  }

  async identity(sandbox: string): Promise<Identity | null> {
    return this.#read('identity lookup', () => {
      const row = this.#q.identity.get(sandbox);
      return row ? toIdentity(row) : null;
    });
  }

  async removeIdentity(sandbox: string, at: Date): Promise<boolean> {
    return this.#write('remove identity', () => {
      const row = this.#q.identity.get(sandbox);
      if (!row) return false;
      this.#q.deleteIdentity.run(sandbox);
      this.#event(storeEvents.identityRemoved(at.toISOString(), row.ip, sandbox, row.generation));
      return true;
    });
  }

  async close(): Promise<void> {
    if (!this.#db.open) return;
    if (this.#pending.length) this.#commit(); // writes already queued still land
    while (this.#syncing) await this.#syncing; // and are answered once durable
    if (!this.#db.open) return; // closed by a concurrent close() meanwhile
    this.#db.close();
    closeSync(this.#walFd);
  }

  #mustLease(sandbox: string): LeaseRow {
    const row = this.#q.activeBySandbox.get(sandbox);
    if (!row) {
      throw new BridgewardError('UNKNOWN_SANDBOX', `sandbox ${sandbox} has no active lease`, {
        sandbox,
      });
    }
    return row;
  }

  /** Stages a change to the snapshot rows, applied if the running mutation commits. */
  #stage(change: RowChange): void {
    this.#changes.push(change);
  }

  #event(e: NewEvent): void {
    this.#q.insertEvent.run({ ...e, detail: JSON.stringify(e.detail) });
  }

  /**
   * Queues a mutation for the next group commit. Mutations queued in one synchronous stretch
   * share one IMMEDIATE transaction (one fsync), committed in the microtask that follows it (not
   * a later event-loop turn: a batch's callers are answered without waiting for the next poll);
   * each runs in its own savepoint, so one that throws is rolled back alone. Callers are
   * answered only after the commit is durable (`#sync`).
   */
  #write<T>(what: string, f: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ what, f, resolve: resolve as (v: unknown) => void, reject });
      if (this.#pending.length === 1) queueMicrotask(() => this.#commit());
    });
  }

  #commit(): void {
    const batch = this.#pending.splice(0);
    if (batch.length === 0) return; // flushed early by close()
    let outcomes: Outcome[];
    try {
      outcomes = this.#group(batch);
    } catch (e) {
      this.#rows = null; // rolled back: reloaded in full by the next snapshot
      this.#changes.length = 0;
      for (const m of batch) m.reject(storeError(e, m.what));
      return;
    }
    this.#commits++;
    const rows = this.#rows;
    if (rows) for (const change of this.#changes) change(rows);
    this.#changes.length = 0;
    this.#unsynced.push({ batch, outcomes });
    this.#sync();
  }

  /**
   * Starts an fdatasync of the WAL (in libuv's thread pool) covering every group committed so
   * far, unless one is in flight: groups committed meanwhile wait for the next one. Callers are
   * answered when the sync that covers their group finishes; a failed sync fails them all with
   * STORE_UNAVAILABLE (what they wrote may not be on disk).
   */
  #sync(): void {
    if (this.#syncing || this.#unsynced.length === 0) return;
    const groups = this.#unsynced.splice(0);
    this.#syncing = new Promise<void>((done) =>
      fdatasync(this.#walFd, (err) => {
        answer(groups, err);
        done();
      }),
    ).then(() => {
      this.#syncing = null;
      this.#sync();
    });
  }

  #read<T>(what: string, f: () => T): T {
    try {
      return f();
    } catch (e) {
      throw storeError(e, what);
    }
  }
}

/** Answers the callers of synced groups: their outcomes, or all failed when the sync failed. */
function answer(groups: readonly Unsynced[], syncError: unknown): void {
  for (const { batch, outcomes } of groups) {
    batch.forEach((m, i) => {
      const o = outcomes[i];
      if (syncError) m.reject(storeError(syncError, `${m.what} (sync to disk)`));
      else if (o?.ok) m.resolve(o.value);
      else m.reject(storeError(o?.error, m.what));
    });
  }
}

/** The `meta` key of a node's declaration. */
function declarationKey(node: string | null): string {
  return node === null ? 'declared' : `declared/${node}`;
}

/** Maps a driver failure to STORE_UNAVAILABLE (or CONFLICT for a lost unique-index race). */
function storeError(e: unknown, what: string): BridgewardError {
  if (e instanceof BridgewardError) return e;
  const err = e as { code?: string; message?: string };
  if (typeof err.code === 'string' && err.code.startsWith('SQLITE_CONSTRAINT')) {
    return new BridgewardError('CONFLICT', `store ${what}: ${err.message}`);
  }
  return new BridgewardError('STORE_UNAVAILABLE', `store ${what}: ${err.message ?? String(e)}`);
}

/** Orders records by address as SQLite's `ORDER BY ip` did (byte order of the text). */
function byIp(a: { ip: string }, b: { ip: string }): number {
  return a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0;
}

function toLease(r: LeaseRow): Lease {
  return {
    sandbox: r.sandbox,
    ip: r.ip,
    mac: r.mac,
    ifindex: r.ifindex,
    ifname: r.ifname,
    state: 'active',
    node: r.node,
    generation: r.generation,
    allocatedAt: r.allocated_at,
    updatedAt: r.updated_at,
  };
}

function toCooling(r: CoolingRow): CoolingAddress {
  return {
    ip: r.ip,
    sandbox: r.sandbox,
    generation: r.generation,
    releasedAt: r.released_at ?? r.updated_at,
  };
}

function toQuarantine(r: QuarantineRow): Quarantine {
  return {
    ip: r.ip,
    reason: r.reason,
    evidence: JSON.parse(r.evidence) as Record<string, unknown>,
    since: r.since,
    until: r.until,
  };
}

function toEvent(r: EventRow): LeaseEvent {
  return {
    id: r.id,
    at: r.at,
    kind: r.kind,
    ip: r.ip,
    sandbox: r.sandbox,
    detail: JSON.parse(r.detail) as Record<string, unknown>,
  };
}

function toPort(r: PortRow): PortMapping {
  return { proto: r.proto, hostPort: r.host_port, sandbox: r.sandbox, port: r.port };
}

function toIdentity(r: IdentityRow): Identity {
  return {
    sandbox: r.sandbox,
    ip: r.ip,
    generation: r.generation,
    secretHash: r.secret_hash,
    app: r.app,
    audiences: JSON.parse(r.audiences) as string[],
    createdAt: r.created_at,
    rotatedAt: r.rotated_at,
  };
}
