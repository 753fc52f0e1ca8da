/**
 * `npm run bench -- dataplane [--rounds N] [--seconds S] [--attach tcx|clsact] [--object PATH]`:
 * what the ARP program on every rt0 port costs the sandboxes' own traffic. Two sandboxes on rt0;
 * TCP bulk throughput (iperf3) and small-packet UDP rate (iperf3, 18-byte payloads: 60-byte
 * frames, 64 on the wire with the FCS; the sender pinned to one core, which also does the
 * veth, bridge and tc work of every packet it sends) from one to the
 * other, with the agent's program attached to both ports (`on`) and with none (`off`), in
 * alternating rounds (off/on, then on/off, ...), medians. Then, with kernel.bpf_stats_enabled
 * for one more UDP run, the program's run time per packet (every packet there is non-ARP), and
 * its own mean time on such a frame under BPF_PROG_TEST_RUN (no bpf_stats clock reads in it).
 * `--object` measures another build of the program (e.g. an older one) the same way.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { run } from '../src/exec.js';
import {
  median,
  numberFlag as flag,
  progress,
  rounded as round,
  stringFlag as option,
  type Benchmark,
} from './benchmark.js';
import { SandboxPair } from './sandbox-pair.js';

/** The dataplane benchmark. */
export const dataplaneBench: Benchmark = {
  async run(argv) {
    const rounds = flag(argv, 'rounds', 5);
    const seconds = flag(argv, 'seconds', 3);
    const attach = option(argv, 'attach') === 'clsact' ? 'clsact' : 'tcx';
    const object = option(argv, 'object') ?? '-';
    const statsBefore = readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim();
    const pair = await SandboxPair.start({ object });
    try {
      const { worker } = pair;
      const modes = async (on: boolean) => {
        if (!on) return void (await worker.ask('detach'));
        const r = await worker.ask<{ modes: string[] }>(`attach ${attach}`);
        if (r.modes.some((m) => m !== attach)) throw new Error(`attached as ${r.modes.join()}`);
      };
      const s = await pair.alternate(rounds, seconds, modes);
      const tcp = { off: s.tcpOff, on: s.tcpOn };
      const udp = { off: s.udpOff, on: s.udpOn };

      await modes(true);
      await run(['sysctl', '-qw', 'kernel.bpf_stats_enabled=1']);
      const s0 = await worker.ask<{ runTimeNs: number; runCnt: number }>('stats');
      const statsUdp = await pair.iperf(true, seconds);
      const s1 = await worker.ask<{ runTimeNs: number; runCnt: number }>('stats');
      await run(['sysctl', '-qw', `kernel.bpf_stats_enabled=${statsBefore}`]);
      await modes(false);
      const testRun = await worker.ask<{ ns: number }>('testrun');
      const runs = s1.runCnt - s0.runCnt;
      progress(
        `bpf_stats: ${runs} runs, ${s1.runTimeNs - s0.runTimeNs} ns (udp ${Math.round(statsUdp)} packets/s)`,
      );

      const tcpOff = median(tcp.off);
      const tcpOn = median(tcp.on);
      const udpOff = median(udp.off);
      const udpOn = median(udp.on);
      return {
        attach,
        object: object === '-' ? 'bpf/arp_observer.bpf.o' : object,
        rounds,
        seconds,
        tcp_gbps_off: round(tcpOff),
        tcp_gbps_on: round(tcpOn),
        tcp_ratio: round(tcpOn / tcpOff, 4),
        udp_pps_off: Math.round(udpOff),
        udp_pps_on: Math.round(udpOn),
        udp_ratio: round(udpOn / udpOff, 4),
        bpf_ns_per_packet: runs > 0 ? round((s1.runTimeNs - s0.runTimeNs) / runs, 1) : null,
        bpf_runs: runs,
        bpf_test_run_ns_per_packet: round(testRun.ns, 1),
        tcp_gbps_rounds: { off: tcp.off.map((x) => round(x)), on: tcp.on.map((x) => round(x)) },
        udp_pps_rounds: { off: udp.off.map(Math.round), on: udp.on.map(Math.round) },
        loadavg_1m: round(loadavg()[0] ?? null, 2),
        notes: [
          'machine shared with other builds: figures are noisy; rounds alternate, medians',
          'udp: iperf3 -u -b 0 -l 18, sender on CPU 1; packets sent per second (each crosses veth, bridge and the program in the sender context)',
        ],
      };
    } finally {
      await run(['sysctl', '-qw', `kernel.bpf_stats_enabled=${statsBefore}`], { check: false });
      await pair.close();
    }
  },
};
