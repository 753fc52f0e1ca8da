/**
 * Lease verbs: `lease allocate|release|list|history`, `quarantine list|clear` and `sync`. Ids,
 * MACs and addresses are checked here first, so a typo gets a precise message without a round
 * trip.
 *
 * @example
 * bridgeward lease allocate --sandbox meet-web-1 -o json
 */
import type { AllocationView, ReleaseView, SyncView } from '../api/lease-routes.js';
import { invalid } from '../errors.js';
import { parseSandboxId } from '../ipam/sandbox-id.js';
import { formatIp, parseIp, parseMac } from '../net/ipv4.js';
import type { Lease, LeaseEvent, Quarantine } from '../store/types.js';
import { CLIENT_OPTIONS, intFlag, parseVerbArgs, required, resolveOutput } from './args.js';
import { callAgent } from './call.js';
import { printResult } from './output.js';
import type { Verb } from './verb.js';

/** The lease, quarantine and sync verbs. */
export const leaseVerbs: Verb[] = [
  {
    words: ['lease', 'allocate'],
    summary: 'give a sandbox an address (the same one again if it has one)',
    usage: 'bridgeward lease allocate --sandbox ID [--mac MAC] [--socket PATH] [-o table|json]',
    async run(argv) {
      const { values } = parseVerbArgs(argv, {
        ...CLIENT_OPTIONS,
        sandbox: { type: 'string' },
        mac: { type: 'string' },
      });
      const output = resolveOutput(values.output);
      const sandbox = parseSandboxId(required('sandbox', values.sandbox));
      const mac = values.mac === undefined ? undefined : parseMac(values.mac);
      const lease = await callAgent<AllocationView>(values, 'POST', '/v1/leases', {
        sandbox,
        ...(mac ? { mac } : {}),
      });
      printResult(output, lease);
      return 0;
    },
  },
  {
    words: ['lease', 'release'],
    summary: 'end a sandbox lease once the sandbox is confirmed gone',
    usage: 'bridgeward lease release --sandbox ID [--socket PATH] [-o table|json]',
    async run(argv) {
      const { values } = parseVerbArgs(argv, { ...CLIENT_OPTIONS, sandbox: { type: 'string' } });
      const output = resolveOutput(values.output);
      const sandbox = parseSandboxId(required('sandbox', values.sandbox));
      const r = await callAgent<ReleaseView>(
        values,
        'DELETE',
        `/v1/leases/${encodeURIComponent(sandbox)}`,
      );
      printResult(output, r);
      if (output === 'table' && r.quarantined) {
        process.stderr.write(
          `bridgeward: ${r.ip} is still live on the wire; quarantined instead of freed\n`,
        );
      }
      return 0;
    },
  },
  {
    words: ['lease', 'list'],
    summary: 'list active leases',
    usage: 'bridgeward lease list [--socket PATH] [-o table|json]',
    async run(argv) {
      const { values } = parseVerbArgs(argv, CLIENT_OPTIONS);
      const output = resolveOutput(values.output);
      const leases = await callAgent<Lease[]>(values, 'GET', '/v1/leases');
      printResult(output, leases, [
        ['SANDBOX', (l) => l.sandbox],
        ['IP', (l) => l.ip],
        ['STATE', (l) => l.state],
        ['GEN', (l) => l.generation],
        ['MAC', (l) => l.mac],
        ['PORT', (l) => l.ifname ?? l.ifindex],
        ['SINCE', (l) => l.allocatedAt],
      ]);
      return 0;
    },
  },
  {
    words: ['lease', 'history'],
    summary: 'show the event history of an address or sandbox (oldest first)',
    usage:
      'bridgeward lease history [--ip IP] [--sandbox ID] [--limit N] [--socket PATH] [-o table|json]',
    async run(argv) {
      const { values } = parseVerbArgs(argv, {
        ...CLIENT_OPTIONS,
        ip: { type: 'string' },
        sandbox: { type: 'string' },
        limit: { type: 'string' },
      });
      const output = resolveOutput(values.output);
      const q = new URLSearchParams();
      if (values.ip !== undefined) q.set('ip', formatIp(parseIp(values.ip)));
      if (values.sandbox !== undefined) q.set('sandbox', parseSandboxId(values.sandbox));
      if (values.limit !== undefined)
        q.set('limit', String(intFlag('limit', values.limit, 1, 100000)));
      const events = await callAgent<LeaseEvent[]>(
        values,
        'GET',
        `/v1/history${q.size ? `?${q}` : ''}`,
      );
      printResult(output, events, [
        ['AT', (e) => e.at],
        ['KIND', (e) => e.kind],
        ['IP', (e) => e.ip],
        ['SANDBOX', (e) => e.sandbox],
        ['DETAIL', (e) => e.detail],
      ]);
      return 0;
    },
  },
  {
    words: ['quarantine', 'list'],
    summary: 'list quarantined addresses with reason and evidence',
    usage: 'bridgeward quarantine list [--socket PATH] [-o table|json]',
    async run(argv) {
      const { values } = parseVerbArgs(argv, CLIENT_OPTIONS);
      const output = resolveOutput(values.output);
      const list = await callAgent<Quarantine[]>(values, 'GET', '/v1/quarantine');
      printResult(output, list, [
        ['IP', (q) => q.ip],
        ['REASON', (q) => q.reason],
        ['SINCE', (q) => q.since],
        ['UNTIL', (q) => q.until],
        ['EVIDENCE', (q) => q.evidence],
      ]);
      return 0;
    },
  },
  {
    words: ['quarantine', 'clear'],
    summary: 'lift a quarantine (operator override, recorded in the history)',
    usage: 'bridgeward quarantine clear --ip IP [--reason TEXT] [--socket PATH] [-o table|json]',
    async run(argv) {
      const { values } = parseVerbArgs(argv, {
        ...CLIENT_OPTIONS,
        ip: { type: 'string' },
        reason: { type: 'string' },
      });
      const output = resolveOutput(values.output);
      const ip = formatIp(parseIp(required('ip', values.ip)));
      const r = await callAgent<{ ip: string; cleared: boolean }>(
        values,
        'DELETE',
        `/v1/quarantine/${ip}${values.reason ? `?${new URLSearchParams({ reason: values.reason })}` : ''}`,
      );
      printResult(output, r);
      return 0;
    },
  },
  {
    words: ['sync'],
    summary: "declare the runtime's sandboxes; leases of others are reaped once quiet on the wire",
    usage: 'bridgeward sync --sandboxes ID[,ID...] [--socket PATH] [-o table|json]',
    async run(argv) {
      const { values } = parseVerbArgs(argv, { ...CLIENT_OPTIONS, sandboxes: { type: 'string' } });
      const output = resolveOutput(values.output);
      if (values.sandboxes === undefined) {
        throw invalid('--sandboxes is required (comma-separated ids; "" declares none)');
      }
      const sandboxes =
        values.sandboxes === '' ? [] : values.sandboxes.split(',').map(parseSandboxId);
      const r = await callAgent<SyncView>(values, 'POST', '/v1/sync', {
        sandboxes,
      });
      printResult(output, r);
      return 0;
    },
  },
];
