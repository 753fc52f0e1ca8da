/**
 * `npm run bench -- guard [--rounds N] [--seconds S] [--testruns N]`: what the bridge guard costs
 * the sandboxes' own traffic. Two sandboxes on rt0 with the agent's program attached to both ports
 * (TCX) the whole time, each port bound (MAC and address) as the agent binds it; rounds
 * alternate the guard off and in enforce (off/enforce, then enforce/off, ...): TCP bulk
 * throughput and small-packet UDP rate (iperf3, 60-byte frames, sender on one core) from one to
 * the other. Ratios are enforce/off pair by pair (one pair a round), medians; the target is
 * >= 0.97. Then the program's own time per packet of the sandboxes' UDP traffic in place
 * (kernel.bpf_stats_enabled, one UDP run per setting, alternating `--testruns` times; the stats'
 * own clock reads are in both), and its mean time on such a frame from a bound port under
 * BPF_PROG_TEST_RUN, alternating likewise (each a median of 5 x 1,000,000 runs): the guard's cost
 * per IPv4 packet without the machine's noise.
 *
 * Latency (`--latency-trials N`, default 20): an agent with `--guard monitor` and two leased,
 * bound sandboxes that take turns sending one gratuitous ARP for an address not theirs; the
 * time from the send (CLOCK_MONOTONIC in the sender) to the `spoof-attempt` on the event stream.
 *
 * `--compare nft` adds the alternative the guard was weighed against: the same checks as an
 * nftables `bridge` table (a prerouting chain looking up iifname . ether saddr . ip saddr, and
 * the ARP and MAC equivalents, in concatenated sets), rounds alternating without it and with it
 * (the program attached, its guard off): `nft_tcp_ratio`, `nft_udp_ratio`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiRequest } from '../src/api/client.js';
import { openEventStream } from '../src/api/event-stream-client.js';
import type { Finding } from '../src/detect/finding.js';
import { run } from '../src/exec.js';
import type { Lease } from '../src/store/types.js';
import { AgentProcess } from '../src/testbed/agent-process.js';
import { Testbed, type Sandbox } from '../src/testbed/testbed.js';
import { Announcer } from './announcer.js';
import { nowMs, Reports } from './arpwatch.js';
import {
  median,
  numberFlag as flag,
  progress,
  quantile,
  rounded as round,
  stringFlag as option,
  type Benchmark,
} from './benchmark.js';
import { SandboxPair, type RoundSamples } from './sandbox-pair.js';

/** The MACs the worker's test frame carries (sender, receiver). */
const MACS: [string, string] = ['02:00:00:00:00:02', '02:00:00:00:00:03'];
/** What the guard must keep, enforce vs off. */
const TARGET = 0.97;

/** The guard's checks as an nftables bridge table, for the ports of `sandboxes`. */
function nftGuard(sandboxes: readonly Sandbox[]): string {
  const ports = sandboxes.map((s) => `"${s.hostIf}" . ${s.mac} . ${s.ip}`).join(', ');
  const macs = sandboxes.map((s) => `"${s.hostIf}" . ${s.mac}`).join(', ');
  return `table bridge bwguardbench {
  set allowed4 { type ifname . ether_addr . ipv4_addr; elements = { ${ports} } }
  set allowedmac { type ifname . ether_addr; elements = { ${macs} } }
  chain prerouting {
    type filter hook prerouting priority -200; policy accept;
    ether type ip iifname . ether saddr . ip saddr != @allowed4 drop
    ether type arp iifname . ether saddr . arp saddr ip != @allowed4 drop
    ether type != { ip, arp } iifname . ether saddr != @allowedmac drop
  }
}
`;
}

/**
 * From a spoofed frame to its `spoof-attempt` on the event stream, `trials` times (ms), with an
 * agent in monitor; the spoofers alternate (at most 16 addresses a port).
 */
async function findingLatency(trials: number): Promise<{ ms: number[]; missed: number }> {
  const subnet = '10.8.66.0/24';
  const cleanups: (() => unknown)[] = [];
  try {
    const bed = await Testbed.create({ subnet });
    cleanups.push(() => bed.destroy());
    const bpffs = mkdtempSync(join(tmpdir(), `bw-${bed.id}-bpffs-`));
    await run(['mount', '-t', 'bpf', 'bpf', bpffs]);
    cleanups.push(async () => {
      await run(['umount', bpffs], { check: false });
      rmSync(bpffs, { recursive: true, force: true });
    });
    const agent = AgentProcess.start(bed, {
      subnet,
      guard: 'monitor',
      'bpf-pin-dir': join(bpffs, 'bridgeward'),
    });
    cleanups.push(() => agent.cleanup());
    await agent.ready();
    const spoofers: Sandbox[] = [];
    for (const id of ['bench-a', 'bench-b']) {
      const s = await bed.addSandbox();
      const lease = await apiRequest<Lease>(agent.socket, 'POST', '/v1/leases', {
        sandbox: id,
        mac: s.mac,
      });
      await bed.setSandboxIp(s.netns, lease.ip);
      for (let i = 0; i < 50; i++) {
        await bed.exec(s.netns, ['ping', '-c1', '-W1', bed.gateway], { check: false });
        const leases = await apiRequest<Lease[]>(agent.socket, 'GET', '/v1/leases');
        if (leases.find((l) => l.sandbox === id)?.ifindex === s.hostIfindex) break;
      }
      spoofers.push(s);
    }
    const reports = new Reports();
    const stream = openEventStream(agent.socket, (e) => {
      const f = JSON.parse(e.data) as Finding;
      if (e.event === 'raised' && f.kind === 'spoof-attempt' && f.ip) reports.record(f.ip, nowMs());
    });
    cleanups.push(() => stream.close());
    const senders = spoofers.map((s) => new Announcer(s));
    cleanups.push(() => senders.forEach((x) => x.close()));
    const ms: number[] = [];
    let missed = 0;
    for (let i = 0; i < trials; i++) {
      const ip = `10.8.66.${100 + i}`;
      const sent = await (senders[i % senders.length] as Announcer).announce(ip);
      const at = await reports.wait(ip, 3000);
      if (at === null) missed++;
      else ms.push(at - sent);
      progress(
        `spoof ${i + 1}/${trials} ${ip}: ${at === null ? 'missed' : `${(at - sent).toFixed(2)} ms`}`,
      );
    }
    return { ms, missed };
  } finally {
    for (const c of cleanups.reverse()) await c();
  }
}

/** Medians of the pairwise ratios on / off. */
function pairRatio(on: readonly number[], off: readonly number[]): number {
  return median(on.map((x, i) => x / (off[i] as number)));
}

/** The guard benchmark. */
export const guardBench: Benchmark = {
  async run(argv) {
    const rounds = flag(argv, 'rounds', 9);
    const seconds = flag(argv, 'seconds', 2);
    const testruns = flag(argv, 'testruns', 5);
    const compareNft = option(argv, 'compare') === 'nft';
    const latencyTrials = flag(argv, 'latency-trials', 20);
    if (latencyTrials > 32) throw new Error('at most 32 latency trials (16 addresses a port)');
    const latency = await findingLatency(latencyTrials);
    const pair = await SandboxPair.start({ object: '-', macs: MACS });
    try {
      const { worker, a, b } = pair;
      await worker.ask('attach tcx');
      await worker.ask(`bind ${a.hostIfindex} ${a.mac} ${a.ip}`);
      await worker.ask(`bind ${b.hostIfindex} ${b.mac} ${b.ip}`);
      const mode = (on: boolean) => worker.ask(`guard ${on ? 'enforce' : 'off'}`);
      const s = await pair.alternate(rounds, seconds, mode, ['off', 'enforce']);

      const ns = { off: [] as number[], enforce: [] as number[] };
      const inPlace = { off: [] as number[], enforce: [] as number[] };
      const statsBefore = readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim();
      await run(['sysctl', '-qw', 'kernel.bpf_stats_enabled=1']);
      try {
        for (let i = 0; i < testruns; i++) {
          for (const on of i % 2 === 0 ? [false, true] : [true, false]) {
            await mode(on);
            const key = on ? 'enforce' : 'off';
            const s0 = await worker.ask<{ runTimeNs: number; runCnt: number }>('stats');
            await pair.iperf(true, seconds);
            const s1 = await worker.ask<{ runTimeNs: number; runCnt: number }>('stats');
            inPlace[key].push((s1.runTimeNs - s0.runTimeNs) / Math.max(1, s1.runCnt - s0.runCnt));
          }
        }
      } finally {
        await run(['sysctl', '-qw', `kernel.bpf_stats_enabled=${statsBefore}`]);
      }
      // Without bpf_stats: its clock reads would be in every test run.
      for (let i = 0; i < testruns; i++) {
        for (const on of i % 2 === 0 ? [false, true] : [true, false]) {
          await mode(on);
          const r = await worker.ask<{ ns: number }>(`testrun ${a.hostIfindex}`);
          ns[on ? 'enforce' : 'off'].push(r.ns);
        }
      }
      await mode(false);
      progress(
        `bpf_stats ns/packet of the UDP traffic: off ${inPlace.off.map((x) => x.toFixed(1)).join(' ')}; enforce ${inPlace.enforce.map((x) => x.toFixed(1)).join(' ')}`,
      );
      progress(
        `BPF_PROG_TEST_RUN ns/packet: off ${ns.off.join(' ')}; enforce ${ns.enforce.join(' ')}`,
      );

      let nft: RoundSamples | null = null;
      if (compareNft) {
        const table = nftGuard([a, b]);
        const netns = pair.bed.runnerNs;
        nft = await pair.alternate(
          rounds,
          seconds,
          (on) =>
            on
              ? run(['nft', '-f', '-'], { netns, input: table })
              : run(['nft', 'delete', 'table', 'bridge', 'bwguardbench'], { netns, check: false }),
          ['off', 'nft bridge table'],
        );
      }

      const tcpRatio = pairRatio(s.tcpOn, s.tcpOff);
      const udpRatio = pairRatio(s.udpOn, s.udpOff);
      return {
        tcp_ratio: round(tcpRatio, 4),
        udp_ratio: round(udpRatio, 4),
        tcp_gbps_off: round(median(s.tcpOff)),
        tcp_gbps_enforce: round(median(s.tcpOn)),
        udp_pps_off: Math.round(median(s.udpOff)),
        udp_pps_enforce: Math.round(median(s.udpOn)),
        target: TARGET,
        target_met: tcpRatio >= TARGET && udpRatio >= TARGET,
        bpf_test_run_ns_off: round(median(ns.off), 1),
        bpf_test_run_ns_enforce: round(median(ns.enforce), 1),
        guard_ns_per_packet: round(median(ns.enforce) - median(ns.off), 1),
        bpf_stats_ns_off: round(median(inPlace.off), 1),
        bpf_stats_ns_enforce: round(median(inPlace.enforce), 1),
        guard_ns_per_packet_in_place: round(median(inPlace.enforce) - median(inPlace.off), 1),
        spoof_finding_p50_ms: round(latency.ms.length ? median(latency.ms) : null, 2),
        spoof_finding_p99_ms: round(latency.ms.length ? quantile(latency.ms, 0.99) : null, 2),
        spoof_finding_max_ms: round(latency.ms.length ? Math.max(...latency.ms) : null, 2),
        spoof_finding_trials: latencyTrials,
        spoof_finding_missed: latency.missed,
        ...(nft
          ? {
              nft_tcp_ratio: round(pairRatio(nft.tcpOn, nft.tcpOff), 4),
              nft_udp_ratio: round(pairRatio(nft.udpOn, nft.udpOff), 4),
              nft_tcp_gbps_rounds: {
                off: nft.tcpOff.map((x) => round(x)),
                nft: nft.tcpOn.map((x) => round(x)),
              },
              nft_udp_pps_rounds: {
                off: nft.udpOff.map(Math.round),
                nft: nft.udpOn.map(Math.round),
              },
            }
          : {}),
        rounds,
        seconds,
        tcp_gbps_rounds: {
          off: s.tcpOff.map((x) => round(x)),
          enforce: s.tcpOn.map((x) => round(x)),
        },
        udp_pps_rounds: { off: s.udpOff.map(Math.round), enforce: s.udpOn.map(Math.round) },
        loadavg_1m: round(loadavg()[0] ?? null, 2),
        notes: [
          'machine shared with other builds: figures are noisy; rounds alternate, ratios pair by pair, medians',
          'the program stays attached throughout; only the guard mode changes between rounds',
          'udp: iperf3 -u -b 0 -l 18, sender on CPU 1; packets sent per second',
        ],
      };
    } finally {
      await pair.close();
    }
  },
};
