// The IPAM service over a real SQLite store file: idempotence, live sources, the pre-handout
// check, release while live, concurrency and two writers racing on one file.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { IpamService } from '../../src/ipam/service.js';
import { parseCidr } from '../../src/net/ipv4.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { createMetrics } from '../../src/metrics.js';
import type { LiveEvidence, LiveSource } from '../../src/observe/types.js';
import type { LeaseStore } from '../../src/store/types.js';
import { isBridgewardError } from '../../src/errors.js';
import { rejectsCode } from '../harness/expect-code.js';

const dir = mkdtempSync(join(tmpdir(), 'bw-ipam-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const log = pino({ level: 'silent' });
const pool = { subnet: parseCidr('10.8.64.0/27'), gateway: '10.8.64.1', cooldownMs: 1_800_000 };
let n = 0;

function evidence(ip: string, mac = '02:00:00:00:00:99'): LiveEvidence {
  return { ip, macs: [mac], ifindexes: [7], sources: ['netlink-neigh'], lastSeen: Date.now() };
}

/** A live source the test controls (the wire, played by the test). */
function wire(): LiveSource & { set: Map<string, LiveEvidence> } {
  const set = new Map<string, LiveEvidence>();
  return { name: 'netlink-neigh', set, live: async () => new Map(set) };
}

function setup(t: Test) {
  const store = openSqliteStore(join(dir, `s${n++}.db`));
  t.teardown(() => store.close());
  const metrics = createMetrics();
  const ipam = new IpamService({ store, pool, log, metrics });
  const w = wire();
  ipam.addLiveSource(w);
  return { store, ipam, wire: w, metrics };
}

t.test('allocates round-robin, idempotently, binding a MAC given later', async (t) => {
  const { ipam, metrics } = setup(t);
  const a = await ipam.allocate('a', null);
  t.match(a, { existing: false, lease: { ip: '10.8.64.2', generation: 1, mac: null } });
  const b = await ipam.allocate('b', null);
  t.equal(b.lease.ip, '10.8.64.3');
  const again = await ipam.allocate('a', '02:00:00:00:00:0a');
  t.match(again, { existing: true, lease: { ip: '10.8.64.2', mac: '02:00:00:00:00:0a' } });
  const timed = (await metrics.allocationSeconds.get()).values;
  const count = timed.find((v) => v.metricName === 'bridgeward_allocation_seconds_count');
  t.equal(count?.value, 3, 'every allocation timed');
});

t.test('skips addresses live on the wire', async (t) => {
  const { ipam, wire } = setup(t);
  wire.set.set('10.8.64.2', evidence('10.8.64.2'));
  t.equal((await ipam.allocate('a', null)).lease.ip, '10.8.64.3');
});

t.test('a failing live source is ignored, not fatal', async (t) => {
  const { ipam } = setup(t);
  ipam.addLiveSource({
    name: 'bpf',
    live: async () => {
      throw new Error('boom');
    },
  });
  t.equal((await ipam.allocate('a', null)).lease.ip, '10.8.64.2');
});

t.test('pre-handout check: an answering address is quarantined with a finding', async (t) => {
  const { ipam, store } = setup(t);
  ipam.setPreHandoutCheck(async (ip) => (ip === '10.8.64.2' ? evidence(ip) : null));
  t.equal((await ipam.allocate('a', null)).lease.ip, '10.8.64.3');
  const snap = await store.snapshot();
  t.match(snap.quarantine, [{ ip: '10.8.64.2', reason: 'live-unleased' }]);
  const h = await store.history({ ip: '10.8.64.2' });
  t.match(
    h.map((e) => e.kind),
    ['quarantined', 'finding'],
  );
  t.match(h[1]?.detail, { finding: 'live-unleased', macs: ['02:00:00:00:00:99'] });
});

t.test('release: quiet address cools; a still-live one is quarantined', async (t) => {
  const { ipam, store, wire } = setup(t);
  await ipam.allocate('a', null);
  await ipam.allocate('b', null);
  const ra = await ipam.release('a');
  t.equal(ra.stillLive, null);
  wire.set.set('10.8.64.3', evidence('10.8.64.3'));
  const rb = await ipam.release('b', { by: 'test' });
  t.equal(rb.stillLive?.ip, '10.8.64.3');
  const snap = await store.snapshot();
  t.match(snap.quarantine, [{ ip: '10.8.64.3', reason: 'live-after-release' }]);
  t.match(
    (await store.history({ ip: '10.8.64.3' })).map((e) => e.kind),
    ['allocated', 'released', 'quarantined', 'finding'],
  );
  await rejectsCode(t, ipam.release('a'), 'UNKNOWN_SANDBOX');
  // Cooling .2 and quarantined .3 come last / never.
  t.equal((await ipam.allocate('c', null)).lease.ip, '10.8.64.4');
});

t.test('exhaustion says how many are quarantined and cooling; metrics follow', async (t) => {
  const { ipam, store, metrics } = setup(t);
  for (let i = 0; i < 29; i++) await ipam.allocate(`s${i}`, null);
  await ipam.release('s0');
  await store.quarantine(
    { ip: '10.8.64.2', reason: 'x', evidence: {}, since: new Date().toISOString(), until: null },
    new Date(),
  );
  await ipam.release('s1');
  const c = await ipam.allocate('late', null);
  t.equal(c.lease.ip, '10.8.64.3', 'a cooling address when nothing else is free');
  await ipam.release('s2');
  await ipam.allocate('later', null);
  const e = await rejectsCode(t, ipam.allocate('none', null), 'POOL_EXHAUSTED');
  t.match(String(e), /28 active, 1 quarantined, 0 cooling/);
  await ipam.refreshMetrics();
  const text = await metrics.registry.metrics();
  t.match(text, /bridgeward_leases\{state="active"\} 28/);
  t.match(text, /bridgeward_leases\{state="quarantined"\} 1/);
  t.match(text, /bridgeward_allocations_total\{result="exhausted"\} 1/);
});

t.test('many concurrent clients: every address at most once', async (t) => {
  const { ipam, store } = setup(t);
  const results = await Promise.allSettled(
    Array.from({ length: 40 }, (_, i) => ipam.allocate(`c${i}`, null)),
  );
  const ok = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.lease.ip] : []));
  t.equal(ok.length, 29);
  t.equal(new Set(ok).size, 29);
  for (const r of results)
    if (r.status === 'rejected') t.ok(isBridgewardError(r.reason, 'POOL_EXHAUSTED'));
  t.equal((await store.snapshot()).leases.length, 29);
});

t.test('requests arriving in one event-loop turn are decided in one batch', async (t) => {
  const real = openSqliteStore(join(dir, `s${n++}.db`));
  t.teardown(() => real.close());
  let snapshots = 0;
  // The real store, counting snapshots (one per batch).
  const store = new Proxy(real, {
    get(target, prop) {
      if (prop === 'snapshot') return () => (snapshots++, target.snapshot());
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const ipam = new IpamService({ store, pool, log });
  await ipam.allocate('old', null);
  snapshots = 0;
  // Each request in its own callback of the same turn, as requests read from sockets arrive.
  const arrive = <T>(f: () => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => setImmediate(() => f().then(resolve, reject)));
  const allocating = Array.from({ length: 8 }, (_, i) =>
    arrive(() => ipam.allocate(`b${i}`, null)),
  );
  const released = await arrive(() => ipam.release('old'));
  const allocated = await Promise.all(allocating);
  t.equal(snapshots, 1);
  t.equal(released.lease.ip, '10.8.64.2');
  t.equal(new Set(allocated.map((a) => a.lease.ip)).size, 8);
  t.notOk(
    allocated.some((a) => a.lease.ip === '10.8.64.2'),
    'the released address cools',
  );
});

t.test('two services on one store file race: never a duplicate', async (t) => {
  const path = join(dir, `race${n++}.db`);
  const stores: LeaseStore[] = [openSqliteStore(path), openSqliteStore(path)];
  t.teardown(async () => {
    for (const s of stores) await s.close();
  });
  const [x, y] = stores.map((store) => new IpamService({ store, pool, log }));
  const results = await Promise.allSettled(
    Array.from({ length: 29 }, (_, i) => ((i % 2 ? x : y) as IpamService).allocate(`r${i}`, null)),
  );
  const ips = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.lease.ip] : []));
  t.equal(ips.length, 29, 'all got an address after CONFLICT retries');
  t.equal(new Set(ips).size, 29, 'no duplicates');
});
