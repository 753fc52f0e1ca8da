/**
 * Node-port verbs: `port add`, `port remove`, `port list`.
 *
 * @example
 * bridgeward port add --sandbox app-2 --proto tcp --host-port 6667 --port 8080
 */
import type { NodePortView } from '../nodeport/node-ports.js';
import { PROTOS, type Proto } from '../nodeport/element.js';
import type { PortMapping } from '../store/types.js';
import { invalid } from '../errors.js';
import { CLIENT_OPTIONS, intFlag, parseVerbArgs, required, resolveOutput } from './args.js';
import { callAgent } from './call.js';
import { printResult, type Column } from './output.js';
import type { Verb } from './verb.js';

const COLUMNS: readonly Column<NodePortView>[] = [
  ['PROTO', (r) => r.proto],
  ['HOST-PORT', (r) => r.hostPort],
  ['SANDBOX', (r) => r.sandbox],
  ['ADDRESS', (r) => r.addr],
  ['PORT', (r) => r.port],
];

/**
 * Validates `--proto`.
 *
 * @example protoFlag('udp'); // 'udp'
 */
export function protoFlag(text: string | undefined): Proto {
  const p = required('proto', text);
  if (!(PROTOS as readonly string[]).includes(p)) {
    throw invalid(`--proto ${JSON.stringify(p)}: unknown protocol, expected tcp or udp`);
  }
  return p as Proto;
}

/** The node-port verbs. */
export const portVerbs: Verb[] = [
  {
    words: ['port', 'add'],
    summary: 'map a host port to a port of a leased sandbox (tcp or udp)',
    usage:
      'bridgeward port add --sandbox ID --proto tcp|udp --host-port N --port N [--socket PATH] [-o table|json]',
    async run(argv) {
      const { values } = parseVerbArgs(argv, {
        ...CLIENT_OPTIONS,
        sandbox: { type: 'string' },
        proto: { type: 'string' },
        'host-port': { type: 'string' },
        port: { type: 'string' },
      });
      const output = resolveOutput(values.output);
      const body = {
        sandbox: required('sandbox', values.sandbox),
        proto: protoFlag(values.proto),
        hostPort: intFlag('host-port', values['host-port'], 1, 65535),
        port: intFlag('port', values.port, 1, 65535),
      };
      const view = await callAgent<NodePortView>(values, 'POST', '/v1/ports', body);
      printResult(output, view);
      return 0;
    },
  },
  {
    words: ['port', 'remove'],
    summary: 'remove a node port',
    usage: 'bridgeward port remove --proto tcp|udp --host-port N [--socket PATH] [-o table|json]',
    async run(argv) {
      const { values } = parseVerbArgs(argv, {
        ...CLIENT_OPTIONS,
        proto: { type: 'string' },
        'host-port': { type: 'string' },
      });
      const output = resolveOutput(values.output);
      const proto = protoFlag(values.proto);
      const hostPort = intFlag('host-port', values['host-port'], 1, 65535);
      const removed = await callAgent<PortMapping>(
        values,
        'DELETE',
        `/v1/ports/${proto}/${hostPort}`,
      );
      printResult(output, removed);
      return 0;
    },
  },
  {
    words: ['port', 'list'],
    summary: 'list node ports with their sandbox and backend address',
    usage: 'bridgeward port list [--socket PATH] [-o table|json]',
    async run(argv) {
      const { values } = parseVerbArgs(argv, CLIENT_OPTIONS);
      const output = resolveOutput(values.output);
      const ports = await callAgent<NodePortView[]>(values, 'GET', '/v1/ports');
      printResult(output, ports, COLUMNS);
      return 0;
    },
  },
];
