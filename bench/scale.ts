/**
 * `npm run bench -- scale [--leases N] [--ports-per-lease P] [--idle-seconds S]`: the agent's
 * footprint at runner scale. It starts the agent in a runner namespace (/22, SQLite store),
 * measures it idle and empty, leases N sandboxes and adds N x P node ports through the API one
 * at a time (one client, as a runtime would), measures it loaded after a full sweep, then
 * SIGKILLs and restarts it and counts the elements back in the kernel. There is no peer: the
 * figures stand against the targets in the footprint issue (kube-proxy and felix use 30-100 MB).
 *
 * CPU is the agent process (every thread) plus its living children (`nft monitor`), from /proc.
 * The loaded idle window starts a minute after the last allocation: for that minute after a
 * burst the agent keeps extra candidates probed (`DEMAND_HOLD_MS`), which is work, not idling.
 *
 * `--node-options` runs the agent with that NODE_OPTIONS (e.g. V8 heap flags) to compare.
 *
 * @example
 * npm run bench -- scale --leases 250 --ports-per-lease 40
 */
import { parseArgs } from 'node:util';
import { AgentProcess } from '../src/testbed/agent-process.js';
import { Testbed } from '../src/testbed/testbed.js';
import { run } from '../src/exec.js';
import { api } from './api.js';
import { median, progress, quantile, type Benchmark } from './benchmark.js';
import { rssMb, treeCpuMs } from './process-stats.js';
import { DEMAND_HOLD_MS } from '../src/ipam/probed-candidates.js';

const SUBNET = '10.12.0.0/22';
const METRICS = '127.0.0.1:9464';
const SWEEP_SECONDS = 10;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 2) => Number(x.toFixed(d));

/** CPU ms per second the agent tree spends over `seconds` with nothing happening. */
async function idleCpu(pid: number, seconds: number): Promise<number> {
  const before = treeCpuMs(pid);
  await sleep(seconds * 1000);
  return (treeCpuMs(pid) - before) / seconds;
}

/** Wall time of one call, in ms. */
async function timedMs(f: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await f();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Heap used and external memory (MB) from the agent's own process metrics. */
async function heapSplit(bed: Testbed): Promise<{ heap: number; external: number }> {
  const r = await run(['curl', '-s', `http://${METRICS}/metrics`], { netns: bed.runnerNs });
  const value = (name: string) =>
    Number(new RegExp(`^${name} (\\S+)`, 'm').exec(r.stdout)?.[1] ?? NaN) / 2 ** 20;
  return {
    heap: value('bridgeward_process_nodejs_heap_size_used_bytes'),
    external: value('bridgeward_process_nodejs_external_memory_bytes'),
  };
}

/** Node-port elements in the kernel's map. */
async function elements(bed: Testbed): Promise<number> {
  const r = await run(['nft', '-j', 'list', 'map', 'ip', 'bridgeward', 'nodeports'], {
    netns: bed.runnerNs,
  });
  const listing = JSON.parse(r.stdout) as { nftables: { map?: { elem?: unknown[] } }[] };
  return listing.nftables.reduce((n, o) => n + (o.map?.elem?.length ?? 0), 0);
}

function mac(i: number): string {
  return `02:5c:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
}

/** The scale benchmark. */
export const scaleBench: Benchmark = {
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        leases: { type: 'string', default: '250' },
        'ports-per-lease': { type: 'string', default: '40' },
        'idle-seconds': { type: 'string', default: '30' },
        'node-options': { type: 'string' },
      },
    });
    if (values['node-options'] !== undefined) process.env.NODE_OPTIONS = values['node-options'];
    const leases = Number(values.leases);
    const perLease = Number(values['ports-per-lease']);
    const idleSeconds = Number(values['idle-seconds']);
    const notes: string[] = [];
    const bed = await Testbed.create({ subnet: SUBNET });
    const flags = {
      subnet: SUBNET,
      'metrics-listen': METRICS,
      'sweep-seconds': String(SWEEP_SECONDS),
    };
    let agent = AgentProcess.start(bed, flags);
    try {
      await agent.ready(60_000);
      const pid = agent.pid as number;
      // Start-up work (boot probe, the first periodic sweeps, the GCs after loading) out of the way.
      await sleep((SWEEP_SECONDS + 2) * 1000);
      const rssIdle = rssMb(pid);
      progress(`idle and empty: RSS ${rssIdle.toFixed(1)} MB; measuring CPU for ${idleSeconds} s`);
      const cpuEmpty = await idleCpu(pid, idleSeconds);
      progress(`idle and empty: ${cpuEmpty.toFixed(2)} ms CPU per s`);

      progress(`leasing ${leases} sandboxes`);
      for (let i = 0; i < leases; i++) {
        await api(agent.socket, 'POST', '/v1/leases', { sandbox: `app-${i}`, mac: mac(i) });
      }
      const leased = Date.now();
      const total = leases * perLease;
      progress(`adding ${total} node ports, one request at a time`);
      const addMs: number[] = [];
      for (let i = 0; i < total; i++) {
        const body = {
          sandbox: `app-${i % leases}`,
          proto: 'tcp',
          hostPort: 20_000 + i,
          port: 8080,
        };
        addMs.push(await timedMs(() => api(agent.socket, 'POST', '/v1/ports', body)));
        if ((i + 1) % 2000 === 0) progress(`  ${i + 1} ports, p50 ${median(addMs).toFixed(2)} ms`);
      }
      // The lists first: each 10,000-port answer leaves megabytes of garbage, whose collection
      // (V8's memory reducer, ~30 s after activity stops) is no idle cost.
      const leaseList: number[] = [];
      const portList: number[] = [];
      for (let i = 0; i < 5; i++) {
        leaseList.push(await timedMs(() => api(agent.socket, 'GET', '/v1/leases')));
        portList.push(await timedMs(() => api(agent.socket, 'GET', '/v1/ports')));
      }
      // A full periodic sweep over the loaded state, and past the minute after the burst of
      // allocations in which the agent keeps extra candidates probed (DEMAND_HOLD_MS).
      await sleep(Math.max((SWEEP_SECONDS + 2) * 1000, DEMAND_HOLD_MS - (Date.now() - leased)));
      const rssLoaded = rssMb(pid);
      const split = await heapSplit(bed);
      progress(`loaded: RSS ${rssLoaded.toFixed(1)} MB; measuring CPU for ${idleSeconds} s`);
      const cpuLoaded = await idleCpu(pid, idleSeconds);
      progress(`idle and loaded: ${cpuLoaded.toFixed(2)} ms CPU per s`);

      progress('SIGKILL and restart on the same state');
      await agent.stop('SIGKILL');
      const t0 = Date.now();
      agent = AgentProcess.start(bed, flags, agent);
      await agent.ready(60_000);
      const restartS = (Date.now() - t0) / 1000;
      const after = await elements(bed);
      notes.push(
        'one API client, sequential requests; SQLite store with every write synced before it is answered',
      );
      return {
        leases,
        ports: total,
        rss_idle_mb: round(rssIdle, 1),
        rss_loaded_mb: round(rssLoaded, 1),
        heap_used_mb: round(split.heap, 1),
        external_mb: round(split.external, 1),
        port_add_p50_ms: round(median(addMs), 3),
        port_add_p99_ms: round(quantile(addMs, 0.99), 3),
        lease_list_ms: round(median(leaseList), 2),
        port_list_ms: round(median(portList), 2),
        idle_cpu_ms_per_s_empty: round(cpuEmpty, 2),
        idle_cpu_ms_per_s_loaded: round(cpuLoaded, 2),
        restart_ready_s: round(restartS, 2),
        elements_after_restart: after,
        notes,
      };
    } finally {
      await agent.cleanup();
      await bed.destroy();
    }
  },
};
