// Leases through the real agent, API and CLI: allocate/release/list/history, quarantine,
// sync, and precise errors for bad input.
import t from 'tap';
import { Testbed } from '../../src/testbed/testbed.js';
import { AgentProcess } from '../../src/testbed/agent-process.js';
import type { AllocationView, ReleaseView, SyncView } from '../../src/api/lease-routes.js';
import type { Lease, LeaseEvent, Quarantine } from '../../src/store/types.js';

const SUBNET = '10.8.66.0/27';

t.test('lease verbs end to end', async (t) => {
  const bed = await Testbed.create({ subnet: SUBNET });
  const agent = AgentProcess.start(bed, { subnet: SUBNET, 'sweep-seconds': '1' });
  t.teardown(async () => {
    await agent.cleanup();
    await bed.destroy();
  });
  await agent.ready();
  t.ok(
    agent.logs.some((l) => l.msg === 'boot reconcile done'),
    'boot reconcile ran before ready',
  );

  const a = await agent.json<AllocationView>(['lease', 'allocate', '--sandbox', 'app-a']);
  t.same(a, {
    sandbox: 'app-a',
    ip: '10.8.66.2',
    prefixLength: 27,
    gateway: '10.8.66.1',
    generation: 1,
    mac: null,
    existing: false,
  });
  const again = await agent.json<AllocationView>([
    'lease',
    'allocate',
    '--sandbox',
    'app-a',
    '--mac',
    '02-AB-00-00-00-01',
  ]);
  t.match(again, { ip: '10.8.66.2', existing: true, mac: '02:ab:00:00:00:01' }, 'idempotent');
  const b = await agent.json<AllocationView>(['lease', 'allocate', '--sandbox', 'app-b']);
  t.equal(b.ip, '10.8.66.3');

  const list = await agent.json<Lease[]>(['lease', 'list']);
  t.match(list, [
    { sandbox: 'app-a', ip: '10.8.66.2', state: 'active', generation: 1 },
    { sandbox: 'app-b', ip: '10.8.66.3', state: 'active', generation: 1 },
  ]);
  const table = await agent.cli(['lease', 'list']);
  t.match(table.stdout, /^SANDBOX\s+IP\s+STATE\s+GEN/m);
  t.match(table.stdout, /app-a\s+10\.8\.66\.2\s+active\s+1/);

  const rel = await agent.json<ReleaseView>(['lease', 'release', '--sandbox', 'app-b']);
  t.same(rel, { sandbox: 'app-b', ip: '10.8.66.3', generation: 1, quarantined: false });
  const c = await agent.json<AllocationView>(['lease', 'allocate', '--sandbox', 'app-c']);
  t.equal(c.ip, '10.8.66.4', 'round-robin: the just-freed address is not reused');

  const hist = await agent.json<LeaseEvent[]>(['lease', 'history', '--ip', '10.8.66.3']);
  t.same(
    hist.map((e) => e.kind),
    ['allocated', 'released'],
  );

  // Quarantine: the store says so; the operator clears it; it is recorded.
  const none = await agent.json<Quarantine[]>(['quarantine', 'list']);
  t.same(none, []);
  const clearMissing = await agent.cli(['quarantine', 'clear', '--ip', '10.8.66.9']);
  t.equal(clearMissing.code, 1);
  t.match(clearMissing.stderr, /^bridgeward: 10\.8\.66\.9 is not quarantined/);

  // Sync: app-a declared; app-c not declared and never seen on the wire -> reaped after 3 sweeps.
  const s = await agent.json<SyncView>(['sync', '--sandboxes', 'app-a']);
  t.same(s.undeclared, ['app-c']);
  await agent.waitForLog((l) => l.msg === 'reaped lease' && l.sandbox === 'app-c', 15_000);
  const after = await agent.json<Lease[]>(['lease', 'list']);
  t.same(
    after.map((l) => l.sandbox),
    ['app-a'],
  );
  const reaped = await agent.json<LeaseEvent[]>(['lease', 'history', '--sandbox', 'app-c']);
  t.match(reaped.at(-1), { kind: 'released', detail: { by: 'reconciler' } });
});

t.test('the declaration survives a restart and never judges later leases', async (t) => {
  const subnet = '10.8.68.0/28';
  const bed = await Testbed.create({ subnet });
  const flags = { subnet, 'sweep-seconds': '1' };
  let agent = AgentProcess.start(bed, { ...flags, 'sweep-seconds': '3600' });
  t.teardown(async () => {
    await agent.cleanup();
    await bed.destroy();
  });
  await agent.ready();
  for (const s of ['kept', 'gone']) await agent.json(['lease', 'allocate', '--sandbox', s]);
  await agent.json<SyncView>(['sync', '--sandboxes', 'kept']);
  // Allocated after the sync: the runtime could not have listed it.
  await agent.json(['lease', 'allocate', '--sandbox', 'newer']);
  t.same((await agent.stop()).code, 0, 'stopped before any periodic sweep counted');

  agent = AgentProcess.start(bed, flags, agent);
  await agent.ready();
  t.ok(agent.logs.some((l) => l.msg === 'loaded the last declaration' && l.sandboxes === 1));
  await agent.waitForLog((l) => l.msg === 'reaped lease' && l.sandbox === 'gone', 15_000);
  // 'newer' is as silent and as unlisted as 'gone' was; two more sweeps, and it is still there.
  await new Promise((r) => setTimeout(r, 2_500));
  t.same((await agent.json<Lease[]>(['lease', 'list'])).map((l) => l.sandbox).sort(), [
    'kept',
    'newer',
  ]);
});

t.test('precise errors, nothing changed', async (t) => {
  const bed = await Testbed.create({ subnet: '10.8.67.0/30' });
  const agent = AgentProcess.start(bed, { subnet: '10.8.67.0/30' });
  t.teardown(async () => {
    await agent.cleanup();
    await bed.destroy();
  });
  await agent.ready();
  const cases: [string[], number, RegExp][] = [
    [['lease', 'allocate'], 2, /--sandbox is required/],
    [
      ['lease', 'allocate', '--sandbox', '../etc'],
      2,
      /invalid sandbox id "\.\.\/etc": expected 1\.\.128/,
    ],
    [['lease', 'allocate', '--sandbox', 'x', '--mac', 'zz:00'], 2, /invalid MAC address "zz:00"/],
    [['lease', 'release', '--sandbox', 'ghost'], 1, /sandbox ghost has no active lease/],
    [['lease', 'history', '--ip', '10.8.67.300'], 2, /invalid IPv4 address "10\.8\.67\.300"/],
    [['sync'], 2, /--sandboxes is required/],
  ];
  for (const [args, code, re] of cases) {
    const r = await agent.cli(args);
    t.equal(r.code, code, args.join(' '));
    t.match(r.stderr, re);
  }
  // /30 has one host besides the gateway.
  await agent.json(['lease', 'allocate', '--sandbox', 'only']);
  const full = await agent.cli(['lease', 'allocate', '--sandbox', 'more']);
  t.equal(full.code, 1);
  t.match(
    full.stderr,
    /^bridgeward: no free address in 10\.8\.67\.0\/30: 1 active, 0 quarantined, 0 cooling, 0 live without a lease/,
  );
  t.same(
    (await agent.json<Lease[]>(['lease', 'list'])).map((l) => l.sandbox),
    ['only'],
  );
});
