// The bridge guard follows the store in its order: a new lease's binding is in the guard's maps
// before the allocation is answered, a released or reaped one's is gone before the release is
// answered, and a lease learned from its first frame is bound through the reconciler (a 'bound'
// event in the history). Real IPAM, reconciler, SQLite store, BridgeGuard and GuardMaps; the
// kernel maps are in memory (their kernel side: test/integration/guard-program.test.ts).
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { BridgeGuard } from '../../src/guard/bridge-guard.js';
import { GuardMaps } from '../../src/guard/guard-maps.js';
import { GUARD_EVENT_SIZE, GUARD_MAPS, ipKey } from '../../src/guard/guard-records.js';
import { IpamService } from '../../src/ipam/service.js';
import { Reconciler } from '../../src/ipam/reconciler.js';
import { createMetrics } from '../../src/metrics.js';
import { parseCidr } from '../../src/net/ipv4.js';
import { ifindexKey } from '../../src/observe/arp-records.js';
import type { LinkInfo } from '../../src/observe/rtnl.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { MemoryMaps } from '../harness/memory-maps.js';

const dir = mkdtempSync(join(tmpdir(), 'bw-guard-follow-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const log = pino({ level: 'silent' });
const pool = { subnet: parseCidr('10.8.64.0/28'), gateway: '10.8.64.1', cooldownMs: 0 };
const A = '02:00:00:00:00:0a';
const PORT = 7;
let n = 0;

async function setup(t: Test) {
  const store = openSqliteStore(join(dir, `s${n++}.db`));
  const maps = new MemoryMaps();
  const metrics = createMetrics();
  const ports = new Map([[PORT, 'veth7']]);
  const bridge = {
    current: () => ({ index: 2, name: 'rt0' }) as LinkInfo,
    ports: () => ports,
    require: () => undefined,
  };
  const guard = await BridgeGuard.start({
    mode: 'enforce',
    dropIpv6: false,
    maps: new GuardMaps(maps),
    store,
    ports: () => ports,
    node: null,
    log,
    metrics,
    onSpoof: () => undefined,
    onActivity: () => undefined,
  });
  const ipam = new IpamService({ store, pool, log, metrics, bridge });
  ipam.setFollower(guard);
  const reconciler = new Reconciler({ ipam, store, bridge, log });
  t.teardown(async () => {
    reconciler.stop();
    await guard.close();
    await store.close();
  });
  const pending = (ip: string) => maps.get(GUARD_MAPS.pending, ipKey(ip).toString('hex'));
  const port = (ifindex: number) => maps.get(GUARD_MAPS.ports, ifindexKey(ifindex).toString('hex'));
  return { store, maps, guard, ipam, reconciler, pending, port };
}

/** A learn event: port `ifindex` claimed `ip` from `mac`. */
function learnEvent(ifindex: number, ip: string, mac: string): Buffer {
  const e = Buffer.alloc(GUARD_EVENT_SIZE);
  e.writeUInt32LE(ifindex, 8);
  ipKey(ip).copy(e, 12);
  e[20] = 2;
  Buffer.from(mac.replaceAll(':', ''), 'hex').copy(e, 24);
  return e;
}

t.test('an allocation is answered once its lease awaits its port in the kernel', async (t) => {
  const { ipam, pending } = await setup(t);
  const answered = await ipam
    .allocate('app-a', A)
    .then((r) => ({ ip: r.lease.ip, held: pending(r.lease.ip) }));
  t.ok(answered.held, 'the binding was there when the answer came');
  t.equal(
    answered.held?.subarray(0, 6).toString('hex'),
    '02000000000a',
    'with the MAC of the lease',
  );
  const [b, c] = await Promise.all([ipam.allocate('app-b', null), ipam.allocate('app-c', null)]);
  t.ok(pending(b.lease.ip) && pending(c.lease.ip), 'a batch: every lease of it');
  t.equal(pending(b.lease.ip)?.[6], 1, 'a lease naming no MAC: any MAC may claim it');
});

t.test('a release is answered once the old owner can no longer send', async (t) => {
  const { ipam, store, guard, maps, port, pending } = await setup(t);
  const { lease } = await ipam.allocate('app-a', A);
  await store.bind('app-a', { ifindex: PORT }, new Date());
  await ipam.followLeases();
  t.ok(port(PORT), 'bound to its port');
  t.notOk(pending(lease.ip));
  const released = await ipam.release('app-a').then(() => port(PORT));
  t.equal(released, undefined, 'the port binding was gone when the release was answered');
  const writes = maps.writes.slice(-1);
  t.same(writes, [`delete ${GUARD_MAPS.ports} ${ifindexKey(PORT).toString('hex')}`]);
  t.match(guard.status(), { ports: { bound: 0, unbound: 1 }, pendingLeases: 0 });
});

t.test('a reaped lease loses its binding before the reconciler goes on', async (t) => {
  const { ipam, store, port } = await setup(t);
  await ipam.allocate('app-a', A);
  await store.bind('app-a', { ifindex: PORT }, new Date());
  await ipam.followLeases();
  const reaped = await ipam.exclusive(() =>
    ipam.reap('app-a', new Date(), { by: 'test' }).then(() => port(PORT)),
  );
  t.equal(reaped, undefined);
});

t.test('a lease learned from its first frame is bound through the reconciler', async (t) => {
  const { ipam, store, maps, guard, reconciler, port, pending } = await setup(t);
  const { lease } = await ipam.allocate('app-a', null);
  guard.onLearned((l) => void reconciler.learned(l));
  maps.update(GUARD_MAPS.claims, ipKey(lease.ip), ifindexKey(PORT)); // as the program does
  maps.push(GUARD_MAPS.events, learnEvent(PORT, lease.ip, A));
  maps.deliver(GUARD_MAPS.events);
  await reconciler.learned({ ip: lease.ip, mac: A, ifindex: PORT, ifname: 'veth7' }); // waits for the first
  t.match(await store.leaseBySandbox('app-a'), { mac: A, ifindex: PORT, ifname: 'veth7' });
  const bound = (await store.history({ sandbox: 'app-a' })).filter((e) => e.kind === 'bound');
  t.match(
    bound,
    [{ detail: { mac: A, ifindex: PORT } }],
    "recorded once as 'bound' in the history",
  );
  t.ok(port(PORT), 'the agent wrote the binding');
  t.notOk(pending(lease.ip), 'the lease no longer awaits a port');
  t.notOk(maps.get(GUARD_MAPS.claims, ipKey(lease.ip).toString('hex')), 'nor is its claim kept');
  await reconciler.learned({ ip: lease.ip, mac: '02:00:00:00:00:0b', ifindex: 9, ifname: null });
  t.match(
    await store.leaseBySandbox('app-a'),
    { mac: A, ifindex: PORT },
    'a second claim changes nothing',
  );
});

t.test('a claim racing a release is undone with the release', async (t) => {
  const { ipam, maps, port } = await setup(t);
  const { lease } = await ipam.allocate('app-a', null);
  // The program claimed the lease for port 7 after the agent last read its events.
  maps.update(GUARD_MAPS.claims, ipKey(lease.ip), ifindexKey(PORT));
  const learned = Buffer.alloc(12);
  Buffer.from('02000000000a', 'hex').copy(learned, 0);
  learned[6] = 1;
  ipKey(lease.ip).copy(learned, 8);
  maps.update(GUARD_MAPS.ports, ifindexKey(PORT), learned);
  const gone = await ipam.release('app-a').then(() => port(PORT));
  t.equal(gone, undefined, 'its learned binding went with the lease');
});
