// rt0 through a runner's whole life, as a runtime drives it: the agent started before the
// bridge, the runtime creating it and assigning the gateway while the agent does the same, the
// gateway address removed, the bridge deleted, renamed and recreated with new ports, a veth
// taking its name, and a sandbox reaching its own node port right after its first frame. Real
// namespaces, a real bridge, real veths, real nftables and eBPF; the agent as a child process.
import t, { type Test } from 'tap';
import { Testbed, type OutsideClient, type Sandbox } from '../../src/testbed/testbed.js';
import { AgentProcess, type LogLine } from '../../src/testbed/agent-process.js';
import { NameServer, askName } from '../../src/testbed/name-server.js';
import { apiRequest } from '../../src/api/client.js';
import type { AgentStatus } from '../../src/api/status-routes.js';
import type { Lease } from '../../src/store/types.js';
import type { Finding } from '../../src/detect/finding.js';
import { run } from '../../src/exec.js';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { portAttachments } from '../harness/attachments.js';

const SUBNET = '10.77.0.0/24';
const GATEWAY = '10.77.0.1';
const METRICS = '127.0.0.1:9464';

/** A runner namespace (bridge created or not) and an agent started in it. */
async function runner(
  t: Test,
  opts: { bridge?: boolean; outside?: boolean; flags?: Record<string, string> } = {},
): Promise<{ bed: Testbed; agent: AgentProcess; outside: OutsideClient | null }> {
  const bed = await Testbed.create({ subnet: SUBNET, bridge: opts.bridge ?? true });
  const outside = opts.outside ? await bed.addOutsideClient() : null;
  const bpffs = dirname(pinDirOf(bed));
  mkdirSync(bpffs);
  await run(['mount', '-t', 'bpf', 'bpf', bpffs]);
  const agent = AgentProcess.start(bed, {
    subnet: SUBNET,
    'metrics-listen': METRICS,
    'bpf-pin-dir': pinDirOf(bed),
    ...opts.flags,
  });
  t.teardown(async () => {
    if (!t.passing()) t.comment(diagnostics(agent));
    await agent.cleanup();
    await bed.destroy();
    await run(['umount', bpffs], { check: false });
    rmSync(bpffs, { recursive: true, force: true });
  });
  await agent.ready();
  return { bed, agent, outside };
}

/** The agent's warnings and errors, for a failed test's output. */
function diagnostics(agent: AgentProcess): string {
  const worth = agent.logs.filter((l) => (l.level ?? 0) >= 40 || l.msg === 'bridge up');
  return `agent warnings and errors:\n${worth.map((l) => JSON.stringify(l)).join('\n')}\n${agent.stderr}`;
}

function status(agent: AgentProcess): Promise<AgentStatus> {
  return apiRequest<AgentStatus>(agent.socket, 'GET', '/v1/status');
}

async function waitFor(what: string, pred: () => Promise<boolean>, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One sample of a metric (with the given labels), or NaN when absent. */
async function metric(bed: Testbed, name: string, labels = ''): Promise<number> {
  const r = await run(['curl', '-s', `http://${METRICS}/metrics`], { netns: bed.runnerNs });
  const line = r.stdout.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

/** The IPv4 addresses on the bridge, as `ip/prefix`. */
async function bridgeAddresses(bed: Testbed): Promise<string[]> {
  const r = await bed.ip(['-j', '-4', 'addr', 'show', 'dev', bed.bridge]);
  const links = JSON.parse(r.stdout || '[]') as {
    addr_info: { local: string; prefixlen: number }[];
  }[];
  return links.flatMap((l) => l.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).sort();
}

/** Whether bridgeward's eBPF program is on a port's ingress (TCX link or clsact filter). */
async function observed(bed: Testbed, port: Sandbox): Promise<boolean> {
  const a = await portAttachments(bed, port, pinDirOf(bed));
  return a.tcxProgId !== null || a.clsact > 0;
}

/** The agent's pin dir for a test bed: on a bpffs `runner` mounts where this process sees it. */
function pinDirOf(bed: Testbed): string {
  return join(tmpdir(), `bw-${bed.id}-bpffs`, 'bridgeward');
}

/** Waits for the agent's `bridge up` line for bridge instance `ifindex`. */
function bridgeUp(agent: AgentProcess, ifindex: number): Promise<LogLine> {
  return agent.waitForLog((l) => l.msg === 'bridge up' && l.ifindex === ifindex);
}

async function hairpinOn(bed: Testbed, port: string): Promise<boolean> {
  const r = await bed.ip(['-j', '-d', 'link', 'show', 'dev', port]);
  const info = (
    JSON.parse(r.stdout) as { linkinfo?: { info_slave_data?: { hairpin?: boolean } } }[]
  )[0];
  return info?.linkinfo?.info_slave_data?.hairpin === true;
}

/** `lease allocate` through the CLI; the lease, or the CLI's exit code and stderr. */
async function allocate(
  agent: AgentProcess,
  sandbox: string,
  mac?: string,
): Promise<{ lease: Lease | null; code: number; stderr: string }> {
  const r = await agent.cli([
    'lease',
    'allocate',
    '--sandbox',
    sandbox,
    ...(mac ? ['--mac', mac] : []),
    '-o',
    'json',
  ]);
  return {
    lease: r.code === 0 ? (JSON.parse(r.stdout) as Lease) : null,
    code: r.code ?? -1,
    stderr: r.stderr,
  };
}

t.test(
  'agent first, then the runtime racing it for the gateway: no crash, every instance set up',
  async (t) => {
    const { bed, agent } = await runner(t, { bridge: false });
    const before = await status(agent);
    t.equal(before.bridge.state, 'absent', 'ready and serving while the bridge is missing');
    t.equal(before.bridge.ifindex, null);
    t.equal(before.features.identity, 'waiting for the bridge');
    t.equal(await metric(bed, 'bridgeward_bridge_up'), 0, 'bridgeward_bridge_up 0');
    const early = await allocate(agent, 'early');
    t.not(early.code, 0, 'allocation refused while the bridge is absent');
    t.match(early.stderr, /bridge rt0 is not present/, 'with a clear, retryable reason');
    t.notMatch(early.stderr, /ifindex|errno|ENODEV|No such device/);
    await t.rejects(
      apiRequest(agent.socket, 'POST', '/v1/leases', { sandbox: 'early' }),
      { code: 'BRIDGE_ABSENT' },
      'the API answers BRIDGE_ABSENT (503)',
    );
    t.same(await apiRequest(agent.socket, 'GET', '/v1/leases'), [], 'reads are served');

    const ifindexes: number[] = [];
    for (let cycle = 1; cycle <= 4; cycle++) {
      await bed.createBridgeAsRuntime();
      const ifindex = await bed.bridgeIfindex();
      ifindexes.push(ifindex);
      await bridgeUp(agent, ifindex);
      t.same(await bridgeAddresses(bed), [`${GATEWAY}/24`], `cycle ${cycle}: the gateway once`);
      const s = await status(agent);
      t.match(s.bridge, { state: 'present', ifindex }, `cycle ${cycle}: status shows ifindex`);
      const got = await allocate(agent, `app-${cycle}`);
      t.equal(got.code, 0, `cycle ${cycle}: allocation works on the new bridge`);
      await bed.deleteBridge();
      await waitFor(
        'the bridge gone in status',
        async () => (await status(agent)).bridge.state === 'absent',
      );
    }
    t.equal(new Set(ifindexes).size, 4, 'every cycle was a new bridge instance');
    t.equal(agent.logs.filter((l) => l.msg === 'ready').length, 1, 'one process all along');
    t.notOk(
      agent.logs.some(
        (l) => (l.level ?? 0) >= 50 && l.msg !== undefined && /set-up step failed/.test(l.msg),
      ),
      'no set-up step failed',
    );
    t.equal(await metric(bed, 'bridgeward_bridge_up'), 0);
    const leases = await apiRequest<Lease[]>(agent.socket, 'GET', '/v1/leases');
    t.same(
      leases.map((l) => l.sandbox).sort(),
      ['app-1', 'app-2', 'app-3', 'app-4'],
      'leases kept',
    );
  },
);

t.test(
  'a removed gateway address is restored and counted; another prefix is left, reported once',
  async (t) => {
    const { bed, agent } = await runner(t);
    await bed.ip(['addr', 'del', `${GATEWAY}/24`, 'dev', 'rt0']);
    await waitFor('the gateway back', async () =>
      (await bridgeAddresses(bed)).includes(`${GATEWAY}/24`),
    );
    t.equal(
      await metric(bed, 'bridgeward_drift_repairs_total', '{object="gateway-address"}'),
      1,
      'counted as a drift repair',
    );
    await agent.waitForLog((l) => /was removed from rt0; restored/.test(l.msg ?? ''));

    // Someone wants the gateway as /16 (and briefly /20): the agent reports it and leaves it.
    await bed.ip(['addr', 'add', `${GATEWAY}/16`, 'dev', 'rt0']);
    await bed.ip(['addr', 'add', `${GATEWAY}/20`, 'dev', 'rt0']);
    await bed.ip(['addr', 'del', `${GATEWAY}/24`, 'dev', 'rt0']);
    const warned = await agent.waitForLog((l) => /not \/24 as configured/.test(l.msg ?? ''));
    t.match(warned, { found: 16, configured: 24 });
    await bed.ip(['addr', 'del', `${GATEWAY}/20`, 'dev', 'rt0']);
    // The agent has seen both deletions once its next repair of the /16's removal has run.
    await bed.ip(['addr', 'del', `${GATEWAY}/16`, 'dev', 'rt0']);
    await waitFor('the /24 back', async () =>
      (await bridgeAddresses(bed)).includes(`${GATEWAY}/24`),
    );
    t.same(await bridgeAddresses(bed), [`${GATEWAY}/24`]);
    t.equal(
      agent.logs.filter((l) => /not \/24 as configured/.test(l.msg ?? '')).length,
      1,
      'reported once while it stayed',
    );
    t.equal(await metric(bed, 'bridgeward_drift_repairs_total', '{object="gateway-address"}'), 2);
  },
);

t.test(
  'the bridge recreated while the agent runs: back on the new one, nothing lost',
  async (t) => {
    const { bed, agent, outside } = await runner(t, {
      outside: true,
      flags: { 'sweep-seconds': '3600' }, // only the lifecycle's events can set things up again
    });
    const a = await bed.addSandbox();
    const b = await bed.addSandbox();
    const la = (await allocate(agent, 'app-a', a.mac)).lease as Lease;
    const lb = (await allocate(agent, 'app-b', b.mac)).lease as Lease;
    await bed.setSandboxIp(a.netns, la.ip);
    await bed.setSandboxIp(b.netns, lb.ip);
    const srv = await NameServer.start(a.netns, 'tcp', 8080, 'app-a');
    t.teardown(() => srv.stop());
    await agent.addPort('app-a', 'tcp', 6667, 8080);
    const oldIfindex = await bed.bridgeIfindex();
    const oldMac = (await status(agent)).bridge.mac;
    await waitFor('eBPF on the ports', async () => (await observed(bed, a)) && observed(bed, b));

    await bed.deleteBridge();
    await waitFor('absent in status', async () => (await status(agent)).bridge.state === 'absent');
    t.equal(await metric(bed, 'bridgeward_bridge_up'), 0, 'bridge_up 0');
    await waitFor('filters detached from the former ports', async () => !(await observed(bed, a)));
    t.notOk(await observed(bed, b), 'on every former port');
    const refused = await allocate(agent, 'app-c');
    t.match(refused.stderr, /bridge rt0 is not present/, 'allocation: bridge rt0 is not present');
    const kept = await apiRequest<Lease[]>(agent.socket, 'GET', '/v1/leases');
    t.same(
      kept.map((l) => [l.sandbox, l.ip, l.generation]),
      [
        ['app-a', la.ip, la.generation],
        ['app-b', lb.ip, lb.generation],
      ],
      'leases kept, reads served',
    );
    t.equal((await agent.json<unknown[]>(['port', 'list'])).length, 1, 'node ports kept');

    await bed.createBridgeAsRuntime();
    const newIfindex = await bed.bridgeIfindex();
    t.not(newIfindex, oldIfindex, 'a new bridge instance');
    await bed.detachSandbox(a);
    await bed.detachSandbox(b);
    const a2 = await bed.reattachSandbox(a, la.ip);
    const b2 = await bed.reattachSandbox(b, lb.ip);
    await bridgeUp(agent, newIfindex);
    const s = await status(agent);
    t.match(s.bridge, { state: 'present', ifindex: newIfindex }, 'status shows the new ifindex');
    t.not(s.bridge.mac, null);
    t.comment(`bridge MAC ${oldMac} -> ${s.bridge.mac}`);
    t.equal(await metric(bed, 'bridgeward_bridge_up'), 1, 'bridge_up 1');
    t.same(await bridgeAddresses(bed), [`${GATEWAY}/24`], 'the gateway on the new bridge');
    const localnet = await run(['sysctl', '-n', 'net.ipv4.conf.rt0.route_localnet'], {
      netns: bed.runnerNs,
    });
    t.equal(localnet.stdout.trim(), '1', 'route_localnet on the new bridge');
    await waitFor(
      'eBPF on the new ports',
      async () => (await observed(bed, a2)) && observed(bed, b2),
    );
    const c = await bed.addSandbox();
    await waitFor('eBPF on a later port', () => observed(bed, c));
    const lc = (await allocate(agent, 'app-c', c.mac)).lease;
    t.ok(lc && lc.ip !== la.ip && lc.ip !== lb.ip, `allocation works again (${lc?.ip})`);

    for (const sb of [a2, b2])
      await bed.exec(sb.netns, ['ping', '-c1', '-W1', GATEWAY], { check: false });
    t.equal(
      await askName(bed.runnerNs, 'tcp', '127.0.0.1', 6667),
      'app-a',
      'node port from localhost',
    );
    t.equal(
      await askName(
        (outside as OutsideClient).netns,
        'tcp',
        (outside as OutsideClient).runnerIp,
        6667,
      ),
      'app-a',
      'from outside',
    );
    await waitFor('hairpin on the new port', () => hairpinOn(bed, a2.hostIf));
    t.equal(
      await askName(a2.netns, 'tcp', (outside as OutsideClient).runnerIp, 6667),
      'app-a',
      'hairpin',
    );
  },
);

t.test(
  'a veth taking the name, a rename away and back: a clear status, never a crash',
  async (t) => {
    const bed = await Testbed.create({ subnet: SUBNET, bridge: false });
    await bed.ip(['link', 'add', 'rt0', 'type', 'veth', 'peer', 'name', 'rt0peer']);
    const agent = AgentProcess.start(bed, { subnet: SUBNET });
    t.teardown(async () => {
      await agent.cleanup();
      await bed.destroy();
    });
    await agent.ready();
    const veth = await status(agent);
    t.match(veth.bridge, {
      state: 'not-a-bridge',
      detail: 'rt0 exists but is a veth link, not a bridge',
    });
    t.match((await allocate(agent, 'x')).stderr, /rt0 exists but is a veth link, not a bridge/);
    await bed.ip(['link', 'del', 'rt0']);
    await bed.createBridge();
    const first = await bed.bridgeIfindex();
    await bridgeUp(agent, first);
    await bed.ip(['link', 'set', 'rt0', 'name', 'rt0old']);
    await waitFor('renamed away', async () => (await status(agent)).bridge.state === 'absent');
    t.match((await status(agent)).bridge, {
      detail: 'bridge rt0 is not present (renamed to rt0old)',
    });
    await bed.ip(['link', 'set', 'rt0old', 'name', 'rt0']);
    await waitFor('back', async () => (await status(agent)).bridge.state === 'present');
    t.equal((await status(agent)).bridge.ifindex, first, 'the same link, followed by name');
    await waitFor(
      'set up again',
      async () => agent.logs.filter((l) => l.msg === 'bridge up').length === 2,
    );
    t.equal(agent.logs.filter((l) => l.msg === 'ready').length, 1, 'one process all along');
  },
);

t.test(
  'hairpin follows bindings: a sandbox reaches its own node port after its first frame',
  async (t) => {
    const { bed, agent, outside } = await runner(t, {
      outside: true,
      flags: { 'sweep-seconds': '3600' },
    });
    const sb = await bed.addSandbox();
    const lease = (await allocate(agent, 'app-h')).lease as Lease; // no MAC given: unknown until it talks
    await bed.setSandboxIp(sb.netns, lease.ip);
    const srv = await NameServer.start(sb.netns, 'tcp', 8080, 'app-h');
    t.teardown(() => srv.stop());
    await agent.addPort('app-h', 'tcp', 6667, 8080);
    t.notOk(await hairpinOn(bed, sb.hostIf), 'its port is not known at add time');
    const t0 = Date.now();
    await bed.exec(sb.netns, ['arping', '-c1', '-w1', '-I', 'eth0', GATEWAY], { check: false });
    await waitFor('hairpin after the first frame', () => hairpinOn(bed, sb.hostIf));
    t.comment(`hairpin on ${Date.now() - t0} ms after the first frame was sent (target 200 ms)`);
    t.equal(
      await askName(sb.netns, 'tcp', (outside as OutsideClient).runnerIp, 6667),
      'app-h',
      'the sandbox reaches its own node port',
    );
  },
);

/** Registers an identity for a sandbox; returns its secret. */
async function register(agent: AgentProcess, sandbox: string): Promise<string> {
  const reg = await agent.json<{ secret: string }>([
    'identity',
    'register',
    '--sandbox',
    sandbox,
    '--app',
    sandbox,
  ]);
  return reg.secret;
}

/** A token request from inside a sandbox; the HTTP status. */
async function tokenStatus(bed: Testbed, sb: Sandbox, secret: string): Promise<number> {
  const r = await bed.exec(
    sb.netns,
    [
      'curl',
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--max-time',
      '5',
      '-H',
      `authorization: Bearer ${secret}`,
      `http://${GATEWAY}:7123/v1/token`,
    ],
    { check: false },
  );
  return Number(r.stdout);
}

t.test(
  'runtime-restart replay: the bridge and every veth gone, sandboxes back on new veths',
  async (t) => {
    const { bed, agent, outside } = await runner(t, { outside: true });
    const out = outside as OutsideClient;
    // A runner at work: four leased sandboxes, a node port on A, identities for A and C.
    const sbs: Sandbox[] = [];
    const leases: Lease[] = [];
    for (const id of ['a', 'b', 'c', 'd']) {
      const sb = await bed.addSandbox();
      const l = (await allocate(agent, `app-${id}`, sb.mac)).lease as Lease;
      await bed.setSandboxIp(sb.netns, l.ip);
      await bed.exec(sb.netns, ['ping', '-c1', '-W1', GATEWAY], { check: false });
      sbs.push(sb);
      leases.push(l);
    }
    const [a, b, c] = sbs as [Sandbox, Sandbox, Sandbox, Sandbox];
    const [la, lb, lc, ld] = leases as [Lease, Lease, Lease, Lease];
    const srv = await NameServer.start(a.netns, 'tcp', 8080, 'app-a');
    t.teardown(() => srv.stop());
    await agent.addPort('app-a', 'tcp', 6667, 8080);
    const secretA = await register(agent, 'app-a');
    const secretC = await register(agent, 'app-c');
    t.equal(await tokenStatus(bed, a, secretA), 200, 'A has a token before');
    await waitFor('ports bound to the leases', async () =>
      (await apiRequest<Lease[]>(agent.socket, 'GET', '/v1/leases')).every(
        (l) => l.ifindex !== null,
      ),
    );
    const oldIfindex = await bed.bridgeIfindex();

    // The runtime restarts: its bridge and every veth are deleted ...
    for (const sb of sbs) await bed.detachSandbox(sb);
    await bed.deleteBridge();
    // ... and it sets up again: a new rt0, the gateway assigned while the agent assigns it too,
    // A, B and C re-attached on new veths with their MACs and addresses, D never coming back, and
    // a rogue sandbox configured with B's address.
    await bed.createBridgeAsRuntime();
    const newIfindex = await bed.bridgeIfindex();
    const a2 = await bed.reattachSandbox(a, la.ip);
    const b2 = await bed.reattachSandbox(b, lb.ip);
    const c2 = await bed.reattachSandbox(c, lc.ip);
    const rogue = await bed.addSandbox({ ip: lb.ip });
    await bridgeUp(agent, newIfindex);
    for (const sb of [a2, b2, c2])
      await bed.exec(sb.netns, ['ping', '-c2', '-i0.2', '-W1', GATEWAY], { check: false });
    await bed.exec(rogue.netns, ['arping', '-c2', '-w2', '-I', 'eth0', GATEWAY], { check: false });

    const dup = await waitForFinding(agent, (f) => f.kind === 'duplicate-ip' && f.ip === lb.ip);
    t.ok(
      dup.macs.includes(rogue.mac) && dup.macs.includes(b.mac),
      'the rogue is found as duplicate-ip',
    );
    const fresh: string[] = [];
    for (let i = 0; i < 3; i++) {
      const sb = await bed.addSandbox();
      const l = (await allocate(agent, `new-${i}`, sb.mac)).lease as Lease;
      fresh.push(l.ip);
    }
    const leased = new Set([la.ip, lb.ip, lc.ip, ld.ip]);
    t.notOk(
      fresh.some((ip) => leased.has(ip)),
      `no address handed out twice (${fresh.join(', ')})`,
    );
    t.equal(new Set(fresh).size, 3);

    t.equal(
      await askName(bed.runnerNs, 'tcp', '127.0.0.1', 6667),
      'app-a',
      'node port from localhost',
    );
    t.equal(await askName(out.netns, 'tcp', out.runnerIp, 6667), 'app-a', 'from outside');
    await waitFor('hairpin on the new port', () => hairpinOn(bed, a2.hostIf));
    t.equal(await askName(a2.netns, 'tcp', out.runnerIp, 6667), 'app-a', 'hairpin');
    t.equal(await tokenStatus(bed, a2, secretA), 200, "A's token still works");
    t.equal(await tokenStatus(bed, c2, secretC), 200, "C's too");

    const about = (
      await apiRequest<{ ip: string; kind: string }[]>(agent.socket, 'GET', '/v1/conflicts?all=1')
    ).filter((f) => f.ip === la.ip || f.ip === lc.ip);
    t.same(about, [], 'no finding about the re-attached sandboxes themselves');
    const s = await status(agent);
    t.match(s.bridge, { state: 'present', ifindex: newIfindex });
    t.not(newIfindex, oldIfindex);
    const now = await apiRequest<Lease[]>(agent.socket, 'GET', '/v1/leases');
    t.match(
      now.find((l) => l.sandbox === 'app-a'),
      { ip: la.ip, generation: la.generation, mac: a.mac, ifindex: a2.hostIfindex },
      'A keeps its lease, bound to its new port',
    );
    t.match(
      now.find((l) => l.sandbox === 'app-d'),
      { ip: ld.ip, ifindex: null },
      'D keeps its lease; its port is gone',
    );
  },
);

/** Polls the agent until a finding matches; on timeout, fails naming the findings it saw. */
async function waitForFinding(
  agent: AgentProcess,
  pred: (f: Finding) => boolean,
): Promise<Finding> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const all = await apiRequest<Finding[]>(agent.socket, 'GET', '/v1/conflicts');
    const hit = all.find(pred);
    if (hit) return hit;
    if (Date.now() > deadline) {
      throw new Error(`no matching finding; active: ${JSON.stringify(all.map((f) => f.id))}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
