// The SQLite lease store on real files: the shared contract, durability, migrations, pragmas.
import t, { type Test } from 'tap';
import fs, { mkdtempSync, rmSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { rejectsCode, throwsCode } from '../harness/expect-code.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { openStore, SQLITE_FILE } from '../../src/store/open.js';
import { SQLITE_MIGRATIONS } from '../../src/store/migrations.js';
import { storeContract } from '../harness/store-contract.js';
import type { StoreSnapshot } from '../../src/store/types.js';

const dir = mkdtempSync(join(tmpdir(), 'bw-store-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

t.test('contract', async (t) => {
  storeContract(t, async () => openSqliteStore(join(dir, `contract-${n++}.db`)));
});

t.test('a lease survives closing and reopening the file', async (t) => {
  const path = join(dir, 'reopen.db');
  const s1 = openSqliteStore(path);
  await s1.claim({ sandbox: 'a', ip: '10.8.64.2', mac: null, at: new Date() });
  await s1.quarantine(
    { ip: '10.8.64.3', reason: 'x', evidence: {}, since: new Date().toISOString(), until: null },
    new Date(),
  );
  await s1.close();
  const s2 = openSqliteStore(path);
  t.teardown(() => s2.close());
  const snap = await s2.snapshot();
  t.same(
    snap.leases.map((l) => [l.sandbox, l.ip]),
    [['a', '10.8.64.2']],
  );
  t.same(
    snap.quarantine.map((q) => q.ip),
    ['10.8.64.3'],
  );
  t.equal(snap.cursor, '10.8.64.2');
});

t.test('WAL, schema version, append-only events, one active lease per sandbox', async (t) => {
  const path = join(dir, 'pragmas.db');
  const s = openSqliteStore(path);
  await s.claim({ sandbox: 'a', ip: '10.8.64.2', mac: null, at: new Date() });
  await s.close();
  const db = new Database(path);
  t.teardown(() => db.close());
  t.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  t.equal(db.pragma('user_version', { simple: true }), SQLITE_MIGRATIONS.length);
  t.throws(() => db.prepare('DELETE FROM events').run(), /append-only/);
  t.throws(() => db.prepare("UPDATE events SET kind = 'x'").run(), /append-only/);
  t.throws(
    () =>
      db
        .prepare(
          "INSERT INTO leases (ip, sandbox, state, generation, allocated_at, updated_at) VALUES ('10.8.64.3', 'a', 'active', 1, 'x', 'x')",
        )
        .run(),
    /UNIQUE/,
    'a sandbox cannot hold two active leases even behind the store',
  );
});

t.test('a file from a newer bridgeward is refused', async (t) => {
  const path = join(dir, 'newer.db');
  const db = new Database(path);
  db.pragma(`user_version = ${SQLITE_MIGRATIONS.length + 1}`);
  db.close();
  throwsCode(t, () => openSqliteStore(path), 'STORE_UNAVAILABLE');
});

t.test('an unopenable path is STORE_UNAVAILABLE', async (t) => {
  throwsCode(t, () => openSqliteStore(join(dir, 'missing-dir', 'x.db')), 'STORE_UNAVAILABLE');
});

t.test('two connections to one file (two processes) never both win an address', async (t) => {
  const path = join(dir, 'two.db');
  const a = openSqliteStore(path);
  const b = openSqliteStore(path);
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  await a.claim({ sandbox: 'x', ip: '10.8.64.2', mac: null, at: new Date() });
  await rejectsCode(
    t,
    b.claim({ sandbox: 'y', ip: '10.8.64.2', mac: null, at: new Date() }),
    'CONFLICT',
  );
});

t.test("another connection's write moves the revision too", async (t) => {
  const path = join(dir, 'revision.db');
  const a = openSqliteStore(path);
  const b = openSqliteStore(path);
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const before = await a.revision();
  t.equal(await a.revision(), before, 'stable while nothing is written');
  await b.claim({ sandbox: 'x', ip: '10.8.64.2', mac: null, at: new Date() });
  t.not(await a.revision(), before, 'a write through the other connection');
});

t.test('snapshots kept in memory match the file after every kind of write', async (t) => {
  const path = join(dir, 'cache.db');
  const a = openSqliteStore(path);
  const b = openSqliteStore(path); // another connection (another process): it reloads from disk
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  let seed = 7;
  const rand = (k: number) => (seed = (seed * 48271) % 2147483647) % k; // Park-Miller
  const ips = Array.from({ length: 6 }, (_, i) => `10.8.64.${i + 2}`);
  const sandboxes = ['s0', 's1', 's2', 's3', 's4', 's5', 's6', 's7'];
  const quiet = (p: Promise<unknown>) => p.catch(() => undefined); // refused writes are expected
  let mismatches = 0;
  const seen = { leases: 0, cooling: 0, quarantine: 0 };
  for (let step = 0; step < 300; step++) {
    const at = new Date(Date.parse('2026-06-12T12:00:00.000Z') + step * 1000);
    const ip = ips[rand(ips.length)] as string;
    const sandbox = sandboxes[rand(sandboxes.length)] as string;
    const writer = rand(10) === 0 ? b : a; // now and then the other connection writes
    switch (rand(6)) {
      case 0:
      case 1:
        // One group commit: a claim, maybe a refused twin claim, maybe a release.
        await Promise.all([
          quiet(writer.claim({ sandbox, ip, mac: null, at })),
          quiet(writer.claim({ sandbox: `${sandbox}x`, ip, mac: null, at })),
          quiet(writer.release(sandboxes[rand(sandboxes.length)] as string, at)),
        ]);
        break;
      case 2:
        await quiet(writer.release(sandbox, at));
        break;
      case 3:
        await quiet(writer.bind(sandbox, { mac: '02:00:00:00:00:0a', ifindex: step }, at));
        break;
      case 4: {
        const until = rand(2) === 0 ? null : new Date(at.getTime() + rand(3) * 1000).toISOString();
        const q = { ip, reason: 'dup', evidence: { step }, since: at.toISOString(), until };
        await quiet(writer.quarantine(q, at));
        break;
      }
      default:
        await quiet(writer.clearQuarantine(ip, at, { by: 'test' }));
    }
    // Cooling addresses come in no particular order: compare them sorted.
    const sorted = (x: StoreSnapshot) => ({
      ...x,
      cooling: [...x.cooling].sort((p, q) => p.ip.localeCompare(q.ip)),
    });
    const [mine, fresh] = [sorted(await a.snapshot()), sorted(await b.snapshot())];
    if (mine.leases.length > 0) seen.leases++;
    if (mine.cooling.length > 0) seen.cooling++;
    if (mine.quarantine.length > 0) seen.quarantine++;
    if (JSON.stringify(mine) !== JSON.stringify(fresh)) {
      mismatches++;
      t.same(mine, fresh, `step ${step}`);
    }
  }
  t.equal(mismatches, 0, 'the kept snapshot equals a fresh read after each of 300 steps');
  t.ok(
    seen.leases && seen.cooling && seen.quarantine,
    `leases, cooling and quarantine compared: ${JSON.stringify(seen)}`,
  );
});

t.test('openStore picks SQLite in the state dir', async (t) => {
  const log = pino({ level: 'silent' });
  const s = await openStore({ store: { kind: 'sqlite' }, stateDir: dir }, log);
  t.teardown(() => s.close());
  t.equal(s.kind, 'sqlite');
  await s.claim({ sandbox: 'a', ip: '10.8.64.2', mac: null, at: new Date() });
  const db = new Database(join(dir, SQLITE_FILE), { readonly: true });
  t.teardown(() => db.close());
  t.equal((db.prepare('SELECT COUNT(*) AS c FROM leases').get() as { c: number }).c, 1);
});

t.test(
  'group commit: writes issued together commit together; a failing one alone rolls back',
  async (t) => {
    const path = join(dir, 'group.db');
    const s = openSqliteStore(path);
    const at = new Date();
    const results = await Promise.allSettled([
      s.claim({ sandbox: 'a', ip: '10.8.64.2', mac: null, at }),
      s.claim({ sandbox: 'b', ip: '10.8.64.2', mac: null, at }),
      s.claim({ sandbox: 'c', ip: '10.8.64.3', mac: null, at }),
      s.release('nobody', at),
    ]);
    t.same(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled', 'rejected'],
    );
    await s.close();
    const again = openSqliteStore(path);
    t.teardown(() => again.close());
    t.same(
      (await again.snapshot()).leases.map((l) => l.sandbox),
      ['a', 'c'],
      'both winners are durable; the failed ones left nothing behind',
    );
    t.same(
      (await again.history({})).map((e) => e.kind),
      ['allocated', 'allocated'],
    );
  },
);

t.test('close() still commits writes queued just before it', async (t) => {
  const path = join(dir, 'close.db');
  const s = openSqliteStore(path);
  const claimed = s.claim({ sandbox: 'late', ip: '10.8.64.9', mac: null, at: new Date() });
  await s.close();
  t.equal((await claimed).lease.ip, '10.8.64.9');
  const again = openSqliteStore(path);
  t.teardown(() => again.close());
  t.ok(await again.leaseBySandbox('late'));
});

t.test('a version-1 file is migrated forward and keeps its leases', async (t) => {
  const path = join(dir, 'v1.db');
  const db = new Database(path);
  db.exec(SQLITE_MIGRATIONS[0] as string);
  db.pragma('user_version = 1');
  db.prepare(
    "INSERT INTO leases (ip, sandbox, state, generation, allocated_at, updated_at) VALUES ('10.8.64.7', 'old', 'active', 3, 'x', 'x')",
  ).run();
  db.close();
  const s = openSqliteStore(path);
  t.teardown(() => s.close());
  t.match(await s.leaseBySandbox('old'), { ip: '10.8.64.7', generation: 3, node: null });
  const check = new Database(path, { readonly: true });
  t.teardown(() => check.close());
  t.equal(check.pragma('user_version', { simple: true }), SQLITE_MIGRATIONS.length);
});

t.test(
  'a version-2 file is migrated: event ids go on increasing, the cursor comes from them',
  async (t) => {
    const path = join(dir, 'v2.db');
    const db = new Database(path);
    db.exec(SQLITE_MIGRATIONS[0] as string);
    db.exec(SQLITE_MIGRATIONS[1] as string);
    db.pragma('user_version = 2');
    const ev = db.prepare(
      "INSERT INTO events (at, kind, ip, sandbox, detail) VALUES ('t', ?, ?, ?, '{}')",
    );
    ev.run('allocated', '10.8.64.4', 'a');
    ev.run('allocated', '10.8.64.9', 'b');
    ev.run('released', '10.8.64.9', 'b');
    db.prepare("INSERT INTO meta (key, value) VALUES ('cursor', '10.8.64.9')").run();
    db.close();

    const s = openSqliteStore(path);
    t.teardown(() => s.close());
    t.equal((await s.snapshot()).cursor, '10.8.64.9', 'the newest allocated event');
    await s.claim({ sandbox: 'c', ip: '10.8.64.5', mac: null, at: new Date() });
    const history = await s.history({});
    t.same(
      history.map((e) => [e.id, e.kind, e.sandbox]),
      [
        [1, 'allocated', 'a'],
        [2, 'allocated', 'b'],
        [3, 'released', 'b'],
        [4, 'allocated', 'c'],
      ],
    );
    t.same(
      (await s.history({ ip: '10.8.64.9' })).map((e) => e.id),
      [2, 3],
    );
    await s.close();

    const check = new Database(path);
    t.teardown(() => check.close());
    t.throws(() => check.prepare('DELETE FROM events').run(), /append-only/);
    t.throws(() => check.prepare("UPDATE events SET kind = 'x'").run(), /append-only/);
    t.same(check.prepare("SELECT key FROM meta WHERE key = 'cursor'").all(), []);
    t.same(check.prepare("SELECT name FROM sqlite_sequence WHERE name = 'events'").all(), []);
    const again = openSqliteStore(path);
    t.teardown(() => again.close());
    t.equal((await again.snapshot()).cursor, '10.8.64.5', 'kept across a restart');
  },
);

/** Replaces fs.fdatasync (which the store calls through node:fs) for one test. */
function interceptFdatasync(
  t: Test,
  onCall: (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => void,
): void {
  const real = fs.fdatasync;
  (fs as { fdatasync: unknown }).fdatasync = onCall;
  syncBuiltinESMExports();
  t.teardown(() => {
    (fs as { fdatasync: unknown }).fdatasync = real;
    syncBuiltinESMExports();
  });
}

t.test('a write is answered only once the WAL has been synced to disk', async (t) => {
  const path = join(dir, 'sync.db');
  const s = openSqliteStore(path);
  const syncs: (() => void)[] = [];
  interceptFdatasync(t, (fd, cb) => syncs.push(() => fs.fstat(fd, () => cb(null))));
  let answered = false;
  const claimed = s
    .claim({ sandbox: 'a', ip: '10.8.64.2', mac: null, at: new Date() })
    .then(() => (answered = true));
  await new Promise((r) => setImmediate(r));
  t.equal(syncs.length, 1, 'the commit asked for one sync');
  t.notOk(answered, 'not answered before the sync finished');
  t.equal((await s.snapshot()).leases.length, 1, 'committed (visible) meanwhile');
  const second = s.claim({ sandbox: 'b', ip: '10.8.64.3', mac: null, at: new Date() });
  await new Promise((r) => setImmediate(r));
  t.equal(syncs.length, 1, 'a commit made during a sync waits for the next one');
  syncs.shift()?.();
  await claimed;
  t.ok(answered);
  await new Promise((r) => setImmediate(r));
  t.equal(syncs.length, 1, 'the next sync covers the second commit');
  syncs.shift()?.();
  t.equal((await second).lease.ip, '10.8.64.3');
  await s.close();
});

t.test('a failed WAL sync fails the writes it covered with STORE_UNAVAILABLE', async (t) => {
  const s = openSqliteStore(join(dir, 'sync-fail.db'));
  t.teardown(() => s.close());
  interceptFdatasync(t, (_fd, cb) =>
    setImmediate(() => cb(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }))),
  );
  await rejectsCode(
    t,
    s.claim({ sandbox: 'a', ip: '10.8.64.2', mac: null, at: new Date() }),
    'STORE_UNAVAILABLE',
  );
});
