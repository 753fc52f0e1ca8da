// Two agents on one etcd, same subnet and bridge, racing for addresses: never a duplicate.
import t from 'tap';
import { Testbed } from '../../src/testbed/testbed.js';
import { AgentProcess } from '../../src/testbed/agent-process.js';
import { apiRequest } from '../../src/api/client.js';
import { isBridgewardError } from '../../src/errors.js';
import type { AllocationView } from '../../src/api/lease-routes.js';
import type { Lease } from '../../src/store/types.js';
import type { AgentStatus } from '../../src/api/status-routes.js';
import { EtcdServer } from '../harness/etcd-server.js';

const SUBNET = '10.8.72.0/27';

t.test('two agents on one etcd race without duplicates', async (t) => {
  const bed = await Testbed.create({ subnet: SUBNET });
  const etcd = await EtcdServer.start({ netns: bed.runnerNs });
  const store = `etcd://${etcd.endpoint.replace('http://', '')}`;
  const agents = ['a', 'b'].map((name) =>
    AgentProcess.start(bed, {
      subnet: SUBNET,
      store,
      'identity-listen': 'off',
      'bpf-pin-dir': `/sys/fs/bpf/bridgeward-${bed.id}-${name}`,
    }),
  );
  t.teardown(async () => {
    for (const a of agents) await a.cleanup();
    await etcd.stop();
    await bed.destroy();
  });
  await Promise.all(agents.map((a) => a.ready()));
  const status = await agents[0]!.json<AgentStatus>(['status']);
  t.equal(status.store, 'etcd');

  // 40 sandboxes for 29 addresses, alternating agents, all at once.
  const results = await Promise.allSettled(
    Array.from({ length: 40 }, (_, i) =>
      apiRequest<AllocationView>(agents[i % 2]!.socket, 'POST', '/v1/leases', {
        sandbox: `race-${i}`,
      }),
    ),
  );
  const ips = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.ip] : []));
  t.equal(ips.length, 29, 'every address handed out once');
  t.equal(new Set(ips).size, ips.length, 'no duplicates across the two agents');
  for (const r of results) {
    if (r.status === 'rejected') {
      t.ok(isBridgewardError(r.reason, 'POOL_EXHAUSTED'), String(r.reason));
    }
  }
  const viewA = await agents[0]!.json<Lease[]>(['lease', 'list']);
  const viewB = await agents[1]!.json<Lease[]>(['lease', 'list']);
  t.same(viewA, viewB, 'both agents see the same leases');
  t.equal(new Set(viewA.map((l) => l.ip)).size, 29);
  // Idempotent across agents: a sandbox allocated through A gets the same lease through B.
  const fromA = viewA[0]!;
  const viaB = await agents[1]!.json<AllocationView>([
    'lease',
    'allocate',
    '--sandbox',
    fromA.sandbox,
  ]);
  t.match(viaB, { ip: fromA.ip, existing: true });
});
