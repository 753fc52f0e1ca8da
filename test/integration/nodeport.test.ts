// Node ports end to end: the agent in a runner namespace with real nftables, real TCP/UDP
// traffic from the runner (127.0.0.1), an outside client and the sandbox itself (hairpin).
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { Testbed, type OutsideClient, type Sandbox } from '../../src/testbed/testbed.js';
import { AgentProcess } from '../../src/testbed/agent-process.js';
import { NameServer, UdpPinger, askName } from '../../src/testbed/name-server.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { SQLITE_FILE } from '../../src/store/open.js';
import type { AgentStatus } from '../../src/api/status-routes.js';
import type { NodePortView } from '../../src/nodeport/node-ports.js';
import { parseTableListing, type TableListing } from '../../src/nodeport/readback.js';
import { run } from '../../src/exec.js';

const SUBNET = '10.8.64.0/24';
const METRICS = '127.0.0.1:9464';

interface Rig {
  bed: Testbed;
  outside: OutsideClient;
  agent: AgentProcess;
}

async function rig(t: Test): Promise<Rig> {
  const bed = await Testbed.create({ subnet: SUBNET });
  const outside = await bed.addOutsideClient();
  const agent = AgentProcess.start(bed, {
    subnet: SUBNET,
    'sweep-seconds': '1',
    'metrics-listen': METRICS,
  });
  const r = { bed, outside, agent };
  t.teardown(async () => {
    await r.agent.cleanup();
    await bed.destroy();
  });
  await agent.ready();
  return r;
}

/**
 * A bed and a ready agent whose periodic sweep never comes during a test (sweep every hour), so
 * only the path under test can change the table.
 */
async function quietAgent(
  t: Test,
  flags: Record<string, string> = {},
): Promise<Pick<Rig, 'bed' | 'agent'>> {
  const bed = await Testbed.create({ subnet: SUBNET });
  const agent = AgentProcess.start(bed, { subnet: SUBNET, 'sweep-seconds': '3600', ...flags });
  t.teardown(async () => {
    await agent.cleanup();
    await bed.destroy();
  });
  await agent.ready();
  return { bed, agent };
}

async function table(bed: Testbed): Promise<TableListing> {
  const r = await run(['nft', '-j', 'list', 'table', 'ip', 'bridgeward'], { netns: bed.runnerNs });
  return parseTableListing(r.stdout);
}

async function repairs(bed: Testbed): Promise<number> {
  const r = await run(['curl', '-s', `http://${METRICS}/metrics`], { netns: bed.runnerNs });
  return Number(/^bridgeward_nodeport_repairs_total (\d+)/m.exec(r.stdout)?.[1] ?? NaN);
}

async function waitFor(what: string, pred: () => Promise<boolean>, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A sandbox namespace with a lease from the agent (the address the allocator chose). */
async function leasedSandbox(
  r: Pick<Rig, 'bed' | 'agent'>,
  id: string,
): Promise<Sandbox & { ip: string }> {
  const sb = await r.bed.addSandbox();
  const lease = await r.agent.json<{ ip: string }>([
    'lease',
    'allocate',
    '--sandbox',
    id,
    '--mac',
    sb.mac,
  ]);
  await r.bed.setSandboxIp(sb.netns, lease.ip);
  // A booted sandbox has talked to its gateway, so the bridge knows its port.
  await r.bed.exec(sb.netns, ['ping', '-c1', '-W1', r.bed.gateway], { check: false });
  return { ...sb, ip: lease.ip };
}

t.test(
  '25 deploy cycles on tcp/6667: one element, reachable from every side each time',
  async (t) => {
    const r = await rig(t);
    const status = await r.agent.json<AgentStatus>(['status']);
    t.equal(status.features.nftables, 'libnftables', 'in-process libnftables in use');
    const sysctl = await run(['sysctl', '-n', 'net.ipv4.conf.rt0.route_localnet'], {
      netns: r.bed.runnerNs,
    });
    t.equal(sysctl.stdout.trim(), '1', 'route_localnet on the bridge');
    const all = await run(['sysctl', '-n', 'net.ipv4.conf.all.route_localnet'], {
      netns: r.bed.runnerNs,
    });
    t.equal(all.stdout.trim(), '0', 'route_localnet not on all');

    let prev: { id: string; sb: Sandbox; srv: NameServer } | null = null;
    let last = '';
    const failures: string[] = [];
    for (let i = 1; i <= 25; i++) {
      const id = `app-v${i}`;
      const sb = await leasedSandbox(r, id);
      const srv = await NameServer.start(sb.netns, 'tcp', 8080, id);
      t.teardown(() => srv.stop());
      if (prev) await r.agent.json(['port', 'remove', '--proto', 'tcp', '--host-port', '6667']);
      const view = await r.agent.addPort(id, 'tcp', 6667, 8080);
      if (view.addr !== sb.ip) failures.push(`cycle ${i}: add answered ${view.addr}`);
      if (prev) {
        await prev.srv.stop();
        await r.bed.removeSandbox(prev.sb);
        await r.agent.json(['lease', 'release', '--sandbox', prev.id]);
      }
      const els = (await table(r.bed)).elements.filter((e) => e.hostPort === 6667);
      if (els.length !== 1 || els[0]?.addr !== sb.ip) {
        failures.push(`cycle ${i}: elements ${JSON.stringify(els)}`);
      }
      const answers = {
        localhost: await askName(r.bed.runnerNs, 'tcp', '127.0.0.1', 6667),
        ownAddress: await askName(r.bed.runnerNs, 'tcp', r.outside.runnerIp, 6667),
        outside: await askName(r.outside.netns, 'tcp', r.outside.runnerIp, 6667),
        hairpin: await askName(sb.netns, 'tcp', r.outside.runnerIp, 6667),
      };
      for (const [how, got] of Object.entries(answers)) {
        if (got !== id) failures.push(`cycle ${i}: ${how} reached ${JSON.stringify(got)}`);
      }
      prev = { id, sb, srv };
      last = sb.ip;
    }
    await prev?.srv.stop();
    t.same(
      failures,
      [],
      'every cycle: exactly one element; 127.0.0.1 and own address from the runner, outside and hairpin reach the live sandbox',
    );
    const list = await r.agent.json<NodePortView[]>(['port', 'list']);
    t.same(list, [{ proto: 'tcp', hostPort: 6667, sandbox: 'app-v25', port: 8080, addr: last }]);
    const metrics = await run(['curl', '-s', `http://${METRICS}/metrics`], {
      netns: r.bed.runnerNs,
    });
    t.match(
      metrics.stdout,
      /^bridgeward_nodeport_change_seconds_count\{op="add"\} 25$/m,
      'every add timed',
    );
    t.match(metrics.stdout, /^bridgeward_nodeport_change_seconds_count\{op="remove"\} 24$/m);
  },
);

t.test(
  'SIGKILL between store commit and nft apply: restart rebuilds the table from the store',
  async (t) => {
    const r = await rig(t);
    const a = await leasedSandbox(r, 'a');
    const b = await leasedSandbox(r, 'b');
    await r.agent.addPort('a', 'tcp', 7001, 80);
    await r.agent.addPort('a', 'udp', 7002, 53);
    t.equal((await r.agent.stop('SIGKILL')).code, null, 'killed');
    // Commits the agent never applied: a moved port, a removed port, a new one.
    const store = openSqliteStore(join(r.agent.stateDir, SQLITE_FILE));
    await store.removePort('tcp', 7001, new Date());
    await store.putPort({ proto: 'tcp', hostPort: 7001, sandbox: 'b', port: 8080 }, new Date());
    await store.removePort('udp', 7002, new Date());
    await store.putPort({ proto: 'tcp', hostPort: 7003, sandbox: 'b', port: 8081 }, new Date());
    await store.close();
    t.same(
      (await table(r.bed)).elements.map((e) => `${e.proto}/${e.hostPort}->${e.addr}`),
      [`tcp/7001->${a.ip}`, `udp/7002->${a.ip}`],
      'the kernel still holds the old state',
    );
    r.agent = AgentProcess.start(
      r.bed,
      { subnet: SUBNET, 'sweep-seconds': '1', 'metrics-listen': METRICS },
      r.agent,
    );
    await r.agent.ready();
    t.same(
      (await table(r.bed)).elements,
      [
        { proto: 'tcp', hostPort: 7001, addr: b.ip, port: 8080 },
        { proto: 'tcp', hostPort: 7003, addr: b.ip, port: 8081 },
      ],
      'table matches the store, nothing stale',
    );
    const srv = await NameServer.start(b.netns, 'tcp', 8080, 'b');
    t.teardown(() => srv.stop());
    t.equal(
      await askName(r.outside.netns, 'tcp', r.outside.runnerIp, 7001),
      'b',
      'moved port reaches b',
    );
  },
);

t.test('drift: flushed table, deleted and edited elements are repaired and counted', async (t) => {
  const r = await rig(t);
  const a = await leasedSandbox(r, 'a');
  await r.agent.addPort('a', 'tcp', 6667, 80);
  await r.agent.addPort('a', 'udp', 6668, 53);
  const srv = await NameServer.start(a.netns, 'tcp', 80, 'a');
  t.teardown(() => srv.stop());
  const good = await table(r.bed);
  t.equal(await repairs(r.bed), 0);
  const nft = (cmd: string) => run(['nft', cmd], { netns: r.bed.runnerNs });
  const healed = async (what: string, count: number) => {
    await waitFor(what, async () => {
      const now = await table(r.bed).catch(() => null);
      return (
        now?.structure === good.structure &&
        JSON.stringify(now.elements) === JSON.stringify(good.elements)
      );
    });
    t.pass(`${what}: table restored`);
    await waitFor(`${what} counted`, async () => (await repairs(r.bed)) >= count);
    t.equal(await repairs(r.bed), count, `${what}: repairs counted`);
  };
  await nft('flush table ip bridgeward');
  await healed('flush table', 1);
  t.equal(await askName(r.outside.netns, 'tcp', r.outside.runnerIp, 6667), 'a', 'reachable again');
  await nft('delete element ip bridgeward nodeports { tcp . 6667 }');
  await healed('deleted element', 2);
  // One transaction: between two commands the agent may already have repaired the delete.
  await nft(
    'delete element ip bridgeward nodeports { udp . 6668 }; ' +
      'add element ip bridgeward nodeports { udp . 6668 : 10.8.64.99 . 53, tcp . 9 : 10.8.64.99 . 9 }',
  );
  await healed('edited elements', 3);
  await nft('delete table ip bridgeward');
  await healed('deleted table', 4);
  await run(['nft', 'add table ip other; add chain ip other c; add rule ip other c accept'], {
    netns: r.bed.runnerNs,
  });
  await new Promise((res) => setTimeout(res, 1500));
  const other = await run(['nft', 'list table ip other'], { netns: r.bed.runnerNs });
  t.match(other.stdout, /accept/, 'other tables are never touched');
  t.equal(await repairs(r.bed), 4, 'no repair without drift');
});

t.test('nft monitor: another process flushing the table is repaired at once', async (t) => {
  // No periodic read-back during the test: only the monitor can notice the flush.
  const { bed, agent } = await quietAgent(t);
  await leasedSandbox({ bed, agent }, 'a');
  await agent.addPort('a', 'tcp', 6667, 80);
  // The monitor has seen one of the agent's own transactions: it is subscribed.
  await agent.waitForLog((l) => l.msg === 'nft monitor is watching the node-port table');
  const good = await table(bed);
  await run(['nft', 'flush table ip bridgeward'], { netns: bed.runnerNs });
  const foreign = await agent.waitForLog(
    (l) => l.msg === 'another process changed the node-port table',
  );
  t.match(foreign, { comm: 'nft' }, 'names the process');
  await agent.waitForLog((l) => l.msg === 'node-port table drifted; repairing');
  await waitFor('table restored', async () => {
    const now = await table(bed);
    return (
      now.structure === good.structure &&
      JSON.stringify(now.elements) === JSON.stringify(good.elements)
    );
  });
  t.pass('restored without a periodic sweep');
});

t.test('UDP mapping moved: a client that keeps sending reaches the new backend', async (t) => {
  const r = await rig(t);
  const a = await leasedSandbox(r, 'a');
  const b = await leasedSandbox(r, 'b');
  const sa = await NameServer.start(a.netns, 'udp', 5353, 'a');
  t.teardown(() => sa.stop());
  const sb = await NameServer.start(b.netns, 'udp', 5353, 'b');
  t.teardown(() => sb.stop());
  await r.agent.addPort('a', 'udp', 5300, 5353);
  const pinger = UdpPinger.start(r.outside.netns, r.outside.runnerIp, 5300, 50);
  t.teardown(() => pinger.stop());
  await waitFor('answers from a', async () => pinger.answers.includes('a'));
  await r.agent.json(['port', 'remove', '--proto', 'udp', '--host-port', '5300']);
  await r.agent.addPort('b', 'udp', 5300, 5353);
  const mark = pinger.answers.length;
  await waitFor('answers from b', async () => pinger.answers.slice(mark).includes('b'), 5000);
  await new Promise((res) => setTimeout(res, 500));
  const after = pinger.answers.slice(pinger.answers.lastIndexOf('a') + 1);
  t.ok(
    after.length >= 5 && after.every((x) => x === 'b'),
    `only b answers now (${after.length} answers)`,
  );
  t.equal(pinger.answers.slice(-1)[0], 'b');
});

t.test(
  'a change written to the store by another process reaches the kernel at the next sweep',
  async (t) => {
    const r = await rig(t); // sweeps every second
    await leasedSandbox(r, 'a');
    await r.agent.addPort('a', 'tcp', 7200, 80);
    const store = openSqliteStore(join(r.agent.stateDir, SQLITE_FILE));
    t.teardown(() => store.close());
    await store.removePort('tcp', 7200, new Date());
    await store.putPort({ proto: 'tcp', hostPort: 7201, sandbox: 'a', port: 81 }, new Date());
    await waitFor('the table to follow the store', async () => {
      const els = (await table(r.bed)).elements.map((e) => `${e.hostPort}:${e.port}`);
      return els.length === 1 && els[0] === '7201:81';
    });
    t.pass('the other writer moved the store revision; the sweep synced the table');
  },
);

t.test('a failed incremental transaction falls back to a full replace', async (t) => {
  // No periodic sweep and no monitor during the test: the API change itself meets the drift.
  const { bed, agent } = await quietAgent(t, { 'nft-monitor': 'off', 'metrics-listen': METRICS });
  const a = await leasedSandbox({ bed, agent }, 'a');
  const add = (port: number) => agent.addPort('a', 'tcp', port, 80);
  await add(7100);
  await add(7101);
  await run(['nft', 'delete element ip bridgeward nodeports { tcp . 7100 }'], {
    netns: bed.runnerNs,
  });
  // Deleting the element the kernel no longer has fails the transaction as a whole.
  await agent.json(['port', 'remove', '--proto', 'tcp', '--host-port', '7100']);
  t.same((await table(bed)).elements, [{ proto: 'tcp', hostPort: 7101, addr: a.ip, port: 80 }]);
  const metrics = await run(['curl', '-s', `http://${METRICS}/metrics`], { netns: bed.runnerNs });
  t.match(metrics.stdout, /^bridgeward_nft_transactions_total\{result="error"\} 1$/m);
  t.ok(
    agent.logs.some((l) => l.msg === 'node-port transaction failed; replacing the whole table'),
    'logged',
  );
});

t.test('clear errors for bad port requests; nothing changes', async (t) => {
  const r = await rig(t);
  const a = await leasedSandbox(r, 'a');
  await leasedSandbox(r, 'b');
  await r.agent.addPort('a', 'tcp', 8000, 80);
  const cases: [string[], number, RegExp][] = [
    [
      ['--sandbox', 'b', '--proto', 'tcp', '--host-port', '8000', '--port', '80'],
      1,
      /tcp\/8000 is already mapped to sandbox a/,
    ],
    [
      ['--sandbox', 'a', '--proto', 'tcp', '--host-port', '70000', '--port', '80'],
      2,
      /--host-port "70000": expected a whole number 1\.\.65535/,
    ],
    [
      ['--sandbox', 'a', '--proto', 'tcp', '--host-port', '8001', '--port', '0'],
      2,
      /--port "0": expected a whole number 1\.\.65535/,
    ],
    [
      ['--sandbox', 'nobody', '--proto', 'tcp', '--host-port', '8001', '--port', '80'],
      1,
      /sandbox nobody has no active lease/,
    ],
    [
      ['--sandbox', 'a', '--proto', 'tcp', '--host-port', '7123', '--port', '80'],
      1,
      /tcp\/7123 is reserved for the identity token server on this runner/,
    ],
    [
      ['--sandbox', 'a', '--proto', 'tcp', '--host-port', '9464', '--port', '80'],
      1,
      /tcp\/9464 is reserved for the metrics endpoint on this runner/,
    ],
    [
      ['--sandbox', 'a', '--proto', 'sctp', '--host-port', '8001', '--port', '80'],
      2,
      /--proto "sctp": unknown protocol, expected tcp or udp/,
    ],
  ];
  for (const [args, code, re] of cases) {
    const res = await r.agent.cli(['port', 'add', ...args]);
    t.equal(res.code, code, args.join(' '));
    t.match(res.stderr, re);
  }
  const gone = await r.agent.cli(['port', 'remove', '--proto', 'udp', '--host-port', '8000']);
  t.equal(gone.code, 1);
  t.match(gone.stderr, /no node port udp\/8000/);
  t.same(
    (await table(r.bed)).elements,
    [{ proto: 'tcp', hostPort: 8000, addr: a.ip, port: 80 }],
    'table unchanged',
  );
  const list = await r.agent.cli(['port', 'list']);
  t.match(
    list.stdout,
    new RegExp(
      `^PROTO\\s+HOST-PORT\\s+SANDBOX\\s+ADDRESS\\s+PORT\\ntcp\\s+8000\\s+a\\s+${a.ip.replaceAll('.', '\\.')}\\s+80\\n$`,
    ),
  );
});

t.test('releasing a lease takes its node ports out of the kernel at once', async (t) => {
  // No periodic sweep during the test: only the release itself can remove the element.
  const { bed, agent } = await quietAgent(t);
  await leasedSandbox({ bed, agent }, 'gone');
  await agent.addPort('gone', 'tcp', 7200, 80);
  t.equal((await table(bed)).elements.length, 1);
  await agent.json(['lease', 'release', '--sandbox', 'gone']);
  await waitFor('the element to go', async () => (await table(bed)).elements.length === 0, 5000);
  t.same(await agent.json(['port', 'list']), [], 'the store has no port either');
});
