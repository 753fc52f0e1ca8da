// Issue 4 end to end: real namespaces, a real rt0, real ARP; the agent detects conflicts, shows
// them through `conflicts`/`watch`, and quarantines addresses in its store.
import t, { type Test } from 'tap';
import { Testbed, type Sandbox } from '../../src/testbed/testbed.js';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { AgentProcess, BIN } from '../../src/testbed/agent-process.js';
import { apiRequest } from '../../src/api/client.js';
import type { Finding } from '../../src/detect/finding.js';
import { openStore } from '../../src/store/open.js';
import { createLogger } from '../../src/log.js';
import type { Quarantine } from '../../src/store/types.js';
import { FRESH_FOR_MS } from '../../src/ipam/probed-candidates.js';

const SUBNET = '10.8.64.0/24';

async function findings(agent: AgentProcess, all = false): Promise<Finding[]> {
  return apiRequest<Finding[]>(agent.socket, 'GET', all ? '/v1/conflicts?all=1' : '/v1/conflicts');
}

/** Polls the agent until a finding matches; returns it. */
async function waitForFinding(
  agent: AgentProcess,
  pred: (f: Finding) => boolean,
  timeoutMs = 15_000,
): Promise<Finding> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hit = (await findings(agent)).find(pred);
    if (hit) return hit;
    if (Date.now() > deadline) {
      throw new Error(`no matching finding; have ${JSON.stringify(await findings(agent))}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The agent's quarantine records, read from its SQLite file (the agent must be stopped). */
async function storedQuarantine(agent: AgentProcess): Promise<readonly Quarantine[]> {
  const store = await openStore(
    { store: { kind: 'sqlite' }, stateDir: agent.stateDir },
    createLogger('silent'),
  );
  try {
    return (await store.snapshot()).quarantine;
  } finally {
    await store.close();
  }
}

/** A MAC unique to this test bed (so leases can name it before the sandbox exists). */
function macFor(bed: Testbed, n: number): string {
  const id = bed.id;
  return `02:aa:${id.slice(0, 2)}:${id.slice(2, 4)}:${id.slice(4, 6)}:${n.toString(16).padStart(2, '0')}`;
}

async function ping(bed: Testbed, s: Sandbox, count = 2): Promise<void> {
  await bed.exec(s.netns, ['ping', '-c', String(count), '-i', '0.2', '-W', '1', bed.gateway], {
    check: false,
  });
}

async function startAgent(t: Test, extra: Record<string, string> = {}, subnet = SUBNET) {
  const bed = await Testbed.create({ subnet });
  const agent = AgentProcess.start(bed, { subnet, ...extra });
  t.teardown(async () => {
    await agent.cleanup();
    await bed.destroy();
  });
  await agent.ready();
  return { bed, agent };
}

t.test(
  'two sandboxes with the same IP talking to the gateway: duplicate-ip, quarantined',
  async (t) => {
    const { bed, agent } = await startAgent(t);
    const a = await bed.addSandbox({ ip: '10.8.64.2' });
    const b = await bed.addSandbox({ ip: '10.8.64.2' });
    await ping(bed, a);
    await new Promise((r) => setTimeout(r, 1200)); // past the neighbour table's locktime
    await ping(bed, b);
    const dup = await waitForFinding(
      agent,
      (f) => f.kind === 'duplicate-ip' && f.ip === '10.8.64.2',
    );
    t.same(dup.macs, [a.mac, b.mac].sort(), 'both MACs');
    t.same(dup.ports, [a.hostIf, b.hostIf].sort(), 'both veth ports');
    t.same(
      dup.ifindexes,
      [a.hostIfindex, b.hostIfindex].sort((x, y) => x - y),
    );
    t.equal(dup.state, 'active');
    t.ok(Date.parse(dup.firstSeen) <= Date.parse(dup.lastSeen));
    const json = await agent.json<Finding[]>(['conflicts']);
    const viaCli = json.find((f) => f.kind === 'duplicate-ip');
    for (const key of ['kind', 'ip', 'macs', 'ports', 'sandboxes', 'firstSeen', 'lastSeen']) {
      t.ok(viaCli && key in viaCli, `conflicts -o json has ${key}`);
    }
    t.ok(
      viaCli?.macs.every((m) => /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(m)),
      'MACs lowercase, colon-separated',
    );
    const table = await agent.cli(['conflicts']);
    t.match(
      table.stdout,
      /^KIND\s+IP\s+MACS\s+PORTS\s+SANDBOXES\s+FIRST-SEEN\s+LAST-SEEN\s+STATE$/m,
    );
    t.match(table.stdout, /duplicate-ip\s+10\.8\.64\.2/);
    await agent.waitForLog((l) => l.msg === '10.8.64.2 quarantined (duplicate-ip)');
    const err = agent.logs.find(
      (l) =>
        typeof l.msg === 'string' && l.msg.startsWith('conflict raised: duplicate-ip 10.8.64.2'),
    );
    t.equal(err?.level, 50, 'an error line with the evidence');
    t.same((err?.finding as Finding).macs, dup.macs);
    t.equal((await agent.stop()).code, 0);
    const q = (await storedQuarantine(agent)).find((r) => r.ip === '10.8.64.2');
    t.equal(q?.reason, 'duplicate-ip', 'quarantined in the lease store');
    t.same(q?.evidence.macs, dup.macs);
  },
);

t.test('a silent sandbox answering ARP is found by the probe before allocation', async (t) => {
  const { bed, agent } = await startAgent(t);
  const silent = await bed.addSandbox({ ip: '10.8.64.2' }); // never speaks first
  // A probe vouches for an address for a while: wait past the one the agent ran before .2 was taken.
  await new Promise((r) => setTimeout(r, FRESH_FOR_MS + 500));
  const lease = await agent.json<{ ip: string }>(['lease', 'allocate', '--sandbox', 'app-x']);
  t.not(lease.ip, '10.8.64.2', 'the address someone answers on is not handed out');
  const f = await waitForFinding(agent, (x) => x.ip === '10.8.64.2' && x.kind === 'unleased-claim');
  t.same(f.macs, [silent.mac]);
  t.same(f.ports, [silent.hostIf]);
  t.ok(f.sources.includes('probe'), `sources ${f.sources.join(',')}`);
  const q = await agent.json<{ ip: string; reason: string }[]>(['quarantine', 'list']);
  t.ok(
    q.some((r) => r.ip === '10.8.64.2'),
    'quarantined',
  );
  const answers = await agent.json<{ mac: string; port: string | null }[]>([
    'probe',
    '--ip',
    '10.8.64.2',
  ]);
  t.same(
    answers.map((a) => [a.mac, a.port]),
    [[silent.mac, silent.hostIf]],
    'probe --ip lists the MAC that answered, with its port',
  );
  t.same(await agent.json(['probe', '--ip', '10.8.64.77']), [], 'nobody answers a free address');
});

t.test('a silent duplicate of a leased address is found by the probe at boot', async (t) => {
  const { bed, agent } = await startAgent(t);
  const macL = macFor(bed, 1);
  const lease = await agent.json<{ ip: string }>([
    'lease',
    'allocate',
    '--sandbox',
    'app-l',
    '--mac',
    macL,
  ]);
  const leased = await bed.addSandbox({ ip: lease.ip, mac: macL });
  t.equal((await agent.stop()).code, 0);
  const silent = await bed.addSandbox({ ip: lease.ip }); // joins while the agent is down
  const again = AgentProcess.start(bed, { subnet: SUBNET }, agent);
  t.teardown(() => again.cleanup());
  await again.ready();
  // The probe's answers reach the eBPF observer at once and the prober when its window ends.
  const dup = await waitForFinding(
    again,
    (f) => f.kind === 'duplicate-ip' && f.ip === lease.ip && f.sources.includes('probe'),
  );
  t.same(dup.macs, [leased.mac, silent.mac].sort());
  t.same(dup.ports, [leased.hostIf, silent.hostIf].sort());
  t.same(dup.sandboxes, ['app-l']);
  t.ok(dup.sources.includes('probe'), `found by the boot probe (sources ${dup.sources.join(',')})`);
  const mismatch = await waitForFinding(again, (f) => f.kind === 'lease-mismatch');
  t.same(mismatch.macs, [silent.mac], 'the impostor is the one without the lease');
});

t.test('a sandbox claiming the gateway address: gateway-claim', async (t) => {
  const { bed, agent } = await startAgent(t);
  const watch = spawn(process.execPath, [BIN, 'watch', '-o', 'json', '--socket', agent.socket], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => void watch.kill());
  const watched: { event: string; finding: Finding }[] = [];
  const gotRaised = new Promise<void>((resolve) =>
    createInterface({ input: watch.stdout }).on('line', (line) => {
      watched.push(JSON.parse(line) as { event: string; finding: Finding });
      if (watched.some((w) => w.finding.kind === 'gateway-claim')) resolve();
    }),
  );
  const watchExit = new Promise<number | null>((r) => watch.on('exit', r));
  const rogue = await bed.addSandbox({ ip: bed.gateway });
  await bed.exec(rogue.netns, ['arping', '-q', '-U', '-c', '2', '-I', 'eth0', bed.gateway], {
    check: false,
  });
  const f = await waitForFinding(agent, (x) => x.kind === 'gateway-claim');
  t.equal(f.ip, bed.gateway);
  t.same(f.macs, [rogue.mac], 'only the rogue MAC, never the host');
  t.same(f.ports, [rogue.hostIf]);
  const all = await findings(agent);
  t.same(
    all.map((x) => x.kind).filter((k) => k !== 'spoof-attempt'),
    ['gateway-claim'],
    'no other conflict',
  );
  const spoof = await waitForFinding(
    agent,
    (x) => x.kind === 'spoof-attempt' && x.ip === bed.gateway,
  );
  t.match(spoof, { ip: bed.gateway, ports: [rogue.hostIf], spoof: { mode: 'monitor' } });
  await gotRaised;
  const claims = watched.filter((w) => w.finding.kind === 'gateway-claim');
  // `raised` when watch connected first, else the `active` replay on connect.
  t.match(claims[0]?.event, /^(raised|active)$/);
  t.same(
    claims.map((w) => [w.finding.kind, w.finding.macs]),
    [['gateway-claim', [rogue.mac]]],
    'bridgeward watch streamed it',
  );
  const stopped = await agent.stop();
  t.equal(stopped.code, 0);
  t.ok(stopped.ms < 2000, `the agent stops in ${stopped.ms} ms with a watcher attached`);
  t.equal(await watchExit, 0, 'watch ends when the agent goes away');
});

t.test(
  'handover: released, namespace gone, a new sandbox gets the address: no finding',
  async (t) => {
    // A /30 has one allocatable address, so the new sandbox must get the same one.
    const subnet = '10.8.64.0/30';
    const { bed, agent } = await startAgent(t, { 'cooldown-seconds': '0' }, subnet);
    // Let the host's neighbour entry for the old sandbox go stale within seconds, not ~30 s.
    await bed.exec(bed.runnerNs, [
      'sysctl',
      '-qw',
      'net.ipv4.neigh.rt0.base_reachable_time_ms=1000',
    ]);
    const macOld = macFor(bed, 1);
    const macNew = macFor(bed, 2);
    const first = await agent.json<{ ip: string }>([
      'lease',
      'allocate',
      '--sandbox',
      'old',
      '--mac',
      macOld,
    ]);
    t.equal(first.ip, '10.8.64.2');
    const old = await bed.addSandbox({ ip: first.ip, mac: macOld });
    await ping(bed, old, 3);
    await bed.removeSandbox(old);
    await agent.json(['lease', 'release', '--sandbox', 'old']);
    let second: { ip: string } | null = null;
    const deadline = Date.now() + 60_000;
    while (!second) {
      const r = await agent.cli([
        'lease',
        'allocate',
        '--sandbox',
        'new',
        '--mac',
        macNew,
        '-o',
        'json',
      ]);
      if (r.code === 0) second = JSON.parse(r.stdout) as { ip: string };
      else if (Date.now() > deadline) throw new Error(`allocation kept failing: ${r.stderr}`);
      else await new Promise((res) => setTimeout(res, 500));
    }
    t.equal(second.ip, '10.8.64.2', 'the new owner has the same address');
    const fresh = await bed.addSandbox({ ip: second.ip, mac: macNew });
    await ping(bed, fresh, 3);
    await bed.exec(fresh.netns, ['arping', '-q', '-U', '-c', '2', '-I', 'eth0', second.ip], {
      check: false,
    });
    await new Promise((r) => setTimeout(r, 1500)); // several detector ticks
    t.same(await findings(agent, true), [], 'no finding, active or cleared');
  },
);

t.test(
  'malformed and random frames from a sandbox: the agent stays up and counts them',
  async (t) => {
    const { bed, agent } = await startAgent(t, { 'metrics-listen': '127.0.0.1:9464' });
    const noisy = await bed.addSandbox({ ip: '10.8.64.9' });
    const script = `
import os, random, socket
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
src = bytes.fromhex("${noisy.mac.replace(/:/g, '')}")
bc = b"\\xff" * 6
random.seed(4)
for i in range(4000):
    k = i % 5
    if k == 0:   # ARP cut short
        f = bc + src + b"\\x08\\x06" + os.urandom(random.randint(0, 27))
    elif k == 1: # ARP with a wrong hardware type
        f = bc + src + b"\\x08\\x06\\x00\\x06\\x08\\x00\\x06\\x04\\x00\\x01" + os.urandom(20)
    elif k == 2: # VLAN-tagged ARP, truncated
        f = bc + src + b"\\x81\\x00\\x00\\x05\\x08\\x06" + os.urandom(8)
    elif k == 3: # ARP with an impossible (multicast) sender MAC
        f = bc + src + b"\\x08\\x06\\x00\\x01\\x08\\x00\\x06\\x04\\x00\\x02\\x01\\x00\\x5e\\x00\\x00\\x01" + os.urandom(18)
    else:        # random bytes
        f = os.urandom(random.randint(14, 300))
    s.send(f)
`;
    const sent = await bed.exec(noisy.netns, ['python3', '-c', script], { check: false });
    t.equal(sent.code, 0, sent.stderr);
    const status = await agent.json<{ bridge: { name: string } }>(['status']);
    t.equal(status.bridge.name, 'rt0', 'the agent still answers');
    let malformed = 0;
    const deadline = Date.now() + 20_000;
    while (malformed === 0 && Date.now() < deadline) {
      const m = await bed.exec(bed.runnerNs, ['curl', '-s', 'http://127.0.0.1:9464/metrics'], {
        check: false,
      });
      malformed = Number(
        /^bridgeward_malformed_frames_total\{source="bpf"\} (\d+)/m.exec(m.stdout)?.[1] ?? 0,
      );
      if (malformed === 0) await new Promise((r) => setTimeout(r, 500));
    }
    t.ok(malformed >= 2400, `counted ${malformed} malformed frames`);
    t.equal(agent.logs.filter((l) => (l.level ?? 0) >= 60).length, 0, 'no fatal log line');
    t.same(
      (await findings(agent)).filter(
        (f) => f.macs.includes(noisy.mac) && f.kind !== 'spoof-attempt',
      ),
      [],
      'malformed frames raise no conflict (the guard reports the port as a spoof attempt)',
    );
    t.equal((await agent.stop()).code, 0, 'and stops cleanly');
  },
);

t.test('--webhook: every finding change is POSTed to the operator', async (t) => {
  const bed = await Testbed.create({ subnet: SUBNET });
  t.teardown(() => bed.destroy());
  // The receiver runs in the runner namespace, where the agent's 127.0.0.1 is.
  const receiver = spawn(
    'ip',
    [
      'netns',
      'exec',
      bed.runnerNs,
      process.execPath,
      '-e',
      `require('node:http').createServer((req, res) => { let b = ''; req.on('data', (c) => (b += c));
         req.on('end', () => { process.stdout.write(b + '\\n'); res.end(); }); })
         .listen(18080, '127.0.0.1', () => process.stdout.write('listening\\n'));`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.teardown(() => void receiver.kill());
  const bodies: { event: string; finding: Finding }[] = [];
  let onLine: () => void = () => {};
  createInterface({ input: receiver.stdout }).on('line', (line) => {
    if (line !== 'listening') bodies.push(JSON.parse(line) as { event: string; finding: Finding });
    onLine();
  });
  await new Promise<void>((r) => (onLine = r));
  const agent = AgentProcess.start(bed, { subnet: SUBNET, webhook: 'http://127.0.0.1:18080/hook' });
  t.teardown(() => agent.cleanup());
  await agent.ready();
  const rogue = await bed.addSandbox({ ip: bed.gateway });
  await bed.exec(rogue.netns, ['arping', '-q', '-U', '-c', '2', '-I', 'eth0', bed.gateway], {
    check: false,
  });
  const claims = () => bodies.filter((b) => b.finding.kind === 'gateway-claim');
  await new Promise<void>((r) => {
    onLine = () => claims().length > 0 && r();
    onLine();
  });
  t.equal(claims()[0]?.event, 'raised');
  t.same(claims()[0]?.finding.macs, [rogue.mac]);
});

t.test(
  'a finding clears after the hold-down, lifts its quarantine, and stays in the history',
  async (t) => {
    const { bed, agent } = await startAgent(t, { 'hold-down-seconds': '1' });
    const squatter = await bed.addSandbox({ ip: '10.8.64.9' });
    await bed.exec(squatter.netns, ['arping', '-q', '-U', '-c', '2', '-I', 'eth0', '10.8.64.9'], {
      check: false,
    });
    const f = await waitForFinding(
      agent,
      (x) => x.kind === 'unleased-claim' && x.ip === '10.8.64.9',
    );
    await agent.waitForLog((l) => l.msg === '10.8.64.9 quarantined (unleased-claim)');
    await bed.removeSandbox(squatter); // the conflict is gone with its port
    const deadline = Date.now() + 15_000;
    while ((await findings(agent)).length > 0) {
      if (Date.now() > deadline) throw new Error('the finding did not clear');
      await new Promise((r) => setTimeout(r, 200));
    }
    const all = (await findings(agent, true)).filter((x) => x.kind !== 'spoof-attempt');
    t.same(
      all.map((x) => [x.id, x.state]),
      [[f.id, 'cleared']],
      'conflicts --all keeps the cleared finding',
    );
    t.ok(all[0]?.clearedAt, 'with the time it cleared');
    await agent.waitForLog(
      (l) => l.msg === '10.8.64.9 released from quarantine (unleased-claim cleared)',
    );
    const q = await agent.json<{ ip: string }[]>(['quarantine', 'list']);
    t.notOk(
      q.some((r) => r.ip === '10.8.64.9'),
      'quarantine lifted',
    );
    const history = await agent.json<
      { kind: string; detail: { event?: string; finding?: string } }[]
    >(['lease', 'history', '--ip', '10.8.64.9']);
    t.same(
      history
        .filter((e) => e.kind === 'finding' && e.detail.finding === 'unleased-claim')
        .map((e) => [e.detail.event, e.detail.finding]),
      [
        ['raised', 'unleased-claim'],
        ['cleared', 'unleased-claim'],
      ],
      'the history keeps both',
    );
  },
);
