// Replays of the two incidents behind issue 3, on a real bridge with real sandboxes:
// (1) an agent restarted with an empty state dir while a sandbox keeps answering on .2;
// (2) a lease released while its sandbox keeps running and talking.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { Testbed, type Sandbox } from '../../src/testbed/testbed.js';
import { AgentProcess } from '../../src/testbed/agent-process.js';
import type { AllocationView, ReleaseView } from '../../src/api/lease-routes.js';
import type { LeaseEvent, Quarantine } from '../../src/store/types.js';

/** Keeps a sandbox talking (pinging the gateway five times a second) until killed. */
function chatter(bed: Testbed, s: Sandbox): ChildProcess {
  return spawn('ip', ['netns', 'exec', s.netns, 'ping', '-q', '-i', '0.2', bed.gateway], {
    stdio: 'ignore',
  });
}

t.test('restart with an empty state dir never hands out an address still answering', async (t) => {
  const SUBNET = '10.8.95.0/28';
  const bed = await Testbed.create({ subnet: SUBNET });
  let agent = AgentProcess.start(bed, { subnet: SUBNET });
  const talkers: ChildProcess[] = [];
  t.teardown(async () => {
    for (const p of talkers) p.kill();
    await agent.cleanup();
    await bed.destroy();
  });
  await agent.ready();
  const first = await agent.json<AllocationView>([
    'lease',
    'allocate',
    '--sandbox',
    'websocket-echo',
  ]);
  t.equal(first.ip, '10.8.95.2');
  const echo = await bed.addSandbox({ ip: first.ip });
  talkers.push(chatter(bed, echo));
  await new Promise((r) => setTimeout(r, 500));

  // Several restarts, the last one losing the store entirely.
  for (let i = 0; i < 2; i++) {
    await agent.stop('SIGKILL');
    agent = AgentProcess.start(bed, { subnet: SUBNET }, agent);
    await agent.ready();
  }
  await agent.stop('SIGKILL');
  rmSync(agent.stateDir, { recursive: true, force: true });
  agent = AgentProcess.start(bed, { subnet: SUBNET }, agent);
  await agent.ready();

  const q = await agent.json<Quarantine[]>(['quarantine', 'list']);
  t.match(
    q,
    [{ ip: '10.8.95.2', reason: 'live-unleased', evidence: { macs: [echo.mac] } }],
    '.2 re-reserved at boot',
  );
  const hist = await agent.json<LeaseEvent[]>(['lease', 'history', '--ip', '10.8.95.2']);
  t.ok(
    hist.some(
      (e) => e.kind === 'finding' && e.ip === '10.8.95.2' && e.detail.finding === 'live-unleased',
    ),
    'a finding names .2',
  );
  const ips: string[] = [];
  for (let i = 0; i < 12; i++) {
    ips.push(
      (await agent.json<AllocationView>(['lease', 'allocate', '--sandbox', `meet-${i}`])).ip,
    );
  }
  t.notOk(ips.includes('10.8.95.2'), `never .2 (got ${ips.join(' ')})`);
  t.equal(new Set(ips).size, 12, 'all distinct');
  const full = await agent.cli(['lease', 'allocate', '--sandbox', 'one-too-many']);
  t.match(
    full.stderr,
    /no free address in 10\.8\.95\.0\/28: 12 active, 1 quarantined/,
    'pool exhausted rather than .2',
  );
});

t.test('a release while the sandbox keeps talking quarantines the address', async (t) => {
  const SUBNET = '10.8.64.0/29';
  const bed = await Testbed.create({ subnet: SUBNET });
  const agent = AgentProcess.start(bed, { subnet: SUBNET, 'sweep-seconds': '1' });
  const talkers: ChildProcess[] = [];
  t.teardown(async () => {
    for (const p of talkers) p.kill();
    await agent.cleanup();
    await bed.destroy();
  });
  await agent.ready();
  const lease = await agent.json<AllocationView>(['lease', 'allocate', '--sandbox', 'reviewagent']);
  t.equal(lease.ip, '10.8.64.2');
  const review = await bed.addSandbox({ ip: lease.ip });
  talkers.push(chatter(bed, review));
  await new Promise((r) => setTimeout(r, 500));

  const rel = await agent.json<ReleaseView>(['lease', 'release', '--sandbox', 'reviewagent']);
  t.equal(rel.quarantined, true, 'released, but still live: quarantined');
  const q = await agent.json<Quarantine[]>(['quarantine', 'list']);
  t.match(q, [{ ip: '10.8.64.2', reason: 'live-after-release' }]);

  // Hours later in the incident; here several sweeps later: .2 is still never handed out.
  await new Promise((r) => setTimeout(r, 4500));
  const got: string[] = [];
  for (let i = 0; i < 4; i++) {
    got.push(
      (await agent.json<AllocationView>(['lease', 'allocate', '--sandbox', `sportsagent-${i}`])).ip,
    );
  }
  t.notOk(got.includes('10.8.64.2'), `never .2 while it is live (got ${got.join(' ')})`);
  const full = await agent.cli(['lease', 'allocate', '--sandbox', 'sportsagent-x']);
  t.match(full.stderr, /4 active, 1 quarantined/);
  t.match(
    await agent.json<Quarantine[]>(['quarantine', 'list']),
    [{ ip: '10.8.64.2' }],
    'still quarantined',
  );

  // The operator override is recorded.
  const clear = await agent.cli([
    'quarantine',
    'clear',
    '--ip',
    '10.8.64.2',
    '--reason',
    'verified by hand',
  ]);
  t.equal(clear.code, 0);
  const hist = await agent.json<LeaseEvent[]>(['lease', 'history', '--ip', '10.8.64.2']);
  t.match(
    hist.find((e) => e.kind === 'quarantine-cleared'),
    { detail: { by: 'operator', note: 'verified by hand' } },
  );
});
