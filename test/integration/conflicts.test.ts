// Issue 4 end to end: real namespaces, a real rt0, real ARP; the agent detects conflicts, shows
// them through `conflicts`/`watch`, and quarantines addresses in its store.
import t, { type Test } from 'tap';
import { Testbed, type Sandbox } from '../../src/testbed/testbed.js';
import { AgentProcess } from '../../src/testbed/agent-process.js';
import { apiRequest } from '../../src/api/client.js';
import type { Finding } from '../../src/detect/finding.js';
import { openStore } from '../../src/store/open.js';
import { createLogger } from '../../src/log.js';
import type { Quarantine } from '../../src/store/types.js';

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

async function ping(bed: Testbed, s: Sandbox, count = 2): Promise<void> {
  await bed.exec(s.netns, ['ping', '-c', String(count), '-i', '0.2', '-W', '1', bed.gateway], {
    check: false,
  });
}

async function startAgent(t: Test, extra: Record<string, string> = {}) {
  const bed = await Testbed.create({ subnet: SUBNET });
  const agent = AgentProcess.start(bed, { subnet: SUBNET, ...extra });
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
