// The etcd lease store against a real etcd on loopback: the shared contract, racing writers,
// and an unreachable cluster.
import t from 'tap';
import { openEtcdStore } from '../../src/store/etcd.js';
import type { LeaseStore } from '../../src/store/types.js';
import { isBridgewardError } from '../../src/errors.js';
import { storeContract } from '../harness/store-contract.js';
import { EtcdServer, freePort } from '../harness/etcd-server.js';
import { rejectsCode } from '../harness/expect-code.js';

const etcd = await EtcdServer.start();
t.teardown(() => etcd.stop());
let n = 0;

t.test('contract', async (t) => {
  storeContract(t, () => openEtcdStore([etcd.endpoint], { prefix: `contract-${n++}/` }));
});

t.test('two clients racing for the same addresses: one winner each', async (t) => {
  const prefix = `race-${n++}/`;
  const stores: LeaseStore[] = await Promise.all(
    [0, 1, 2, 3].map(() => openEtcdStore([etcd.endpoint], { prefix })),
  );
  t.teardown(async () => {
    for (const s of stores) await s.close();
  });
  const ips = ['10.8.64.2', '10.8.64.3'];
  const results = await Promise.allSettled(
    Array.from({ length: 16 }, (_, i) =>
      (stores[i % 4] as LeaseStore).claim({
        sandbox: `s${i}`,
        ip: ips[i % 2] as string,
        mac: null,
        at: new Date(),
      }),
    ),
  );
  const won = results.filter((r) => r.status === 'fulfilled');
  t.equal(won.length, 2, 'exactly one winner per address');
  for (const r of results) {
    if (r.status === 'rejected') t.ok(isBridgewardError(r.reason, 'CONFLICT'), String(r.reason));
  }
  const snap = await (stores[0] as LeaseStore).snapshot();
  t.equal(snap.leases.length, 2);
  const h = await (stores[0] as LeaseStore).history({});
  t.same(
    h.map((e) => e.id),
    [1, 2],
    'event ids are dense and increasing',
  );
});

t.test('an unreachable cluster is STORE_UNAVAILABLE', async (t) => {
  const port = await freePort();
  await rejectsCode(
    t,
    openEtcdStore([`http://127.0.0.1:${port}`], { connectTimeoutMs: 500 }),
    'STORE_UNAVAILABLE',
  );
});
