// The guard in enforce never drops a legitimate frame: traffic between two leased sandboxes, an
// agent SIGKILLed and restarted under traffic, a clean handover of an address to a new sandbox,
// and the bridge recreated with the sandboxes on new ports. Frames are counted twice: by the
// senders (ping: transmitted vs received) and by the guard (dropped since the agent started).
import t, { type Test } from 'tap';
import { apiRequest } from '../../src/api/client.js';
import type { Lease } from '../../src/store/types.js';
import { NameServer, askName } from '../../src/testbed/name-server.js';
import type { Sandbox } from '../../src/testbed/testbed.js';
import { guardedRunner, type GuardedRunner } from '../harness/guarded-runner.js';

/** Pings `to` from `from` `count` times every `intervalS`; resolves to [transmitted, received]. */
async function ping(
  r: GuardedRunner,
  from: Pick<Sandbox, 'netns'>,
  to: string,
  count: number,
  intervalS: number,
): Promise<[number, number]> {
  const out = await r.bed.exec(
    from.netns,
    ['ping', '-c', String(count), '-i', String(intervalS), '-W', '1', to],
    { check: false },
  );
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out.stdout);
  return m ? [Number(m[1]), Number(m[2])] : [count, 0];
}

/** Every frame of `count` pings answered. */
async function allAnswered(t: Test, r: GuardedRunner, from: Sandbox, to: string, count = 20) {
  const [sent, got] = await ping(r, from, to, count, 0.05);
  t.equal(got, sent, `${got} of ${sent} pings answered`);
}

t.test('enforce never drops a legitimate frame', async (t) => {
  // A /29: five addresses, so a released one is handed out again (cool-down 0).
  const r = await guardedRunner(t, { guard: 'enforce', 'cooldown-seconds': '0' }, '10.63.0.0/29');
  let a = await r.leased('app-a');
  let b = await r.leased('app-b');
  for (const s of [a, b]) await r.waitBound(s);
  const dropped = async () => (await r.guard()).dropped;

  await t.test('TCP, UDP and ICMP between two sandboxes', async (t) => {
    const servers = await Promise.all([
      NameServer.start(b.netns, 'tcp', 7000, 'B'),
      NameServer.start(b.netns, 'udp', 7000, 'B'),
    ]);
    t.teardown(() => Promise.all(servers.map((s) => s.stop())));
    const [sent, got] = await ping(r, a, b.ip, 200, 0.01);
    t.equal(got, sent, `${got} of ${sent} pings answered`);
    for (const proto of ['tcp', 'udp'] as const) {
      const answers = [];
      for (let i = 0; i < 4; i++) answers.push(await askName(a.netns, proto, b.ip, 7000));
      t.same(answers, ['B', 'B', 'B', 'B'], `${proto}: every request answered`);
    }
    t.equal(await dropped(), 0, 'the guard dropped nothing');
    t.match(await r.guard(), { mode: 'enforce', ports: { bound: 2, learned: 0, unbound: 0 } });
  });

  await t.test('an agent SIGKILLed and restarted under traffic', async (t) => {
    const pinging = ping(r, a, b.ip, 400, 0.01);
    await new Promise((res) => setTimeout(res, 300));
    await r.restart();
    const [sent, got] = await pinging;
    t.equal(got, sent, `${got} of ${sent} pings answered across the restart`);
    t.equal(await dropped(), 0, 'the new agent dropped nothing');
    t.match(await r.guard(), { ports: { bound: 2, unbound: 0 } }, 'it took over every binding');
  });

  await t.test('a clean handover of an address', async (t) => {
    for (const filler of ['f1', 'f2', 'f3']) {
      await apiRequest(r.agent.socket, 'POST', '/v1/leases', { sandbox: filler });
    }
    // The old sandbox is gone, and so is the runner's neighbour entry for it (else the release
    // would rightly quarantine the address as still live).
    await r.bed.removeSandbox(a);
    await r.bed.exec(r.bed.runnerNs, ['ip', 'neigh', 'del', a.ip, 'dev', r.bed.bridge], {
      check: false,
    });
    await new Promise((res) => setTimeout(res, 300)); // the agent hears the entry go
    const released = await r.agent.json<{ quarantined: boolean }>([
      'lease',
      'release',
      '--sandbox',
      'app-a',
    ]);
    t.equal(released.quarantined, false, 'a clean release: the address cools, not quarantined');
    const n = await r.leased('app-n');
    t.equal(n.ip, a.ip, `the new sandbox gets the old one's address (${a.ip})`);
    await allAnswered(t, r, n, b.ip);
    const leases = await apiRequest<Lease[]>(r.agent.socket, 'GET', '/v1/leases');
    t.match(
      leases.find((l) => l.sandbox === 'app-n'),
      { ifindex: n.hostIfindex, mac: n.mac },
      'bound to its port from its first frame',
    );
    t.equal(await dropped(), 0, 'the guard dropped nothing');
    a = n;
  });

  await t.test('the bridge recreated, the sandboxes on new ports', async (t) => {
    await r.bed.deleteBridge();
    for (let i = 0; i < 100 && (await r.guard()).ports.bound > 0; i++) {
      await new Promise((res) => setTimeout(res, 50));
    }
    t.match(
      await r.guard(),
      { ports: { bound: 0 }, pendingLeases: 5 },
      'every lease awaits a port',
    );
    await r.bed.createBridgeAsRuntime();
    const ifindex = await r.bed.bridgeIfindex();
    await r.agent.waitForLog((l) => l.msg === 'bridge up' && l.ifindex === ifindex);
    await r.bed.detachSandbox(a);
    await r.bed.detachSandbox(b);
    a = { ...(await r.bed.reattachSandbox(a, a.ip)), id: a.id, ip: a.ip };
    b = { ...(await r.bed.reattachSandbox(b, b.ip)), id: b.id, ip: b.ip };
    await allAnswered(t, r, a, b.ip);
    t.equal(await dropped(), 0, 'the guard dropped nothing');
    const leases = await apiRequest<Lease[]>(r.agent.socket, 'GET', '/v1/leases');
    t.same(
      [a, b].map((s) => leases.find((l) => l.sandbox === s.id)?.ifindex),
      [a.hostIfindex, b.hostIfindex],
      'both bound to their new ports',
    );
  });
});
