// The daemon in a real runner namespace: start, status, bad flags, waiting for the bridge, SIGTERM.
// The bridge's later life (deleted, recreated, renamed) is in bridge-lifecycle.test.ts.
import t from 'tap';
import { Testbed } from '../../src/testbed/testbed.js';
import { AgentProcess } from '../../src/testbed/agent-process.js';
import type { AgentStatus } from '../../src/api/status-routes.js';
import { run } from '../../src/exec.js';

const SUBNET = '10.8.64.0/24';

t.test(
  'starts, answers status -o json, adds the gateway, exits 0 on SIGTERM within 2 s',
  async (t) => {
    const bed = await Testbed.create({ subnet: SUBNET });
    const agent = AgentProcess.start(bed, { subnet: SUBNET });
    t.teardown(async () => {
      await agent.cleanup();
      await bed.destroy();
    });
    await agent.ready();
    const status = await agent.json<AgentStatus>(['status']);
    t.equal(status.bridge.name, 'rt0');
    t.equal(status.subnet, SUBNET);
    t.equal(status.gateway, '10.8.64.1');
    t.equal(status.store, 'sqlite');
    t.equal(status.observers.netlink, true);
    const addr = await bed.ip(['-o', '-4', 'addr', 'show', 'dev', 'rt0']);
    t.match(addr.stdout, /inet 10\.8\.64\.1\/24/, 'gateway address on the bridge');
    const table = await agent.cli(['status']);
    t.equal(table.code, 0);
    t.match(table.stdout, /^subnet: 10\.8\.64\.0\/24$/m, 'human-readable status');
    const stopped = await agent.stop('SIGTERM');
    t.equal(stopped.code, 0, 'exit code 0');
    t.ok(stopped.ms < 2000, `stopped in ${stopped.ms} ms`);
    t.ok(
      agent.logs.some((l) => l.msg === 'stopped'),
      'logs stopped',
    );
  },
);

t.test('serves while the bridge is missing and sets it up when it appears', async (t) => {
  const bed = await Testbed.create({ subnet: SUBNET, bridge: false });
  const agent = AgentProcess.start(bed, { subnet: SUBNET });
  t.teardown(async () => {
    await agent.cleanup();
    await bed.destroy();
  });
  const waiting = await agent.waitForLog((l) => /waiting for bridge rt0/.test(l.msg ?? ''));
  t.equal(waiting.bridge, 'rt0', 'says which bridge it waits for');
  await agent.ready();
  const absent = await agent.json<AgentStatus>(['status']);
  t.match(absent.bridge, { name: 'rt0', state: 'absent', ifindex: null });
  const table = await agent.cli(['status']);
  t.match(table.stdout, /^bridge\.detail: bridge rt0 is not present$/m, 'human-readable status');
  await bed.createBridge();
  const up = await agent.waitForLog((l) => l.msg === 'bridge up');
  const status = await agent.json<AgentStatus>(['status']);
  t.match(status.bridge, { name: 'rt0', state: 'present', ifindex: up.ifindex });
  const addr = await bed.ip(['-o', '-4', 'addr', 'show', 'dev', 'rt0']);
  t.match(addr.stdout, /inet 10\.8\.64\.1\/24/, 'gateway address on the bridge');
  t.equal((await agent.stop('SIGINT')).code, 0, 'SIGINT exits 0 too');
});

t.test('SIGTERM while waiting for the bridge exits 0', async (t) => {
  const bed = await Testbed.create({ subnet: SUBNET, bridge: false });
  const agent = AgentProcess.start(bed, { subnet: SUBNET });
  t.teardown(async () => {
    await agent.cleanup();
    await bed.destroy();
  });
  await agent.waitForLog((l) => /waiting for bridge/.test(l.msg ?? ''));
  const stopped = await agent.stop('SIGTERM');
  t.equal(stopped.code, 0);
  t.ok(stopped.ms < 2000, `stopped in ${stopped.ms} ms`);
});

t.test('bad flags are rejected with precise messages and exit 2', async (t) => {
  const bed = await Testbed.create({ subnet: SUBNET });
  t.teardown(() => bed.destroy());
  const cases: [Record<string, string>, RegExp][] = [
    [{ subnet: '10.8.64.0/33' }, /--subnet: invalid CIDR/],
    [
      { subnet: SUBNET, gateway: '10.9.0.1' },
      /--gateway 10\.9\.0\.1 is not a host address of 10\.8\.64\.0\/24/,
    ],
    [
      { subnet: SUBNET, store: 'postgres://x' },
      /--store "postgres:\/\/x": expected "sqlite" or "etcd:/,
    ],
    [{ subnet: SUBNET, 'log-level': 'chatty' }, /--log-level "chatty"/],
  ];
  for (const [flags, re] of cases) {
    const agent = AgentProcess.start(bed, flags);
    t.equal(await agent.exited(), 2, JSON.stringify(flags));
    t.match(agent.stderr, re);
    await agent.cleanup();
  }
  const unknown = await run(
    [process.execPath, 'bin/bridgeward', 'run', '--subnet', SUBNET, '--bogus', 'x'],
    { check: false },
  );
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /Unknown option '--bogus'/);
  const missing = await run([process.execPath, 'bin/bridgeward', 'run'], { check: false });
  t.equal(missing.code, 2);
  t.match(missing.stderr, /--subnet is required/);
});

t.test('client verbs: clear error when no agent answers', async (t) => {
  const r = await run(
    [process.execPath, 'bin/bridgeward', 'status', '--socket', '/nonexistent/bw.sock'],
    { check: false },
  );
  t.equal(r.code, 1);
  t.match(r.stderr, /^bridgeward: cannot reach the agent at \/nonexistent\/bw\.sock: ENOENT/);
  const bad = await run([process.execPath, 'bin/bridgeward', 'status', '-o', 'yaml'], {
    check: false,
  });
  t.equal(bad.code, 2);
  t.match(bad.stderr, /-o "yaml": expected "table" or "json"/);
});
