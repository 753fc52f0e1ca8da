// The lease API in-process (fastify inject) over a real SQLite file: status codes and error
// bodies for bad input, unknown sandboxes, exhaustion and an unavailable store.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { buildApi } from '../../src/api/server.js';
import { leaseRoutes } from '../../src/api/lease-routes.js';
import { IpamService } from '../../src/ipam/service.js';
import { Reconciler } from '../../src/ipam/reconciler.js';
import { parseCidr } from '../../src/net/ipv4.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { BridgewardError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'bw-routes-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const log = pino({ level: 'silent' });
let n = 0;

function setup(t: Test, subnet = '10.8.64.0/29', gate?: { require(): unknown }) {
  const store = openSqliteStore(join(dir, `r${n++}.db`));
  const pool = { subnet: parseCidr(subnet), gateway: '10.8.64.1', cooldownMs: 0 };
  const ipam = new IpamService({ store, pool, log, ...(gate ? { bridge: gate } : {}) });
  // No bridge in this process: the reconciler sees an empty wire.
  const bridge = { current: () => null, ports: () => new Map<number, string>() };
  const reconciler = new Reconciler({ ipam, store, bridge, log });
  const app = buildApi(log, [leaseRoutes({ ipam, store, reconciler })]);
  t.teardown(async () => {
    await app.close();
    await store.close();
  });
  return { app, store };
}

t.test('allocate, get, release, history, sync', async (t) => {
  const { app } = setup(t);
  const a = await app.inject({
    method: 'POST',
    url: '/v1/leases',
    payload: { sandbox: 'a', mac: '02-00-00-00-00-0A' },
  });
  t.equal(a.statusCode, 200);
  t.same(a.json(), {
    sandbox: 'a',
    ip: '10.8.64.2',
    prefixLength: 29,
    gateway: '10.8.64.1',
    generation: 1,
    mac: '02:00:00:00:00:0a',
    existing: false,
  });
  t.match((await app.inject({ url: '/v1/leases/a' })).json(), { ip: '10.8.64.2', state: 'active' });
  t.equal((await app.inject({ method: 'DELETE', url: '/v1/leases/a' })).json().quarantined, false);
  const h = await app.inject({ url: '/v1/history?ip=10.8.64.2&limit=1' });
  t.match(h.json(), [{ kind: 'released' }]);
  const s = await app.inject({
    method: 'POST',
    url: '/v1/sync',
    payload: { sandboxes: ['x', 'x'] },
  });
  t.same(s.json(), { declared: 1, undeclared: [], reserved: [], reaped: [] });
});

t.test('bad input is 400 INVALID_ARGUMENT and changes nothing', async (t) => {
  const { app, store } = setup(t);
  const bad = [
    { method: 'POST', url: '/v1/leases', payload: { sandbox: '-x' } },
    { method: 'POST', url: '/v1/leases', payload: { sandbox: 'a', mac: 'nope' } },
    { method: 'POST', url: '/v1/leases', payload: { sandbox: 'a', extra: 1 } },
    { method: 'POST', url: '/v1/leases', payload: {} },
    { method: 'GET', url: '/v1/history?ip=10.8.64.256' },
    { method: 'GET', url: '/v1/history?limit=0' },
    { method: 'DELETE', url: '/v1/quarantine/not-an-ip' },
    { method: 'DELETE', url: '/v1/quarantine/10.8.64.2?bogus=1' },
    { method: 'POST', url: '/v1/sync', payload: { sandboxes: ['ok', 'not ok'] } },
  ] as const;
  for (const req of bad) {
    const r = await app.inject(req);
    t.equal(
      r.statusCode,
      400,
      `${req.method} ${req.url} ${JSON.stringify('payload' in req ? req.payload : '')}`,
    );
    t.equal(r.json().error, 'INVALID_ARGUMENT');
  }
  t.same((await store.snapshot()).leases, []);
  t.same(await store.history({}), []);
});

t.test(
  'unknown sandbox 404, exhausted 409 with counts, quarantine clear without a body',
  async (t) => {
    const { app, store } = setup(t, '10.8.64.0/30');
    const r = await app.inject({ method: 'DELETE', url: '/v1/leases/ghost' });
    t.equal(r.statusCode, 404);
    t.same(r.json().error, 'UNKNOWN_SANDBOX');
    await app.inject({ method: 'POST', url: '/v1/leases', payload: { sandbox: 'a' } });
    const full = await app.inject({ method: 'POST', url: '/v1/leases', payload: { sandbox: 'b' } });
    t.equal(full.statusCode, 409);
    t.match(full.json(), {
      error: 'POOL_EXHAUSTED',
      details: { active: 1, quarantined: 0, cooling: 0 },
    });
    await store.quarantine(
      { ip: '10.8.64.2', reason: 'x', evidence: {}, since: new Date().toISOString(), until: null },
      new Date(),
    );
    const cleared = await app.inject({ method: 'DELETE', url: '/v1/quarantine/10.8.64.2' });
    t.equal(cleared.statusCode, 200, cleared.body);
  },
);

t.test('a closed store answers 503 STORE_UNAVAILABLE', async (t) => {
  const { app, store } = setup(t);
  await store.close();
  const r = await app.inject({ method: 'POST', url: '/v1/leases', payload: { sandbox: 'a' } });
  t.equal(r.statusCode, 503);
  t.equal(r.json().error, 'STORE_UNAVAILABLE');
});

t.test(
  'while the bridge is absent: 503 BRIDGE_ABSENT for a new address, retryable; an existing lease is answered',
  async (t) => {
    let absent = false;
    const bridge = {
      require() {
        if (absent)
          throw new BridgewardError('BRIDGE_ABSENT', 'bridge rt0 is not present (deleted)', {
            retryable: true,
          });
        return null;
      },
    };
    const { app } = setup(t, '10.8.64.0/29', bridge);
    const first = await app.inject({
      method: 'POST',
      url: '/v1/leases',
      payload: { sandbox: 'a' },
    });
    t.equal(first.statusCode, 200);
    absent = true;
    const refused = await app.inject({
      method: 'POST',
      url: '/v1/leases',
      payload: { sandbox: 'b' },
    });
    t.equal(refused.statusCode, 503);
    t.same(refused.json(), {
      error: 'BRIDGE_ABSENT',
      message: 'bridge rt0 is not present (deleted)',
      details: { retryable: true },
    });
    const again = await app.inject({
      method: 'POST',
      url: '/v1/leases',
      payload: { sandbox: 'a' },
    });
    t.equal(again.statusCode, 200, 'the runtime asking again for an existing lease gets it');
    t.match(again.json(), { sandbox: 'a', ip: first.json<{ ip: string }>().ip, existing: true });
    const list = await app.inject({ method: 'GET', url: '/v1/leases' });
    t.same(
      list.json<{ sandbox: string }[]>().map((l) => l.sandbox),
      ['a'],
      'nothing was allocated for b',
    );
  },
);
