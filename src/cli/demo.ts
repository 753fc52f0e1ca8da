/**
 * `bridgeward demo`: builds a throw-away runner namespace with a real `rt0` bridge and sandbox
 * namespaces, runs the agent there on the embedded SQLite store, shows it working, and removes
 * everything again (also on failure or Ctrl-C).
 */
import { AgentProcess } from '../testbed/agent-process.js';
import { Testbed } from '../testbed/testbed.js';
import { parseVerbArgs } from './args.js';
import type { Verb } from './verb.js';

const say = (text: string) => process.stdout.write(`${text}\n`);

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
