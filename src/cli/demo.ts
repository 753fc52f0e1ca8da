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

/** Node ports: a lease, a server in the sandbox, a port, and traffic from three sides. */
async function demoNodePort(bed: Testbed, agent: AgentProcess, sb: Sandbox): Promise<void> {
  say('== node port: lease for app-1, a tiny server in its sandbox, tcp 6667 -> app-1:8080');
  const lease = await agent.json<{ ip: string }>([
    'lease',
    'allocate',
    '--sandbox',
    'app-1',
    '--mac',
    sb.mac,
  ]);
  await bed.setSandboxIp(sb.netns, lease.ip);
  const outside = await bed.addOutsideClient();
  const server = await NameServer.start(sb.netns, 'tcp', 8080, 'hello from app-1');
  try {
    await agent.json([
      'port',
      'add',
      '--sandbox',
      'app-1',
      '--proto',
      'tcp',
      '--host-port',
      '6667',
      '--port',
      '8080',
    ]);
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

/** Runs the demo scenario; resolves to the exit code. */
export async function runDemo(subnet: string): Promise<number> {
  say(`== creating a throw-away runner namespace with bridge rt0 and subnet ${subnet}`);
  const bed = await Testbed.create({ subnet });
  let agent: AgentProcess | null = null;
  try {
    const sandboxes = [];
    for (let i = 0; i < 3; i++) sandboxes.push(await bed.addSandbox());
    say(
      `   runner ${bed.runnerNs}; sandboxes ${sandboxes.map((s) => `${s.netns} (${s.mac} on ${s.hostIf})`).join(', ')}`,
    );

    say('== starting the agent in the runner namespace (embedded SQLite store)');
    agent = AgentProcess.start(bed, { subnet });
    await agent.ready();
    const status = await agent.cli(['status']);
    say(status.stdout.trimEnd());

    await demoNodePort(bed, agent, sandboxes[0] as Sandbox);

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
