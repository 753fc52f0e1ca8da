/**
 * `npm run bench -- detect [--trials N] [--storm-pps N] [--storm-seconds N] [--storm-trials N]
 * [--fair-rounds N] [--fair-seconds N]`: bridgeward's conflict detection side by side with
 * Debian's arpwatch watching the same rt0 in the same run.
 *
 * Latency: per trial sandbox A gets a lease (through the API) and announces its address, then
 * sandbox B claims it with one gratuitous ARP; the time from B's send (CLOCK_MONOTONIC in the
 * sender) to bridgeward's `duplicate-ip` event on `GET /v1/events`, and to arpwatch's `changed
 * ethernet address` report.
 *
 * Storms (`same`: one binding repeated; `spoof`: a new random sender IP and MAC per frame), from
 * a third sandbox with the C sender (bench/arp-storm.c): first a quiet window of the storm for
 * each watcher's process CPU and RSS, then the same storm again while latency trials run from
 * the other ports.
 *
 * Fair cost: rounds alternating none / arpwatch / bridgeward (the agent's program detached from
 * the storm port for the first two), each the same `same` storm; a watcher's cost per frame is the
 * sender's CPU with it minus the sender's CPU in the round's `none`, plus the watcher's own
 * process CPU (on this kernel the softirq work for a sent frame, tc programs and packet-socket
 * taps included, is charged to the sender).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiRequest } from '../src/api/client.js';
import { openEventStream } from '../src/api/event-stream-client.js';
import type { Finding } from '../src/detect/finding.js';
import { run } from '../src/exec.js';
import { AgentProcess } from '../src/testbed/agent-process.js';
import { Testbed } from '../src/testbed/testbed.js';
import { Announcer } from './announcer.js';
import { ARP_STORM_BIN, startStorm, type StormKind, type StormResult } from './arp-storm.js';
import { Arpwatch, nowMs, Reports } from './arpwatch.js';
import {
  median,
  numberFlag as flag,
  progress,
  quantile,
  rounded as round,
  type Benchmark,
} from './benchmark.js';
import { cpuSeconds, rssMb } from './proc-stats.js';

const SUBNET = '10.8.64.0/24';

const p50 = (xs: number[]) => (xs.length ? quantile(xs, 0.5) : null);
const p99 = (xs: number[]) => (xs.length ? quantile(xs, 0.99) : null);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Latencies of one series of duplicate trials, per watcher. */
interface Latencies {
  readonly bw: number[];
  readonly aw: number[];
  bwMissed: number;
  awMissed: number;
}

/** The detect benchmark. */
export const detectBench: Benchmark = {
  async run(argv) {
    const trials = flag(argv, 'trials', 30);
    const stormPps = flag(argv, 'storm-pps', 20_000);
    const stormSeconds = flag(argv, 'storm-seconds', 10);
    const stormTrials = flag(argv, 'storm-trials', 20);
    const fairRounds = flag(argv, 'fair-rounds', 5);
    const fairSeconds = flag(argv, 'fair-seconds', 5);
    if (trials + 2 * stormTrials > 200)
      throw new Error('at most 200 trials in all (one lease each)');
    const notes: string[] = [];
    const cleanups: (() => Promise<void> | void)[] = [];
    if (!existsSync(ARP_STORM_BIN)) throw new Error(`${ARP_STORM_BIN} is missing: npm run build`);
    try {
      const bed = await Testbed.create({ subnet: SUBNET });
      cleanups.push(() => bed.destroy());
      const a = await bed.addSandbox();
      const b = await bed.addSandbox();
      const storm = await bed.addSandbox({ ip: '10.8.64.200' });
      // The agent's pins on a bpffs of the host's mount namespace, as in production (its links
      // outlive it); the fair rounds detach the storm port's link by removing its pin.
      const bpffs = mkdtempSync(join(tmpdir(), `bw-${bed.id}-bpffs-`));
      await run(['mount', '-t', 'bpf', 'bpf', bpffs]);
      cleanups.push(async () => {
        await run(['umount', bpffs], { check: false });
        rmSync(bpffs, { recursive: true, force: true });
      });
      const pinDir = join(bpffs, 'bridgeward');
      const flags = { subnet: SUBNET, 'bpf-pin-dir': pinDir };
      const agent = AgentProcess.start(bed, flags);
      cleanups.push(() => agent.cleanup());
      await agent.ready();
      const running = await agent.waitForLog((l) => l.msg === 'eBPF observer running');
      progress(`agent pid ${String(agent.logs[0]?.pid)}, eBPF attach ${String(running.attach)}`);
      const agentPid = () => Number(agent.logs[0]?.pid);

      const bridgeward = new Reports();
      const storms = new Map<string, Finding>();
      const stream = openEventStream(agent.socket, (e) => {
        if (e.event !== 'raised' && e.event !== 'updated') return;
        const f = JSON.parse(e.data) as Finding;
        if (f.kind === 'duplicate-ip' && f.ip && e.event === 'raised')
          bridgeward.record(f.ip, nowMs());
        if (f.kind === 'arp-storm') storms.set(f.id, f);
      });
      cleanups.push(() => stream.close());
      const arpwatch = await Arpwatch.start(bed, join(agent.dir, 'arp.dat'));
      cleanups.push(() => arpwatch.stop());

      const senderA = new Announcer(a);
      const senderB = new Announcer(b);
      cleanups.push(() => [senderA, senderB].forEach((s) => s.close()));

      let lease = 0;
      /** One duplicate: A (leased) announces, B claims the same address. */
      const trial = async (into: Latencies, label: string) => {
        const { ip } = await apiRequest<{ ip: string }>(agent.socket, 'POST', '/v1/leases', {
          sandbox: `bench-a-${lease++}`,
          mac: a.mac,
        });
        await senderA.announce(ip);
        await sleep(100);
        const sent = await senderB.announce(ip);
        const [x, y] = await Promise.all([
          bridgeward.wait(ip, 3000),
          arpwatch.reports.wait(ip, 5000),
        ]);
        if (x === null) into.bwMissed++;
        else into.bw.push(x - sent);
        if (y === null) into.awMissed++;
        else into.aw.push(y - sent);
        const ms = (v: number | null) => (v === null ? 'missed' : `${(v - sent).toFixed(2)} ms`);
        progress(`${label} ${ip}: bridgeward ${ms(x)}, arpwatch ${ms(y)}`);
      };
      const latencies = (): Latencies => ({ bw: [], aw: [], bwMissed: 0, awMissed: 0 });

      const quiet = latencies();
      for (let i = 0; i < trials; i++) await trial(quiet, `trial ${i + 1}/${trials}`);

      const stormFigures: Record<string, unknown> = {};
      let reached: StormResult | null = null;
      for (const kind of ['same', 'spoof'] as StormKind[]) {
        // A quiet window of the storm: each watcher's process CPU and RSS.
        await sleep(1000);
        const awPid = arpwatch.pid;
        const before = {
          agent: cpuSeconds(agentPid()),
          aw: cpuSeconds(awPid),
          agentRss: rssMb(agentPid()),
          awRss: rssMb(awPid),
        };
        const r = await startStorm(storm, kind, stormPps, stormSeconds).done;
        await sleep(500); // both drain what is queued
        const agentCpu = cpuSeconds(agentPid()) - before.agent;
        const awCpu = cpuSeconds(awPid) - before.aw;
        if (!r) throw new Error(`the ${kind} storm sender failed`);
        if (kind === 'spoof' || !reached) reached = r;
        const window = r.s + 0.5;
        const figures = {
          pps: Math.round(r.sent / r.s),
          agent_cpu_pct: round((agentCpu / window) * 100, 3),
          arpwatch_cpu_pct: round((awCpu / window) * 100, 3),
          rss_growth_mb: round(rssMb(agentPid()) - before.agentRss, 2),
          arpwatch_rss_growth_mb: round(rssMb(awPid) - before.awRss, 2),
        };
        progress(`${kind} storm: ${JSON.stringify(figures)}`);

        // The same storm again, with duplicates from the other ports while it runs.
        const during = latencies();
        const s = startStorm(storm, kind, stormPps, 600);
        await sleep(1000);
        for (let i = 0; i < stormTrials; i++) {
          await trial(during, `${kind} storm trial ${i + 1}/${stormTrials}`);
        }
        s.stop();
        await s.done;
        if (during.bwMissed) notes.push(`${kind} storm: bridgeward missed ${during.bwMissed}`);
        if (during.awMissed) notes.push(`${kind} storm: arpwatch missed ${during.awMissed}`);
        const prefix = `${kind}_storm`;
        Object.assign(stormFigures, {
          [`${prefix}_pps`]: figures.pps,
          [`${prefix}_agent_cpu_pct`]: figures.agent_cpu_pct,
          [`${prefix}_rss_growth_mb`]: figures.rss_growth_mb,
          [`${prefix}_p99_ms`]: round(p99(during.bw)),
          [`${prefix}_p50_ms`]: round(p50(during.bw)),
          [`${prefix}_arpwatch_p99_ms`]: round(p99(during.aw)),
          [`${prefix}_arpwatch_p50_ms`]: round(p50(during.aw)),
          [`${prefix}_arpwatch_cpu_pct`]: figures.arpwatch_cpu_pct,
          [`${prefix}_arpwatch_rss_growth_mb`]: figures.arpwatch_rss_growth_mb,
          [`${prefix}_bridgeward_missed`]: during.bwMissed,
          [`${prefix}_arpwatch_missed`]: during.awMissed,
        });
      }
      const current = await apiRequest<Finding[]>(agent.socket, 'GET', '/v1/conflicts?all=1');
      const stormFindings = current.filter(
        (f) => f.kind === 'arp-storm' && f.ports.includes(storm.hostIf),
      );
      stormFigures.arp_storm_findings = new Set([
        ...stormFindings.map((f) => f.id),
        ...[...storms.values()].filter((f) => f.ports.includes(storm.hostIf)).map((f) => f.id),
      ]).size;
      stormFigures.arp_storm_peak_arp_per_s = Math.max(
        0,
        ...stormFindings.map((f) => f.rates?.peakArpPerSecond ?? 0),
      );
      stormFigures.arp_storm_peak_limited_per_s = Math.max(
        0,
        ...stormFindings.map((f) => f.rates?.peakLimitedPerSecond ?? 0),
      );
      if (stormFindings.length === 0) notes.push('no arp-storm finding named the storm port');
      await arpwatch.stop();
      stream.close();

      // Fair cost: none / arpwatch / bridgeward, alternating, the same storm each round. The
      // agent stays up (warm, as a daemon is): its link on the storm port is removed for the
      // first two (the pin is the link's only reference) and comes back when the port rejoins
      // the bridge (the agent attaches to every port that joins).
      const pin = join(pinDir, 'links', `tcx-ingress-${storm.hostIfindex}`);
      const detach = async () => {
        rmSync(pin, { force: true });
        await run(['tc', 'qdisc', 'del', 'dev', storm.hostIf, 'clsact'], {
          netns: bed.runnerNs,
          check: false,
        });
      };
      const reattach = async () => {
        await bed.ip(['link', 'set', storm.hostIf, 'nomaster']);
        await bed.ip(['link', 'set', storm.hostIf, 'master', bed.bridge]);
        for (let i = 0; i < 100 && !existsSync(pin) && running.attach === 'tcx'; i++) {
          await sleep(20);
        }
        await sleep(2000); // the bridge forwards again after the port's flap; the agent settles
      };
      const fair = { none: [] as number[], arpwatch: [] as number[], bridgeward: [] as number[] };
      const fairStorm = async (watcherPid: number | null) => {
        const w0 = watcherPid === null ? 0 : cpuSeconds(watcherPid);
        const r = await startStorm(storm, 'same', stormPps, fairSeconds).done;
        const w = watcherPid === null ? 0 : cpuSeconds(watcherPid) - w0;
        if (!r) throw new Error('the storm sender failed');
        return { senderNsPerFrame: (r.cpuS * 1e9) / r.sent, watcherNsPerFrame: (w * 1e9) / r.sent };
      };
      for (let i = 0; i < fairRounds; i++) {
        await detach();
        const none = await fairStorm(null);
        const aw = await Arpwatch.start(bed, join(agent.dir, 'arp-fair.dat'));
        const withAw = await fairStorm(aw.pid);
        await aw.stop();
        await reattach();
        const withBw = await fairStorm(agentPid());
        const cost = (x: typeof none) =>
          x.senderNsPerFrame - none.senderNsPerFrame + x.watcherNsPerFrame;
        fair.none.push(none.senderNsPerFrame);
        fair.arpwatch.push(cost(withAw));
        fair.bridgeward.push(cost(withBw));
        progress(
          `fair round ${i + 1}/${fairRounds}: sender ${none.senderNsPerFrame.toFixed(0)} ns/frame alone; ` +
            `arpwatch +${cost(withAw).toFixed(0)} ns (own ${withAw.watcherNsPerFrame.toFixed(0)}), ` +
            `bridgeward +${cost(withBw).toFixed(0)} ns (own ${withBw.watcherNsPerFrame.toFixed(0)})`,
        );
      }
      const fairBw = median(fair.bridgeward);
      const fairAw = median(fair.arpwatch);
      if (fairAw <= 0) notes.push('arpwatch cost no measurable CPU: fair_cost_ratio not computed');

      const bw50 = p50(quiet.bw);
      const aw50 = p50(quiet.aw);
      if (quiet.bwMissed) notes.push(`bridgeward missed ${quiet.bwMissed} of ${trials} trials`);
      if (quiet.awMissed) notes.push(`arpwatch missed ${quiet.awMissed} of ${trials} trials`);
      notes.push(
        'spoof: the ARP sender MAC and IP are random per frame; the Ethernet source stays the sandbox MAC (no bridge FDB flood)',
        'machine shared with other builds: figures are noisy; fair cost uses medians of alternating rounds',
      );
      return {
        trials,
        bridgeward_p50_ms: round(bw50),
        bridgeward_p99_ms: round(p99(quiet.bw)),
        arpwatch_p50_ms: round(aw50),
        arpwatch_p99_ms: round(p99(quiet.aw)),
        latency_ratio_p50: bw50 !== null && aw50 ? round(bw50 / aw50, 4) : null,
        storm_sender: 'c',
        storm_pps: reached ? Math.round(reached.sent / reached.s) : null,
        storm_s: round(reached?.s, 2),
        storm_trials: stormTrials,
        ...stormFigures,
        fair_rounds: fairRounds,
        fair_sender_alone_ns_per_frame: round(median(fair.none), 1),
        fair_bridgeward_ns_per_frame: round(fairBw, 1),
        fair_arpwatch_ns_per_frame: round(fairAw, 1),
        fair_cost_ratio: fairAw > 0 ? round(fairBw / fairAw, 3) : null,
        fair_bridgeward_rounds_ns: fair.bridgeward.map((x) => round(x, 1)),
        fair_arpwatch_rounds_ns: fair.arpwatch.map((x) => round(x, 1)),
        loadavg_1m: round(loadavg()[0] ?? null, 2),
        bridgeward_missed: quiet.bwMissed,
        arpwatch_missed: quiet.awMissed,
        notes,
      };
    } finally {
      for (const c of cleanups.reverse()) await c();
    }
  },
};
