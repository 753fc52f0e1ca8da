/**
 * `npm run bench -- cni [--pairs N] [--rounds R]`: CNI ADD+DEL pairs per second, one after the
 * other, each through Debian's `bridge` plugin, with bridgeward as IPAM (on rt0, the agent's
 * bridge) against `host-local` (on a second bridge of the same runner namespace, so neither sees
 * the other's sandboxes), in alternating rounds. Besides: the plugins alone (ADD p50), a bare
 * `node` start, and the wall time of `bridgeward lease list`, to say where the time goes.
 *
 * @example
 * npm run bench -- cni --pairs 40 --rounds 5
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { run } from '../src/exec.js';
import { AgentProcess, BIN } from '../src/testbed/agent-process.js';
import { CniNetwork, DEBIAN_CNI_DIR } from '../src/testbed/cni.js';
import { Testbed } from '../src/testbed/testbed.js';
import { median, progress, quantile, rounded, type Benchmark } from './benchmark.js';

const SUBNET = '10.9.4.0/22';
const HOSTLOCAL_SUBNET = '10.9.8.0/22';

/** Milliseconds `f` took. */
async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await f();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Fails loudly when a plugin did. */
function ok(what: string, r: { code: number | null; stdout: string; stderr: string }): void {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${r.stdout} ${r.stderr}`);
}

/** One round of sequential pairs: pairs per second and each ADD's latency. */
interface Round {
  readonly perSecond: number;
  readonly addMs: number[];
}

/** The cni benchmark. */
export const cniBench: Benchmark = {
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        pairs: { type: 'string', default: '40' },
        rounds: { type: 'string', default: '5' },
      },
    });
    const pairs = Number(values.pairs);
    const rounds = Number(values.rounds);
    const dir = mkdtempSync(join(tmpdir(), 'bw-bench-cni-'));
    const bed = await Testbed.create({ subnet: SUBNET, bridgeMac: '02:b0:00:00:00:03' });
    const agent = AgentProcess.start(bed, { subnet: SUBNET, 'identity-listen': 'off' });
    try {
      await agent.ready(60_000);
      const net = CniNetwork.create(bed, agent);
      const netns = await bed.addNamespace('c');
      const bridgeward = net.config();
      const hostLocal = net.config({
        bridge: 'rt1',
        ipam: { type: 'host-local', subnet: HOSTLOCAL_SUBNET, dataDir: join(dir, 'host-local') },
      });
      let n = 0;
      /** One ADD + DEL through the bridge plugin; returns the ADD's latency. */
      const pair = async (config: string): Promise<number> => {
        const id = `bench-${n++}`;
        let add = { code: 0, stdout: '', stderr: '' } as Awaited<ReturnType<typeof net.exec>>;
        const ms = await timed(async () => {
          add = await net.exec('bridge', net.env('ADD', id, netns), config);
        });
        ok('bridge ADD', add);
        const prevResult = add.result;
        ok(
          'bridge DEL',
          await net.exec(
            'bridge',
            net.env('DEL', id, netns),
            JSON.stringify({ ...JSON.parse(config), prevResult }),
          ),
        );
        return ms;
      };
      const roundOf = async (config: string): Promise<Round> => {
        const addMs: number[] = [];
        const ms = await timed(async () => {
          for (let i = 0; i < pairs; i++) addMs.push(await pair(config));
        });
        return { perSecond: pairs / (ms / 1000), addMs };
      };

      progress('warm-up: 10 pairs each');
      for (let i = 0; i < 10; i++) await pair(bridgeward);
      for (let i = 0; i < 10; i++) await pair(hostLocal);
      const bw: Round[] = [];
      const hl: Round[] = [];
      for (let r = 0; r < rounds; r++) {
        bw.push(await roundOf(bridgeward));
        hl.push(await roundOf(hostLocal));
        progress(
          `round ${r + 1}: bridgeward ${(bw.at(-1) as Round).perSecond.toFixed(1)} pairs/s, host-local ${(hl.at(-1) as Round).perSecond.toFixed(1)} pairs/s`,
        );
      }

      progress('the plugins alone, a bare node, and the CLI');
      const alone = async (plugin: string, config: string): Promise<number[]> => {
        const out: number[] = [];
        for (let i = 0; i < 30; i++) {
          const env = net.env('ADD', `alone-${n++}`, netns);
          const cmd = (command: string) => [
            'env',
            '-i',
            `PATH=${process.env.PATH ?? ''}`,
            ...Object.entries({ ...env, CNI_COMMAND: command }).map(([k, v]) => `${k}=${v}`),
            plugin,
          ];
          out.push(
            await timed(async () =>
              ok(`${plugin} ADD`, await run(cmd('ADD'), { check: false, input: config })),
            ),
          );
          ok(`${plugin} DEL`, await run(cmd('DEL'), { check: false, input: config }));
        }
        return out;
      };
      const pluginAdd = await alone(join(net.binDir, 'bridgeward'), bridgeward);
      const hostLocalAdd = await alone(join(DEBIAN_CNI_DIR, 'host-local'), hostLocal);
      const sample = async (argv: string[]) => {
        const out: number[] = [];
        for (let i = 0; i < 15; i++) out.push(await timed(() => run(argv)));
        return out;
      };
      const nodeMs = await sample([process.execPath, '-e', '0']);
      const listMs = await sample([
        process.execPath,
        BIN,
        'lease',
        'list',
        '--socket',
        agent.socket,
      ]);
      const helpMs = await sample([process.execPath, BIN, '--help']);

      const bwAdd = bw.flatMap((x) => x.addMs);
      const hlAdd = hl.flatMap((x) => x.addMs);
      const figures = {
        pairs,
        rounds,
        bridgeward_pairs_per_s: rounded(median(bw.map((x) => x.perSecond)), 1),
        hostlocal_pairs_per_s: rounded(median(hl.map((x) => x.perSecond)), 1),
        ratio_vs_hostlocal: rounded(
          median(bw.map((x, i) => x.perSecond / (hl[i] as Round).perSecond)),
        ),
        add_p50_ms: rounded(median(bwAdd), 1),
        add_p99_ms: rounded(quantile(bwAdd, 0.99), 1),
        hostlocal_add_p50_ms: rounded(median(hlAdd), 1),
        plugin_add_p50_ms: rounded(median(pluginAdd), 1),
        hostlocal_plugin_add_p50_ms: rounded(median(hostLocalAdd), 1),
        node_start_ms: rounded(median(nodeMs), 1),
        cli_lease_list_ms: rounded(median(listMs), 1),
        cli_help_ms: rounded(median(helpMs), 1),
      };
      return {
        ...figures,
        notes: [
          'ADD/DEL through /usr/lib/cni/bridge in the runner namespace (nsenter --net), one after the other',
          'bridgeward: fdatasync per write and a background ARP probe; host-local: a file per address, no fsync, no probe',
          `where an ADD goes: bridge plugin + IPAM exec; the IPAM plugin alone: bridgeward ${figures.plugin_add_p50_ms} ms (a bare node starts in ${figures.node_start_ms} ms) vs host-local ${figures.hostlocal_plugin_add_p50_ms} ms`,
        ],
      };
    } finally {
      await agent.cleanup();
      await bed.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
