/**
 * `bridgeward status`: asks the running agent what it runs on and which observers are active.
 */
import type { AgentStatus } from '../api/status-routes.js';
import { CLIENT_OPTIONS, parseVerbArgs, resolveOutput } from './args.js';
import { callAgent } from './call.js';
import { printResult } from './output.js';
import type { Verb } from './verb.js';

/** The `status` verb. */
export const statusVerbs: Verb[] = [
  {
    words: ['status'],
    summary: 'show the agent: bridge, subnet, store, uptime, observers, guard, features',
    usage: 'bridgeward status [--socket PATH] [-o table|json]',
    async run(argv) {
      const { values } = parseVerbArgs(argv, CLIENT_OPTIONS);
      const output = resolveOutput(values.output);
      const status = await callAgent<AgentStatus>(values, 'GET', '/v1/status');
      printResult(output, status);
      return 0;
    },
  },
];
