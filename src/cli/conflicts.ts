/**
 * Conflict verbs: `conflicts [--all]` lists findings, `watch` streams them live, `probe --ip IP`
 * sends an RFC 5227 ARP probe from the agent and lists every MAC that answered.
 *
 * @example
 * bridgeward conflicts -o json
 * bridgeward watch
 * bridgeward probe --ip 10.8.64.2
 */
import { openEventStream } from '../api/event-stream-client.js';
import type { ProbeAnswer } from '../api/probe-routes.js';
import { describeFinding, type Finding } from '../detect/finding.js';
import { isIp } from '../net/ipv4.js';
import { invalid } from '../errors.js';
import { CLIENT_OPTIONS, parseVerbArgs, required, resolveOutput, resolveSocket } from './args.js';
import { callAgent } from './call.js';
import { printResult, type Column } from './output.js';
import type { Verb } from './verb.js';

const FINDING_COLUMNS: readonly Column<Finding>[] = [
  ['KIND', (f) => f.kind],
  ['IP', (f) => f.ip],
  ['MACS', (f) => f.macs],
  ['PORTS', (f) => f.ports],
  ['SANDBOXES', (f) => f.sandboxes],
  ['FIRST-SEEN', (f) => f.firstSeen],
  ['LAST-SEEN', (f) => f.lastSeen],
  ['STATE', (f) => (f.state === 'active' && f.resolvedAt ? 'clearing' : f.state)],
];

const PROBE_COLUMNS: readonly Column<ProbeAnswer>[] = [
  ['MAC', (a) => a.mac],
  ['PORT', (a) => a.port],
  ['SANDBOX', (a) => a.sandbox],
  ['RTT-MS', (a) => a.rttMs],
];

/** The conflict verbs. */
export const conflictVerbs: Verb[] = [
  {
    words: ['conflicts'],
    summary: 'list active conflict findings (--all: cleared ones since start too)',
    usage: 'bridgeward conflicts [--all] [--socket PATH] [-o table|json]',
    async run(argv) {
      const { values } = parseVerbArgs(argv, { ...CLIENT_OPTIONS, all: { type: 'boolean' } });
      const output = resolveOutput(values.output);
      const path = values.all ? '/v1/conflicts?all=1' : '/v1/conflicts';
      const findings = await callAgent<Finding[]>(values, 'GET', path);
      printResult(output, findings, FINDING_COLUMNS);
      return 0;
    },
  },
  {
    words: ['watch'],
    summary: 'stream conflict findings live (active ones first), until Ctrl-C',
    usage: 'bridgeward watch [--socket PATH] [-o table|json]',
    async run(argv) {
      const { values } = parseVerbArgs(argv, CLIENT_OPTIONS);
      const output = resolveOutput(values.output);
      const stream = openEventStream(resolveSocket(values.socket), (e) => {
        const finding = JSON.parse(e.data) as Finding;
        process.stdout.write(
          output === 'json'
            ? `${JSON.stringify({ event: e.event, finding })}\n`
            : `${new Date().toISOString()}  ${e.event.padEnd(7)}  ${describeFinding(finding)}\n`,
        );
      });
      const stop = () => stream.close();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        await stream.ended;
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
      return 0;
    },
  },
  {
    words: ['probe'],
    summary: 'send an RFC 5227 ARP probe for an address and list every MAC that answered',
    usage: 'bridgeward probe --ip IP [--timeout-ms N] [--socket PATH] [-o table|json]',
    async run(argv) {
      const { values } = parseVerbArgs(argv, {
        ...CLIENT_OPTIONS,
        ip: { type: 'string' },
        'timeout-ms': { type: 'string' },
      });
      const output = resolveOutput(values.output);
      const ip = required('ip', values.ip);
      if (!isIp(ip)) throw invalid(`--ip ${JSON.stringify(ip)}: expected an IPv4 address`);
      const timeout = values['timeout-ms'];
      if (timeout !== undefined && !/^\d{1,5}$/.test(timeout)) {
        throw invalid(`--timeout-ms ${JSON.stringify(timeout)}: expected a whole number of ms`);
      }
      const answers = await callAgent<ProbeAnswer[]>(
        values,
        'POST',
        '/v1/probe',
        timeout === undefined ? { ip } : { ip, timeoutMs: Number(timeout) },
      );
      printResult(output, answers, PROBE_COLUMNS);
      return 0;
    },
  },
];
