// The CNI IPAM plugin under Debian's real `bridge` plugin (cniVersion 1.0.0) on a real rt0, with
// the real agent: addresses, the gateway, CHECK, DEL/ADD, a repeated ADD, GC and STATUS (1.1.0),
// bad input that changes nothing, and the MIR-912 replay (a wiped store while a CNI-attached
// sandbox keeps talking).
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { Testbed } from '../../src/testbed/testbed.js';
import { AgentProcess } from '../../src/testbed/agent-process.js';
import { CniNetwork, type CniOutcome } from '../../src/testbed/cni.js';
import type { Lease, LeaseEvent, Quarantine } from '../../src/store/types.js';

/** A fixed bridge MAC, as a runner gives rt0 (the bridge plugin's CHECK compares it). */
const BRIDGE_MAC = '02:b0:00:00:00:01';

async function setup(t: Test, subnet: string, flags: Record<string, string> = {}) {
  const bed = await Testbed.create({ subnet, bridgeMac: BRIDGE_MAC });
  const agent = AgentProcess.start(bed, { subnet, 'identity-listen': 'off', ...flags });
  t.teardown(async () => {
    await agent.cleanup();
    await bed.destroy();
  });
  await agent.ready();
  return { bed, agent, net: CniNetwork.create(bed, agent) };
}

/** The first address of an ADD result, without its prefix. */
function addressOf(r: CniOutcome): string {
  const ips = r.result?.ips as { address: string }[] | undefined;
  return (ips?.[0]?.address ?? '').split('/')[0] as string;
}

async function pingGateway(bed: Testbed, netns: string): Promise<number | null> {
  return (await bed.exec(netns, ['ping', '-c1', '-W2', bed.gateway], { check: false })).code;
}

/** Leases and the length of the history: what a failed call must leave as it was. */
async function storeState(agent: AgentProcess) {
  return {
    leases: await agent.json<Lease[]>(['lease', 'list']),
    events: (await agent.json<LeaseEvent[]>(['lease', 'history'])).length,
  };
}

t.test('attachments get addresses, reach the gateway, pass CHECK, DEL and ADD again', async (t) => {
  const { bed, agent, net } = await setup(t, '10.8.122.0/24');
  const ns1 = await bed.addNamespace('c1');
  const ns2 = await bed.addNamespace('c2');
  const add1 = await net.exec('bridge', net.env('ADD', 'ctr-1', ns1), net.config());
  t.equal(add1.code, 0, add1.stdout + add1.stderr);
  const add2 = await net.exec('bridge', net.env('ADD', 'ctr-2', ns2), net.config());
  t.equal(add2.code, 0, add2.stdout + add2.stderr);
  t.match(add1.result, {
    cniVersion: '1.0.0',
    ips: [{ address: /^10\.8\.122\.\d+\/24$/, gateway: '10.8.122.1' }],
    routes: [{ dst: '0.0.0.0/0', gw: '10.8.122.1' }],
  });
  const [ip1, ip2] = [addressOf(add1), addressOf(add2)];
  t.not(ip1, ip2, 'distinct addresses');
  t.equal(await pingGateway(bed, ns1), 0, 'ctr-1 reaches the gateway');
  t.equal(await pingGateway(bed, ns2), 0, 'ctr-2 reaches the gateway');
  t.match(
    await agent.json<Lease[]>(['lease', 'list']),
    [
      { sandbox: 'ctr-1.eth0', ip: ip1 },
      { sandbox: 'ctr-2.eth0', ip: ip2 },
    ],
    'the leases name the attachments',
  );

  const check = (prevResult: unknown, id = 'ctr-1', netns = ns1) =>
    net.exec('bridge', net.env('CHECK', id, netns), net.config({ prevResult }));
  const ok = await check(add1.result);
  t.equal(ok.code, 0, `CHECK passes: ${ok.stdout}${ok.stderr}`);
  t.equal(ok.stdout, '', 'CHECK prints nothing');
  const other = JSON.parse(JSON.stringify(add1.result)) as { ips: { address: string }[] };
  (other.ips[0] as { address: string }).address = `${ip2}/24`;
  const wrong = await bed.exec(ns1, ['ip', 'addr', 'add', `${ip2}/24`, 'dev', 'eth0']);
  t.equal(wrong.code, 0, 'the container carries the address the bogus prevResult names');
  const mismatch = await check(other);
  t.equal(mismatch.code, 1, 'CHECK fails when the lease is not the recorded address');
  t.match(mismatch.result, { code: 101, details: /ctr-1\.eth0 holds 10\.8\.122\.\d+/ });
  await bed.exec(ns1, ['ip', 'addr', 'del', `${ip2}/24`, 'dev', 'eth0']);

  // DEL, then DEL again (unknown now: success), then ADD of the same attachment.
  const del = await net.exec(
    'bridge',
    net.env('DEL', 'ctr-1', ns1),
    net.config({ prevResult: add1.result }),
  );
  t.equal(del.code, 0, del.stdout + del.stderr);
  t.same(
    (await agent.json<Lease[]>(['lease', 'list'])).map((l) => l.sandbox),
    ['ctr-2.eth0'],
    'released',
  );
  const gone = await check(add1.result);
  t.equal(gone.code, 1, 'CHECK fails once the attachment was deleted');
  t.match(gone.result, { code: 101 });
  const again = await net.exec('bridge', net.env('DEL', 'ctr-1', ns1), net.config());
  t.equal(again.code, 0, 'DEL of an unknown attachment succeeds');
  const readd = await net.exec('bridge', net.env('ADD', 'ctr-1', ns1), net.config());
  t.equal(readd.code, 0, readd.stdout + readd.stderr);
  t.not(addressOf(readd), ip1, 'a new lease: the released address cools down');
  t.equal(await pingGateway(bed, ns1), 0);
});

t.test(
  'a runtime that crashed between ADD and its bookkeeping gets the same address',
  async (t) => {
    const { bed, agent, net } = await setup(t, '10.8.123.0/24');
    const first = await bed.addNamespace('c1');
    const add = await net.exec('bridge', net.env('ADD', 'ctr-x', first), net.config());
    t.equal(add.code, 0, add.stdout + add.stderr);
    // The runtime lost the result: it tears the namespace down and runs ADD again in a new one.
    await bed.removeNamespace(first);
    const second = await bed.addNamespace('c2');
    const readd = await net.exec('bridge', net.env('ADD', 'ctr-x', second), net.config());
    t.equal(readd.code, 0, readd.stdout + readd.stderr);
    t.equal(addressOf(readd), addressOf(add), 'the same address');
    t.equal(await pingGateway(bed, second), 0);
    // The IPAM plugin alone, twice: the same result.
    const env = net.env('ADD', 'ctr-x', second);
    const [a, b] = [
      await net.exec('bridgeward', env, net.config()),
      await net.exec('bridgeward', env, net.config()),
    ];
    t.same(a.result, b.result);
    t.equal(addressOf(a), addressOf(add));
    t.equal((await agent.json<Lease[]>(['lease', 'list'])).length, 1, 'one lease');

    // A chained ADD carries prevResult: the MAC of the container's CNI_IFNAME is recorded.
    const mac = '02:cc:00:00:00:01';
    const prevResult = {
      interfaces: [
        { name: 'eth0', mac: '02:cc:00:00:00:99' },
        { name: 'eth0', mac, sandbox: `/run/netns/${second}` },
      ],
      ips: [],
    };
    const chained = await net.exec(
      'bridgeward',
      net.env('ADD', 'chained', second),
      net.config({ prevResult }),
    );
    t.equal(chained.code, 0, chained.stdout);
    t.match(await agent.json<Lease[]>(['lease', 'list']), [
      { sandbox: 'ctr-x.eth0' },
      { sandbox: 'chained.eth0', mac },
    ]);
  },
);

t.test('GC and STATUS, called directly with cniVersion 1.1.0', async (t) => {
  const { bed, agent, net } = await setup(t, '10.8.124.0/29', { 'sweep-seconds': '1' });
  const v11 = (extra: Record<string, unknown> = {}) => net.config(extra, '1.1.0');
  const status = () =>
    net.exec('bridgeward', { CNI_COMMAND: 'STATUS', CNI_PATH: net.cniPath }, v11());
  const up = await status();
  t.equal(up.code, 0, up.stdout);
  t.equal(up.stdout, '', 'STATUS prints nothing when available');

  const keep = await bed.addNamespace('keep');
  const drop = await bed.addNamespace('drop');
  t.equal((await net.exec('bridge', net.env('ADD', 'keep', keep), net.config())).code, 0);
  t.equal((await net.exec('bridge', net.env('ADD', 'drop', drop), net.config())).code, 0);
  await bed.removeNamespace(drop); // its veth goes: quiet on the wire from now on
  const gc = await net.exec(
    'bridgeward',
    { CNI_COMMAND: 'GC', CNI_PATH: net.cniPath },
    v11({ 'cni.dev/valid-attachments': [{ containerID: 'keep', ifname: 'eth0' }] }),
  );
  t.equal(gc.code, 0, gc.stdout + gc.stderr);
  t.equal(gc.stdout, '', 'GC prints nothing');
  await agent.waitForLog((l) => l.msg === 'reaped lease' && l.sandbox === 'drop.eth0', 15_000);
  t.same(
    (await agent.json<Lease[]>(['lease', 'list'])).map((l) => l.sandbox),
    ['keep.eth0'],
    'the attachment GC did not list is reaped; the valid one stays',
  );

  // /29: five addresses besides the gateway. Fill them; STATUS then says "not available".
  for (let i = 0; i < 4; i++) {
    const r = await net.exec('bridgeward', net.env('ADD', `fill-${i}`, keep), v11());
    t.equal(r.code, 0, r.stdout);
  }
  const full = await status();
  t.equal(full.code, 1);
  t.match(full.result, {
    cniVersion: '1.1.0',
    code: 50,
    details: /no free address in 10\.8\.124\.0\/29/,
  });
  const nobody = await net.exec(
    'bridgeward',
    { CNI_COMMAND: 'STATUS', CNI_PATH: net.cniPath },
    JSON.stringify({
      cniVersion: '1.1.0',
      name: net.name,
      ipam: { type: 'bridgeward', socket: `${agent.dir}/none.sock` },
    }),
  );
  t.match(nobody.result, { code: 50, details: /cannot reach the agent/ }, 'agent unreachable: 50');
});

t.test(
  'garbage, missing variables and an unreachable agent: a spec error, nothing changed',
  async (t) => {
    const { bed, agent, net } = await setup(t, '10.8.125.0/24');
    const ns = await bed.addNamespace('c1');
    t.equal((await net.exec('bridge', net.env('ADD', 'present', ns), net.config())).code, 0);
    // The agent binds the lease to the MAC it sees on the wire (an event): let that happen first.
    const deadline = Date.now() + 15_000;
    while (!(await agent.json<Lease[]>(['lease', 'list']))[0]?.mac && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
    }
    const before = await storeState(agent);
    const noContainer = Object.fromEntries(
      Object.entries(net.env('ADD', 'c1', ns)).filter(([k]) => k !== 'CNI_CONTAINERID'),
    );
    const cases: [string, Record<string, string>, string, number, RegExp][] = [
      [
        'garbage on stdin',
        net.env('ADD', 'g', ns),
        '{"cniVersion": "1.0.0", garbage',
        6,
        /not JSON/,
      ],
      [
        'no CNI_COMMAND',
        { CNI_CONTAINERID: 'c1', CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: 'eth0' },
        net.config(),
        4,
        /CNI_COMMAND missing/,
      ],
      ['no CNI_CONTAINERID', noContainer, net.config(), 4, /CNI_CONTAINERID missing/],
      [
        'a bad CNI_IFNAME',
        net.env('ADD', 'c1', ns, 'eth/0'),
        net.config(),
        4,
        /CNI_IFNAME "eth\/0"/,
      ],
      [
        'an old spec version',
        net.env('ADD', 'c1', ns),
        net.config({}, '0.2.0'),
        1,
        /cniVersion "0\.2\.0" is not supported/,
      ],
      [
        'a host-local key',
        net.env('ADD', 'c1', ns),
        net.config({ ipam: { type: 'bridgeward', subnet: '10.0.0.0/8' } }),
        2,
        /ipam\.subnet="10\.0\.0\.0\/8"/,
      ],
      [
        'an unreachable agent',
        net.env('ADD', 'c1', ns),
        net.config({ ipam: { type: 'bridgeward', socket: `${agent.dir}/none.sock` } }),
        11,
        /cannot reach the agent/,
      ],
      [
        'DEL with an unreachable agent',
        net.env('DEL', 'present', ns),
        net.config({ ipam: { type: 'bridgeward', socket: `${agent.dir}/none.sock` } }),
        11,
        /cannot reach the agent/,
      ],
    ];
    for (const [what, env, stdin, code, details] of cases) {
      const r = await net.exec('bridgeward', env, stdin);
      t.equal(r.code, 1, `${what}: exit 1`);
      t.match(r.result, { code, msg: String, details }, `${what}: error object ${code}`);
      t.ok(typeof r.result?.cniVersion === 'string', `${what}: carries cniVersion`);
    }
    const viaBridge = await net.exec(
      'bridge',
      net.env('ADD', 'c1', ns),
      '{"cniVersion": "1.0.0", garbage',
    );
    t.equal(viaBridge.code, 1, 'the bridge plugin fails too');
    t.same(await storeState(agent), before, 'no lease and no event was added or removed');
  },
);

t.test('MIR-912 through CNI: the store is wiped while an attached sandbox talks', async (t) => {
  const subnet = '10.8.126.0/28';
  const bed = await Testbed.create({ subnet, bridgeMac: BRIDGE_MAC });
  const flags = { subnet, 'identity-listen': 'off' };
  let agent = AgentProcess.start(bed, flags);
  const talkers: ChildProcess[] = [];
  t.teardown(async () => {
    for (const p of talkers) p.kill();
    await agent.cleanup();
    await bed.destroy();
  });
  await agent.ready();
  const net = CniNetwork.create(bed, agent);
  const echo = await bed.addNamespace('echo');
  const add = await net.exec('bridge', net.env('ADD', 'websocket-echo', echo), net.config());
  const ip = addressOf(add);
  t.equal(ip, '10.8.126.2');
  talkers.push(
    spawn('ip', ['netns', 'exec', echo, 'ping', '-q', '-i', '0.2', bed.gateway], {
      stdio: 'ignore',
    }),
  );
  await new Promise((r) => setTimeout(r, 500));

  await agent.stop('SIGKILL');
  rmSync(agent.stateDir, { recursive: true, force: true });
  agent = AgentProcess.start(bed, flags, agent); // same socket, empty store
  await agent.ready();

  const meet = await bed.addNamespace('meet');
  const next = await net.exec('bridge', net.env('ADD', 'meet-0', meet), net.config());
  t.equal(next.code, 0, next.stdout + next.stderr);
  const got = [addressOf(next)];
  for (let i = 1; i <= 13; i++) {
    const r = await net.exec('bridgeward', net.env('ADD', `meet-${i}`, meet), net.config());
    if (r.code !== 0) {
      t.match(
        r.result,
        { code: 100, details: /no free address in 10\.8\.126\.0\/28: 12 active, 1 quarantined/ },
        'the pool runs out rather than hand out .2',
      );
      break;
    }
    got.push(addressOf(r));
  }
  t.notOk(got.includes(ip), `never ${ip} (got ${got.join(' ')})`);
  t.equal(new Set(got).size, 12, 'twelve distinct addresses');
  t.match(
    await agent.json<Quarantine[]>(['quarantine', 'list']),
    [{ ip, reason: 'live-unleased' }],
    'the talking sandbox keeps its address reserved',
  );
});
