/**
 * `npm run bench -- nodeport [--mappings N] [--rounds R] [--seconds S] [--conn-rounds C]`:
 * bridgeward's node ports (one nftables map, fixed rules) against the old approach (one
 * iptables DNAT rule appended per sandbox), side by side in one run, in namespaces it creates:
 *
 * (a) one mapping changed while N exist: in-process libnftables vs the `nft` binary (alternating,
 *     in a worker inside the runner namespace) vs `iptables -A` of the three rules the old code
 *     appended per deploy (PREROUTING, OUTPUT, POSTROUTING), with N rules present;
 * (b) the atomic full replace of the table with N elements (in-process);
 * (c) new TCP connections per second from an outside client through DNAT to a sandbox, with 1 vs
 *     N mappings, nftables map vs an iptables chain of N rules whose live rule is last (as after
 *     the incident's deploys), in alternating rounds.
 *
 * @example
 * npm run bench -- nodeport --mappings 10000 --rounds 30 --seconds 1 --conn-rounds 10
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { run } from '../src/exec.js';
import { REPO_ROOT } from '../src/native.js';
import { nftBinaryDriver } from '../src/nodeport/nft-driver.js';
import { renderFullReplace } from '../src/nodeport/ruleset.js';
import type { NatElement } from '../src/nodeport/element.js';
import { NameServer } from '../src/testbed/name-server.js';
import { Testbed, type OutsideClient } from '../src/testbed/testbed.js';
import { median, progress, type Benchmark } from './benchmark.js';

const SUBNET = '10.8.64.0/24';
const BACKEND = '10.8.64.10';
const LIVE_PORT = 30_000;

const LOAD = `
const [host, port, ms, conc] = process.argv.slice(1);
const net = require('net');
let n = 0, stop = false;
setTimeout(() => { stop = true; }, Number(ms));
const t0 = process.hrtime.bigint();
function one(done) {
  if (stop) return done();
  const s = net.connect(Number(port), host);
  s.once('data', () => { n++; s.resetAndDestroy(); one(done); });
  s.on('error', () => { s.destroy(); one(done); });
}
let left = Number(conc);
for (let i = 0; i < Number(conc); i++) one(() => { if (--left === 0) {
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ n, perSecond: n / s }));
} });`;

/** N mappings with the live one (to the bench sandbox) among them. */
function mappings(n: number): NatElement[] {
  return Array.from({ length: n }, (_, i) => ({
    proto: 'tcp' as const,
    hostPort: i === n - 1 ? LIVE_PORT : 40_000 + i,
    addr: i === n - 1 ? BACKEND : `10.8.64.${20 + (i % 200)}`,
    port: 8080,
  }));
}

/** iptables-restore input: one DNAT rule per mapping in PREROUTING, the live one last. */
function iptablesRules(n: number): string {
  const lines = mappings(n).map(
    (e) =>
      `-A PREROUTING -p tcp -m tcp --dport ${e.hostPort} -j DNAT --to-destination ${e.addr}:${e.port}`,
  );
  return `*nat\n${lines.join('\n')}\nCOMMIT\n`;
}

async function connRate(outside: OutsideClient, seconds: number): Promise<number> {
  const r = await run(
    [
      process.execPath,
      '-e',
      LOAD,
      outside.runnerIp,
      String(LIVE_PORT),
      String(seconds * 1000),
      '16',
    ],
    { netns: outside.netns, timeoutMs: seconds * 1000 + 30_000 },
  );
  return (JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { perSecond: number }).perSecond;
}

/** The node-port benchmark. */
export const nodeportBench: Benchmark = {
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        mappings: { type: 'string', default: '10000' },
        rounds: { type: 'string', default: '30' },
        seconds: { type: 'string', default: '1' },
        'conn-rounds': { type: 'string', default: '10' },
      },
    });
    const n = Number(values.mappings);
    const rounds = Number(values.rounds);
    const seconds = Number(values.seconds);
    const connRounds = Number(values['conn-rounds']);
    const notes: string[] = [];
    const bed = await Testbed.create({ subnet: SUBNET });
    let server: NameServer | null = null;
    try {
      const ns = bed.runnerNs;
      const iptVersion = (await run(['iptables', '--version'])).stdout.trim();
      notes.push(
        `iptables is ${iptVersion} (${/nf_tables/.test(iptVersion) ? 'iptables-nft' : 'legacy'})`,
      );
      await bed.ip(['addr', 'add', `${bed.gateway}/24`, 'dev', bed.bridge]);
      await run(['sysctl', '-qw', `net.ipv4.conf.${bed.bridge}.forwarding=1`], { netns: ns });
      const sb = await bed.addSandbox({ ip: BACKEND });
      const outside = await bed.addOutsideClient();
      server = await NameServer.start(sb.netns, 'tcp', 8080, 'bench');

      progress(
        `(a, b) worker in ${ns}: full replace of ${n} and ${rounds} single changes, in-process vs nft binary`,
      );
      const worker = await run(
        [
          process.execPath,
          join(REPO_ROOT, 'dist', 'bench', 'nodeport-worker.js'),
          String(n),
          String(rounds),
          bed.bridge,
          SUBNET,
        ],
        { netns: ns, timeoutMs: 600_000 },
      );
      const w = JSON.parse(worker.stdout.trim().split('\n').pop() ?? '{}') as Record<
        string,
        number
      >;
      progress(`  ${JSON.stringify(w)}`);
      await run(['nft', 'delete table ip bridgeward'], { netns: ns });

      progress(
        `(a) iptables: append the 3 rules of one deploy with ${n} rules present (${rounds} times)`,
      );
      await run(['iptables-restore', '-n'], { netns: ns, input: iptablesRules(n) });
      const ipt: number[] = [];
      for (let i = 0; i < rounds; i++) {
        const p = String(50_000 + i);
        const to = `${BACKEND}:8080`;
        // The three rules one deploy appended in the incident code, one exec each.
        const dnat = ['-p', 'tcp', '--dport', p, '-j', 'DNAT', '--to-destination', to];
        const deploy = [
          ['PREROUTING', ...dnat],
          ['OUTPUT', ...dnat],
          ['POSTROUTING', '-p', 'tcp', '-d', BACKEND, '--dport', '8080', '-j', 'MASQUERADE'],
        ];
        const t0 = process.hrtime.bigint();
        for (const rule of deploy)
          await run(['iptables', '-t', 'nat', '-A', ...rule], { netns: ns });
        ipt.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      const changeIptables = median(ipt);
      progress(`  median ${changeIptables.toFixed(2)} ms`);
      await run(['iptables', '-t', 'nat', '-F'], { netns: ns });

      progress(
        `(c) new TCP connections/s through DNAT, ${connRounds} alternating rounds of ${seconds} s`,
      );
      const nft = nftBinaryDriver(ns);
      const spec = { bridge: bed.bridge, subnet: SUBNET };
      const setups: Record<string, () => Promise<void>> = {
        nft_1: () => nft.run(renderFullReplace(spec, mappings(1))).then(() => undefined),
        nft_10k: () => nft.run(renderFullReplace(spec, mappings(n))).then(() => undefined),
        ipt_1: async () => {
          await run(['iptables-restore', '-n'], { netns: ns, input: iptablesRules(1) });
        },
        ipt_10k: async () => {
          await run(['iptables-restore', '-n'], { netns: ns, input: iptablesRules(n) });
        },
      };
      const rates: Record<string, number[]> = { nft_1: [], nft_10k: [], ipt_1: [], ipt_10k: [] };
      const order = Object.keys(setups);
      for (let r = 0; r < connRounds; r++) {
        // Rotate the order so no configuration always follows the same one.
        const names = [...order.slice(r % order.length), ...order.slice(0, r % order.length)];
        const line: string[] = [];
        for (const name of names) {
          await setups[name]?.();
          await run(['conntrack', '-F'], { netns: ns, check: false });
          const rate = await connRate(outside, seconds);
          rates[name]?.push(rate);
          line.push(`${name} ${rate.toFixed(0)}`);
          await run(['nft', 'delete table ip bridgeward'], { netns: ns, check: false });
          await run(['iptables', '-t', 'nat', '-F'], { netns: ns });
        }
        progress(`  round ${r + 1}: ${line.join(', ')} conn/s`);
      }
      const ratio = (a: string, b: string) =>
        median((rates[b] ?? []).map((v, i) => v / ((rates[a] ?? [])[i] as number)));
      notes.push(
        '(a) in-process and nft-binary figures time the look-up and diff of the changed key + render + one transaction, as the agent applies an API change; the agent adds its store commit and API round trip on top',
        '(a) iptables: three `iptables -A` execs per deploy, as the incident code did (PREROUTING, OUTPUT, POSTROUTING)',
        '(c) load: one outside client (node), 16 concurrent closed-loop connections (connect, read the answer, reset), CPU-bound on a shared 2-core machine, so rates are noisy; ratios are medians of per-round ratios; the iptables chain has the live rule last',
      );
      return {
        mappings: n,
        change_inprocess_ms: w.change_inprocess_ms ?? null,
        change_nft_exec_ms: w.change_nft_exec_ms ?? null,
        change_iptables_ms: changeIptables,
        speedup_vs_nft_exec: w.speedup_vs_nft_exec ?? null,
        full_replace_ms: w.full_replace_ms ?? null,
        full_replace_verified_ms: w.full_replace_verified_ms ?? null,
        conn_per_s_1: median(rates.nft_1 ?? []),
        conn_per_s_10k: median(rates.nft_10k ?? []),
        conn_ratio_10k_vs_1: ratio('nft_1', 'nft_10k'),
        iptables_conn_per_s_1: median(rates.ipt_1 ?? []),
        iptables_conn_per_s_10k: median(rates.ipt_10k ?? []),
        iptables_conn_ratio_10k_vs_1: ratio('ipt_1', 'ipt_10k'),
        notes,
      };
    } finally {
      await server?.stop();
      await bed.destroy();
    }
  },
};
