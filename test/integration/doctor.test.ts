// `bridgeward doctor` against a real bridge in a runner namespace, with and without an agent.
import t from 'tap';
import { Testbed } from '../../src/testbed/testbed.js';
import { AgentProcess, BIN } from '../../src/testbed/agent-process.js';
import type { Check } from '../../src/cli/doctor.js';

t.test('doctor reports the bridge sysctls and how to fix them', async (t) => {
  const bed = await Testbed.create({ subnet: '10.8.64.0/24' });
  t.teardown(() => bed.destroy());
  await bed.exec(bed.runnerNs, ['sysctl', '-qw', 'net.ipv4.conf.rt0.arp_ignore=0']);
  const r = await bed.exec(bed.runnerNs, [process.execPath, BIN, 'doctor', '-o', 'json'], {
    check: false,
  });
  t.equal(r.code, 0, 'nothing fatal on this machine');
  const checks = JSON.parse(r.stdout) as Check[];
  const byName = new Map(checks.map((c) => [c.check, c]));
  t.equal(byName.get('CAP_NET_ADMIN')?.result, 'ok');
  t.equal(byName.get('bridge rt0')?.result, 'ok');
  const arp = byName.get('rt0 arp_ignore');
  t.equal(arp?.result, 'warn');
  t.equal(arp?.fix, 'sysctl -w net.ipv4.conf.rt0.arp_ignore=1');
  const table = await bed.exec(bed.runnerNs, [process.execPath, BIN, 'doctor'], { check: false });
  t.match(table.stdout, /^CHECK\s+RESULT\s+DETAIL\s+FIX$/m);
});

t.test('doctor says when the bridge is missing', async (t) => {
  const bed = await Testbed.create({ subnet: '10.8.64.0/24', bridge: false });
  t.teardown(() => bed.destroy());
  const r = await bed.exec(bed.runnerNs, [process.execPath, BIN, 'doctor', '-o', 'json'], {
    check: false,
  });
  const checks = JSON.parse(r.stdout) as Check[];
  const bridge = checks.find((c) => c.check === 'bridge rt0');
  t.equal(bridge?.result, 'warn');
  t.match(bridge?.fix ?? '', /ip link add rt0 type bridge/);
});

t.test('doctor shows the running agent following the bridge through its life', async (t) => {
  const bed = await Testbed.create({ subnet: '10.8.64.0/24' });
  const agent = AgentProcess.start(bed, { subnet: '10.8.64.0/24' });
  t.teardown(async () => {
    await agent.cleanup();
    await bed.destroy();
  });
  await agent.ready();
  const doctor = async () => {
    const r = await bed.exec(
      bed.runnerNs,
      [process.execPath, BIN, 'doctor', '--socket', agent.socket, '-o', 'json'],
      { check: false },
    );
    return new Map((JSON.parse(r.stdout) as Check[]).map((c) => [c.check, c]));
  };
  const up = await doctor();
  t.match(up.get('bridge rt0'), { result: 'ok', detail: /^present \(ifindex \d+\)$/ });
  t.match(up.get('agent bridge view'), {
    result: 'ok',
    detail: /^the agent sees: bridge rt0 is present \(ifindex \d+\) since /,
  });
  await bed.deleteBridge();
  await agent.waitForLog((l) => /bridge rt0 is not present \(deleted\)/.test(l.msg ?? ''));
  const gone = await doctor();
  t.match(gone.get('bridge rt0'), { result: 'warn', detail: 'not found (the agent waits for it)' });
  t.match(gone.get('agent bridge view'), {
    result: 'warn',
    detail: /the agent sees: bridge rt0 is not present \(deleted\)/,
  });
  await bed.ip(['link', 'add', 'rt0', 'type', 'veth', 'peer', 'name', 'rt0peer']);
  await agent.waitForLog((l) => /rt0 exists but is a veth link, not a bridge/.test(l.msg ?? ''));
  const taken = await doctor();
  t.match(taken.get('bridge rt0'), { result: 'warn', detail: /exists but is not a bridge/ });
  t.match(taken.get('agent bridge view')?.detail, /rt0 exists but is a veth link, not a bridge/);
});
