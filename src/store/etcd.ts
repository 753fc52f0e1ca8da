/**
 * The etcd `LeaseStore` (etcd3), for runners that share a subnet or keep state off-box. Every
 * mutation is one etcd transaction guarded by the mod revisions of every key it read (optimistic
 * concurrency): if another writer changed any of them in between, the transaction does nothing
 * and the operation re-reads and re-decides. So two agents racing for one address can never
 * both win: the loser re-reads the address, finds it leased and gets CONFLICT.
 *
 * Keys under the prefix (default `bridgeward/`): `lease/<ip>` (JSON, active or released),
 * `sandbox/<id>` (ip of its active lease; re-written by port and identity writes so a release
 * notices them), `quarantine/<ip>`, `cursor`, `eventseq` and `event/<zero-padded id>`,
 * `port/<proto>/<hostPort>`, `identity/<id>`, `declared/<node>` (the runtime's last sync as
 * seen by that agent; `declared/-` without a node name).
 *
 * @example
 * const store = await openEtcdStore(['http://127.0.0.1:2379']);
 * await store.claim({ sandbox: 'app-1', ip: '10.8.64.7', mac: null, at: new Date() });
 * await store.close();
 */
import { Etcd3, type IOperation } from 'etcd3';
import { BridgewardError } from '../errors.js';
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

/** A lease record as stored: an active lease, or the last owner of a released address. */
interface LeaseRecord {
  ip: string;
  sandbox: string;
  mac: string | null;
  ifindex: number | null;
  ifname: string | null;
  state: 'active' | 'released';
  generation: number;
  allocatedAt: string;
  updatedAt: string;
  releasedAt: string | null;
  node: string | null;
}

/** Options of `openEtcdStore`. */
export interface EtcdStoreOptions {
  /** Key prefix shared by the agents of one subnet (default `bridgeward/`). */
  readonly prefix?: string;
  /** Milliseconds to wait for the cluster at open (default 3000). */
  readonly connectTimeoutMs?: number;
}

/** Optimistic transaction attempts before a mutation gives up with CONFLICT. */
const MAX_TXN_ATTEMPTS = 50;
const EVENT_ID_WIDTH = 16;

/**
 * Connects to the cluster and checks it answers.
 *
 * @throws BridgewardError STORE_UNAVAILABLE when no endpoint answers in time.
 */
export async function openEtcdStore(
  endpoints: readonly string[],
  opts: EtcdStoreOptions = {},
): Promise<LeaseStore> {
  const client = new Etcd3({
    hosts: [...endpoints],
    dialTimeout: opts.connectTimeoutMs ?? 3000,
    defaultCallOptions: () => ({ deadline: Date.now() + (opts.connectTimeoutMs ?? 3000) }),
  });
  const store = new EtcdStore(client, opts.prefix ?? 'bridgeward/');
  try {
    await client.get(`${opts.prefix ?? 'bridgeward/'}cursor`).exec();
  } catch (e) {
    client.close();
    throw unavailable(e, `connect to ${endpoints.join(',')}`);
  }
  return store;
}

/** Reads and writes of one optimistic transaction attempt. */
class Txn {
  readonly reads = new Map<string, string>();
  readonly ops: IOperation[] = [];
  readonly events: NewEvent[] = [];
  readonly #client: Etcd3;
  readonly #prefix: string;

  constructor(client: Etcd3, prefix: string) {
    this.#client = client;
    this.#prefix = prefix;
  }

  /** Reads a JSON value and remembers its revision for the commit's compare. */
  async get<T>(key: string): Promise<T | null> {
    const full = this.#prefix + key;
    const res = await this.#client.get(full).exec();
    const kv = res.kvs[0];
    this.reads.set(full, kv ? kv.mod_revision : '0');
    return kv ? (JSON.parse(kv.value.toString()) as T) : null;
  }

  /** Reads every JSON value under a key prefix, remembering each key's revision. */
  async list<T>(prefix: string): Promise<T[]> {
    const res = await this.#client
      .getAll()
      .prefix(this.#prefix + prefix)
      .exec();
    return res.kvs.map((kv) => {
      this.reads.set(kv.key.toString(), kv.mod_revision);
      return JSON.parse(kv.value.toString()) as T;
    });
  }

  put(key: string, value: unknown): void {
    this.ops.push(this.#client.put(this.#prefix + key).value(JSON.stringify(value)));
  }

  del(key: string): void {
    this.ops.push(this.#client.delete().key(this.#prefix + key));
  }

  event(e: NewEvent): void {
    this.events.push(e);
  }
}

class EtcdStore implements LeaseStore {
  readonly kind = 'etcd' as const;
  readonly #client: Etcd3;
  readonly #prefix: string;

  constructor(client: Etcd3, prefix: string) {
    this.#client = client;
    this.#prefix = prefix;
  }

  async revision(): Promise<string> {
    return this.#read('revision', async () => {
      const res = await this.#client.get(`${this.#prefix}cursor`).exec();
      return String(res.header.revision);
    });
  }

  async snapshot(): Promise<StoreSnapshot> {
    try {
      const leases = await this.#client.getAll().prefix(`${this.#prefix}lease/`).exec();
      const rev = leases.header.revision;
      const [quarantine, cursor] = await Promise.all([
        this.#client.getAll().prefix(`${this.#prefix}quarantine/`).revision(rev).exec(),
        this.#client.get(`${this.#prefix}cursor`).revision(rev).exec(),
      ]);
      const now = new Date().toISOString();
      const records = leases.kvs.map((kv) => JSON.parse(kv.value.toString()) as LeaseRecord);
      const sortIp = <T extends { ip: string }>(a: T, b: T) => ipKey(a.ip) - ipKey(b.ip);
      return {
        leases: records
          .filter((r) => r.state === 'active')
          .map(toLease)
          .sort(sortIp),
        cooling: records
          .filter((r) => r.state === 'released')
          .map(toCooling)
          .sort(sortIp),
        quarantine: quarantine.kvs
          .map((kv) => JSON.parse(kv.value.toString()) as Quarantine)
          .filter((q) => q.until === null || q.until > now)
          .sort(sortIp),
        cursor: cursor.kvs[0] ? (JSON.parse(cursor.kvs[0].value.toString()) as string) : null,
      };
    } catch (e) {
      throw unavailable(e, 'snapshot');
    }
  }

  claim(req: ClaimRequest): Promise<ClaimResult> {
    return this.#mutate('claim', async (tx) => {
      const mineIp = await tx.get<string>(`sandbox/${req.sandbox}`);
      if (mineIp !== null) {
        const mine = await tx.get<LeaseRecord>(`lease/${mineIp}`);
        if (mine?.state === 'active' && mine.sandbox === req.sandbox) {
          return { lease: toLease(mine), existing: true };
        }
      }
      const at = req.at.toISOString();
      const row = await tx.get<LeaseRecord>(`lease/${req.ip}`);
      if (row?.state === 'active') {
        throw new BridgewardError(
          'CONFLICT',
          `${req.ip} is already leased to sandbox ${row.sandbox}`,
          {
            ip: req.ip,
          },
        );
      }
      const q = await tx.get<Quarantine>(`quarantine/${req.ip}`);
      if (q && (q.until === null || q.until > at)) {
        throw new BridgewardError('CONFLICT', `${req.ip} is quarantined (${q.reason})`, {
          ip: req.ip,
        });
      }
      const generation = (row?.generation ?? 0) + 1;
      const rec: LeaseRecord = {
        ip: req.ip,
        sandbox: req.sandbox,
        mac: req.mac,
        ifindex: null,
        ifname: null,
        state: 'active',
        generation,
        allocatedAt: at,
        updatedAt: at,
        releasedAt: null,
        node: req.node ?? null,
      };
      await tx.get('cursor');
      tx.put(`lease/${req.ip}`, rec);
      tx.put(`sandbox/${req.sandbox}`, req.ip);
      tx.put('cursor', req.ip);
      tx.event(storeEvents.allocated(at, req.ip, req.sandbox, generation, req.mac));
      return { lease: toLease(rec), existing: false };
    });
  }

  release(sandbox: string, at: Date, detail: Record<string, unknown> = {}): Promise<Lease> {
    return this.#mutate('release', async (tx) => {
      const row = await this.#mustLease(tx, sandbox);
      const when = at.toISOString();
      const ports = (await tx.list<PortMapping>('port/')).filter((p) => p.sandbox === sandbox);
      for (const p of ports) tx.del(`port/${p.proto}/${p.hostPort}`);
      const identity = await tx.get<Identity>(`identity/${sandbox}`);
      if (identity) tx.del(`identity/${sandbox}`);
      tx.put(`lease/${row.ip}`, { ...row, state: 'released', releasedAt: when, updatedAt: when });
      tx.del(`sandbox/${sandbox}`);
      tx.event(storeEvents.released(when, row, ports, Boolean(identity), detail));
      return toLease(row);
    });
  }

  bind(
    sandbox: string,
    binding: { mac?: string; ifindex?: number | null; ifname?: string | null },
    at: Date,
  ): Promise<Lease> {
    return this.#mutate('bind', async (tx) => {
      const row = await this.#mustLease(tx, sandbox);
      const next = {
        mac: binding.mac ?? row.mac,
        ifindex: binding.ifindex === undefined ? row.ifindex : binding.ifindex,
        ifname: binding.ifname === undefined ? row.ifname : binding.ifname,
      };
      if (next.mac === row.mac && next.ifindex === row.ifindex && next.ifname === row.ifname) {
        return toLease(row);
      }
      const when = at.toISOString();
      const rec = { ...row, ...next, updatedAt: when };
      tx.put(`lease/${row.ip}`, rec);
      tx.event(storeEvents.bound(when, row.ip, sandbox, next));
      return toLease(rec);
    });
  }

  async leaseBySandbox(sandbox: string): Promise<Lease | null> {
    return this.#read('lease lookup', async (tx) => {
      const ip = await tx.get<string>(`sandbox/${sandbox}`);
      const row = ip === null ? null : await tx.get<LeaseRecord>(`lease/${ip}`);
      return row?.state === 'active' && row.sandbox === sandbox ? toLease(row) : null;
    });
  }

  async leaseByIp(ip: string): Promise<Lease | null> {
    return this.#read('lease lookup', async (tx) => {
      const row = await tx.get<LeaseRecord>(`lease/${ip}`);
      return row?.state === 'active' ? toLease(row) : null;
    });
  }

  async quarantine(q: Quarantine, at: Date): Promise<void> {
    await this.#mutate('quarantine', async (tx) => {
      const when = at.toISOString();
      const before = await tx.get<Quarantine>(`quarantine/${q.ip}`);
      const current = before && (before.until === null || before.until > when) ? before : null;
      tx.put(`quarantine/${q.ip}`, { ...q, since: current ? current.since : q.since });
      if (!current) {
        tx.event(storeEvents.quarantined(when, q));
      }
    });
  }

  async clearQuarantine(ip: string, at: Date, detail: Record<string, unknown>): Promise<void> {
    await this.#mutate('clear quarantine', async (tx) => {
      const before = await tx.get<Quarantine>(`quarantine/${ip}`);
      if (!before) throw new BridgewardError('UNKNOWN_ADDRESS', `${ip} is not quarantined`, { ip });
      tx.del(`quarantine/${ip}`);
      tx.event(storeEvents.quarantineCleared(at.toISOString(), ip, before.reason, detail));
    });
  }

  async appendEvent(e: Omit<LeaseEvent, 'id'>): Promise<void> {
    await this.#mutate('append event', async (tx) => tx.event(e));
  }

  async declare(
    node: string | null,
    d: Declaration,
    detail: Record<string, unknown>,
  ): Promise<void> {
    await this.#mutate('declare', async (tx) => {
      tx.put(declarationKey(node), d);
      tx.event(storeEvents.synced(d.at, detail));
    });
  }

  async declaration(node: string | null): Promise<Declaration | null> {
    return this.#read('declaration lookup', (tx) => tx.get<Declaration>(declarationKey(node)));
  }

  async history(filter: { ip?: string; sandbox?: string; limit?: number }): Promise<LeaseEvent[]> {
    try {
      const res = await this.#client.getAll().prefix(`${this.#prefix}event/`).exec();
      const all = res.kvs
        .map((kv) => JSON.parse(kv.value.toString()) as LeaseEvent)
        .filter(
          (e) =>
            (filter.ip === undefined || e.ip === filter.ip) &&
            (filter.sandbox === undefined || e.sandbox === filter.sandbox),
        );
      return filter.limit === undefined ? all : all.slice(-filter.limit);
    } catch (e) {
      throw unavailable(e, 'history');
    }
  }

  async listPorts(): Promise<PortMapping[]> {
    return this.#read('list ports', async (tx) =>
      (await tx.list<PortMapping>('port/')).sort(
        (a, b) => a.proto.localeCompare(b.proto) || a.hostPort - b.hostPort,
      ),
    );
  }

  async putPort(m: PortMapping, at: Date): Promise<void> {
    await this.#mutate('put port', async (tx) => {
      const lease = await this.#mustLease(tx, m.sandbox);
      const before = await tx.get<PortMapping>(`port/${m.proto}/${m.hostPort}`);
      if (before && before.sandbox !== m.sandbox) {
        throw new BridgewardError(
          'PORT_IN_USE',
          `${m.proto}/${m.hostPort} is already mapped to sandbox ${before.sandbox}`,
          { proto: m.proto, hostPort: m.hostPort, sandbox: before.sandbox },
        );
      }
      if (before && before.port === m.port) return;
      const rec: PortMapping = {
        proto: m.proto,
        hostPort: m.hostPort,
        sandbox: m.sandbox,
        port: m.port,
      };
      tx.put(`port/${m.proto}/${m.hostPort}`, rec);
      tx.put(`sandbox/${m.sandbox}`, lease.ip);
      tx.event(storeEvents.portMapped(at.toISOString(), lease.ip, m, before?.port ?? null));
    });
  }

  removePort(proto: 'tcp' | 'udp', hostPort: number, at: Date): Promise<PortMapping> {
    return this.#mutate('remove port', async (tx) => {
      const before = await tx.get<PortMapping>(`port/${proto}/${hostPort}`);
      if (!before) {
        throw new BridgewardError('UNKNOWN_PORT', `no node port ${proto}/${hostPort}`, {
          proto,
          hostPort,
        });
      }
      tx.del(`port/${proto}/${hostPort}`);
      const ip = await tx.get<string>(`sandbox/${before.sandbox}`);
      tx.event(storeEvents.portUnmapped(at.toISOString(), ip, before));
      return before;
    });
  }

  async putIdentity(i: Identity, at: Date): Promise<void> {
    await this.#mutate('put identity', async (tx) => {
      const lease = await this.#mustLease(tx, i.sandbox);
      const existed = (await tx.get<Identity>(`identity/${i.sandbox}`)) !== null;
      tx.put(`identity/${i.sandbox}`, { ...i, audiences: [...i.audiences] });
      tx.put(`sandbox/${i.sandbox}`, lease.ip);
      tx.event(storeEvents.identityPut(at.toISOString(), lease.ip, i, existed));
    });
  }

  async identity(sandbox: string): Promise<Identity | null> {
    return this.#read('identity lookup', (tx) => tx.get<Identity>(`identity/${sandbox}`));
  }

  removeIdentity(sandbox: string, at: Date): Promise<boolean> {
    return this.#mutate('remove identity', async (tx) => {
      const row = await tx.get<Identity>(`identity/${sandbox}`);
      if (!row) return false;
      tx.del(`identity/${sandbox}`);
      tx.event(storeEvents.identityRemoved(at.toISOString(), row.ip, sandbox, row.generation));
      return true;
    });
  }

  async close(): Promise<void> {
    this.#client.close();
  }

  async #mustLease(tx: Txn, sandbox: string): Promise<LeaseRecord> {
    const ip = await tx.get<string>(`sandbox/${sandbox}`);
    const row = ip === null ? null : await tx.get<LeaseRecord>(`lease/${ip}`);
    if (!row || row.state !== 'active' || row.sandbox !== sandbox) {
      throw new BridgewardError('UNKNOWN_SANDBOX', `sandbox ${sandbox} has no active lease`, {
        sandbox,
      });
    }
    return row;
  }

  async #read<T>(what: string, f: (tx: Txn) => Promise<T>): Promise<T> {
    try {
      return await f(new Txn(this.#client, this.#prefix));
    } catch (e) {
      throw unavailable(e, what);
    }
  }

  /**
   * Runs `body` (reads, decisions, buffered writes) and commits its writes only if none of the
   * keys it read changed since; otherwise re-runs it on fresh reads.
   */
  async #mutate<T>(what: string, body: (tx: Txn) => Promise<T>): Promise<T> {
    for (let attempt = 1; attempt <= MAX_TXN_ATTEMPTS; attempt++) {
      let committed: boolean;
      let result: T;
      try {
        const tx = new Txn(this.#client, this.#prefix);
        result = await body(tx);
        if (tx.events.length) {
          const seq = (await tx.get<number>('eventseq')) ?? 0;
          tx.events.forEach((e, i) => {
            const id = seq + i + 1;
            tx.put(`event/${String(id).padStart(EVENT_ID_WIDTH, '0')}`, { id, ...e });
          });
          tx.put('eventseq', seq + tx.events.length);
        }
        if (tx.ops.length === 0) return result;
        const [first, ...rest] = [...tx.reads.entries()];
        if (!first) throw new Error(`store ${what}: a write without reads cannot be guarded`);
        let cmp = this.#client.if(first[0], 'Mod', '==', first[1]);
        for (const [key, rev] of rest) cmp = cmp.and(key, 'Mod', '==', rev);
        committed = (await cmp.then(...tx.ops).commit()).succeeded;
      } catch (e) {
        throw unavailable(e, what);
      }
      if (committed) return result;
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 * attempt)));
    }
    throw new BridgewardError(
      'CONFLICT',
      `store ${what}: other writers kept changing the same keys (${MAX_TXN_ATTEMPTS} attempts); retry`,
    );
  }
}

/** Maps a client failure to STORE_UNAVAILABLE (bridgeward's own errors pass through). */
function unavailable(e: unknown, what: string): BridgewardError {
  if (e instanceof BridgewardError) return e;
  return new BridgewardError(
    'STORE_UNAVAILABLE',
    `etcd ${what}: ${(e as Error).message ?? String(e)}`,
  );
}

function ipKey(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

function toLease(r: LeaseRecord): Lease {
  return {
    sandbox: r.sandbox,
    ip: r.ip,
    mac: r.mac,
    ifindex: r.ifindex,
    ifname: r.ifname,
    state: 'active',
    node: r.node ?? null,
    generation: r.generation,
    allocatedAt: r.allocatedAt,
    updatedAt: r.updatedAt,
  };
}

function toCooling(r: LeaseRecord): CoolingAddress {
  return {
    ip: r.ip,
    sandbox: r.sandbox,
    generation: r.generation,
    releasedAt: r.releasedAt ?? r.updatedAt,
  };
}

/** The key of a node's declaration. */
function declarationKey(node: string | null): string {
  return `declared/${node ?? '-'}`;
}
