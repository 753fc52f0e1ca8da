/**
 * `bridgeward demo`: builds a throw-away runner namespace with a real `rt0` bridge and sandbox
 * namespaces, runs the agent there on the embedded SQLite store, shows it working, and removes
 * everything again (also on failure or Ctrl-C).
 */
import { AgentProcess } from '../testbed/agent-process.js';
import { NameServer, askName } from '../testbed/name-server.js';
import { Testbed, type Sandbox } from '../testbed/testbed.js';
import { parseVerbArgs } from './args.js';
import type { Verb } from './verb.js';

const say = (text: string) => process.stdout.write(`${text}\n`);

/** Leases: each sandbox gets an address from the agent and configures it. */
async function demoLeases(
  bed: Testbed,
  agent: AgentProcess,
  sbs: readonly Sandbox[],
): Promise<string[]> {
  say('== leases: app-1 and app-2 ask the agent for addresses (durable, never handed out twice)');
  const ips: string[] = [];
  for (const [i, sb] of sbs.entries()) {
    const lease = await agent.json<{ ip: string }>([
      'lease',
      'allocate',
      '--sandbox',
      `app-${i + 1}`,
      '--mac',
      sb.mac,
    ]);
    await bed.setSandboxIp(sb.netns, lease.ip);
    await bed.exec(sb.netns, ['ping', '-c1', '-W1', bed.gateway], { check: false });
    ips.push(lease.ip);
  }
  say((await agent.cli(['lease', 'list'])).stdout.trimEnd());
  return ips;
}

/** Node ports: a server in the sandbox, a port, and traffic from three sides. */
async function demoNodePort(bed: Testbed, agent: AgentProcess, sb: Sandbox): Promise<void> {
  say('== node port: a tiny server in app-1, tcp 6667 -> app-1:8080 (one nftables map element)');
  const outside = await bed.addOutsideClient();
  const server = await NameServer.start(sb.netns, 'tcp', 8080, 'hello from app-1');
  try {
    await agent.addPort('app-1', 'tcp', 6667, 8080);
    say((await agent.cli(['port', 'list'])).stdout.trimEnd());
    say(`   runner -> 127.0.0.1:6667: ${await askName(bed.runnerNs, 'tcp', '127.0.0.1', 6667)}`);
    say(
      `   outside client -> ${outside.runnerIp}:6667: ${await askName(outside.netns, 'tcp', outside.runnerIp, 6667)}`,
    );
    say(`   app-1 -> its own node port: ${await askName(sb.netns, 'tcp', outside.runnerIp, 6667)}`);
  } finally {
    await server.stop();
  }
}

/** Fetches a token from inside a sandbox with its secret; returns the decoded claims. */
async function fetchToken(
  bed: Testbed,
  sb: Sandbox,
  url: string,
  secret: string,
): Promise<Record<string, unknown>> {
  const r = await bed.exec(sb.netns, ['curl', '-sS', '-H', `Authorization: Bearer ${secret}`, url]);
  const { token } = JSON.parse(r.stdout) as { token: string };
  return JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as Record<
    string,
    unknown
  >;
}

function claimsLine(c: Record<string, unknown>): string {
  return `sub=${String(c.sub)} aud=${JSON.stringify(c.aud)} exp in ${Number(c.exp) - Number(c.iat)} s`;
}

/** Workload identity: register app-2, fetch a token from inside its sandbox. */
async function demoIdentity(
  bed: Testbed,
  agent: AgentProcess,
  sb: Sandbox,
): Promise<{ url: string; secret: string }> {
  say('== workload identity: register app-2, then fetch a token from inside its sandbox');
  const reg = await agent.json<{ secret: string; tokenUrl: string }>([
    'identity',
    'register',
    '--sandbox',
    'app-2',
    '--app',
    'reviews',
  ]);
  say(`   token URL ${reg.tokenUrl}; secret shown once, stored only as SHA-256`);
  say(`   token claims: ${claimsLine(await fetchToken(bed, sb, reg.tokenUrl, reg.secret))}`);
  return { url: reg.tokenUrl, secret: reg.secret };
}

/** A rogue sandbox takes app-2's address: found on the wire, quarantined. */
async function demoConflict(
  bed: Testbed,
  agent: AgentProcess,
  rogue: Sandbox,
  ip: string,
): Promise<void> {
  say(`== duplicate IP: a rogue sandbox configures app-2's address ${ip} and talks to the gateway`);
  await bed.setSandboxIp(rogue.netns, ip);
  const t0 = Date.now();
  await bed.exec(rogue.netns, ['arping', '-c1', '-w1', '-U', '-I', 'eth0', ip], { check: false });
  await bed.exec(bed.sandboxes[1]?.netns as string, ['ping', '-c1', '-W1', bed.gateway], {
    check: false,
  });
  for (;;) {
    const found = await agent.json<{ kind: string; ip: string }[]>(['conflicts']);
    if (found.some((f) => f.kind === 'duplicate-ip' && f.ip === ip)) break;
    if (Date.now() - t0 > 10_000) throw new Error(`no duplicate-ip finding for ${ip}`);
    await bed.exec(rogue.netns, ['ping', '-c1', '-W1', bed.gateway], { check: false });
  }
  say((await agent.cli(['conflicts'])).stdout.trimEnd());
  say('   the address is quarantined in the lease store:');
  say((await agent.cli(['quarantine', 'list'])).stdout.trimEnd());
  await bed.exec(rogue.netns, ['ip', 'addr', 'flush', 'dev', 'eth0']);
}

/** The runtime deletes rt0 and every veth, then sets up again: the agent follows. */
async function demoBridgeRecreated(
  bed: Testbed,
  agent: AgentProcess,
  apps: readonly Sandbox[],
  ips: readonly string[],
  identity: { url: string; secret: string },
): Promise<void> {
  say('== the runtime restarts: rt0 and every veth deleted, then a new rt0 and new veths');
  const bridgeLine = async () =>
    (await agent.cli(['status'])).stdout.split('\n').find((l) => l.startsWith('bridge.detail'));
  for (const sb of apps) await bed.detachSandbox(sb);
  await bed.deleteBridge();
  await agent.waitForLog((l) => /bridge rt0 is not present/.test(l.msg ?? ''));
  say(`   ${await bridgeLine()}`);
  const refused = await agent.cli(['lease', 'allocate', '--sandbox', 'app-9']);
  say(`   lease allocate meanwhile: ${refused.stderr.trim()}`);
  await bed.createBridgeAsRuntime();
  const back: Sandbox[] = [];
  for (const [i, sb] of apps.entries()) back.push(await bed.reattachSandbox(sb, ips[i] ?? null));
  const ifindex = await bed.bridgeIfindex();
  await agent.waitForLog((l) => l.msg === 'bridge up' && l.ifindex === ifindex);
  say(`   ${await bridgeLine()}`);
  const app2 = back[1] as Sandbox;
  const later = await agent.json<{ ip: string }>(['lease', 'allocate', '--sandbox', 'app-9']);
  say(`   lease allocate now: app-9 gets ${later.ip}; leases, node ports and identities were kept`);
  say(
    `   app-2's token on its new veth: ${claimsLine(await fetchToken(bed, app2, identity.url, identity.secret))}`,
  );
}

/** Runs the demo scenario; resolves to the exit code. */
export async function runDemo(subnet: string): Promise<number> {
  say(`== creating a throw-away runner namespace with bridge rt0 and subnet ${subnet}`);
  const bed = await Testbed.create({ subnet });
  let agent: AgentProcess | null = null;
  try {
    const sandboxes: Sandbox[] = [];
    for (let i = 0; i < 3; i++) sandboxes.push(await bed.addSandbox());
    say(
      `   runner ${bed.runnerNs}; sandboxes ${sandboxes.map((s) => `${s.netns} (${s.mac} on ${s.hostIf})`).join(', ')}`,
    );
    const [app1, app2, rogue] = sandboxes as [Sandbox, Sandbox, Sandbox];

    say('== starting the agent in the runner namespace (embedded SQLite store)');
    agent = AgentProcess.start(bed, { subnet });
    await agent.ready();
    say((await agent.cli(['status'])).stdout.trimEnd());

    const ips = await demoLeases(bed, agent, [app1, app2]);
    await demoNodePort(bed, agent, app1);
    const identity = await demoIdentity(bed, agent, app2);
    await demoConflict(bed, agent, rogue, ips[1] as string);

    say('== killing the agent with SIGKILL and starting it again on the same state dir');
    await agent.stop('SIGKILL');
    agent = AgentProcess.start(bed, { subnet }, agent);
    await agent.ready();
    say((await agent.cli(['lease', 'list'])).stdout.trimEnd());
    say(
      `   app-2's old secret still works: ${claimsLine(await fetchToken(bed, app2, identity.url, identity.secret))}`,
    );
    say(
      `   tcp 6667 is still one element: ${(await agent.json<unknown[]>(['port', 'list'])).length} mapping`,
    );
    await demoBridgeRecreated(bed, agent, [app1, app2], ips, identity);

    say('== stopping the agent with SIGTERM');
    const stopped = await agent.stop('SIGTERM');
    say(`   exited ${stopped.code} after ${stopped.ms} ms`);
    return stopped.code === 0 ? 0 : 1;
  } finally {
    await agent?.cleanup();
    await bed.destroy();
    say('== removed every namespace the demo created');
  }
}

/** The `demo` verb. */
export const demoVerbs: Verb[] = [
  {
    words: ['demo'],
    summary: 'run a throw-away runner with rt0 and sandboxes and show the agent working',
    usage: 'bridgeward demo [--subnet CIDR]',
    async run(argv) {
      const { values } = parseVerbArgs(argv, { subnet: { type: 'string' } });
      return runDemo(values.subnet ?? '10.8.64.0/24');
    },
  },
];
