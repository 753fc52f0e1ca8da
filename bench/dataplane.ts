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
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { run } from '../src/exec.js';
import { REPO_ROOT } from '../src/native.js';
import { Testbed } from '../src/testbed/testbed.js';
import {
  median,
  numberFlag as flag,
  progress,
  rounded as round,
  stringFlag as option,
  type Benchmark,
} from './benchmark.js';

const SUBNET = '10.8.64.0/24';
const WORKER = join(REPO_ROOT, 'dist', 'bench', 'attach-worker.js');

/** The attach worker in the runner namespace (bench/attach-worker.ts). */
class Attacher {
  readonly #proc: ChildProcess;
  readonly #lines: AsyncIterator<string>;

  constructor(bed: Testbed, pinDir: string, object: string, ports: number[]) {
    const args = [WORKER, pinDir, object, ...ports.map(String)];
    this.#proc = spawn('ip', ['netns', 'exec', bed.runnerNs, process.execPath, ...args], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.#lines = createInterface({ input: this.#proc.stdout! })[Symbol.asyncIterator]();
  }

  async ask<T>(cmd: string): Promise<T> {
    this.#proc.stdin!.write(`${cmd}\n`);
    const r = await this.#lines.next();
    if (r.done) throw new Error('attach worker exited');
    const out = JSON.parse(r.value) as T & { error?: string };
    if (out.error) throw new Error(out.error);
    return out;
  }

  close(): void {
    this.#proc.stdin!.end();
  }
}

interface IperfResult {
  end: {
    sum_received?: { bits_per_second: number };
    sum?: { packets?: number; lost_packets?: number; seconds?: number };
  };
}

/** The dataplane benchmark. */
export const dataplaneBench: Benchmark = {
  async run(argv) {
    const rounds = flag(argv, 'rounds', 5);
    const seconds = flag(argv, 'seconds', 3);
    const attach = option(argv, 'attach') === 'clsact' ? 'clsact' : 'tcx';
    const object = option(argv, 'object') ?? '-';
    const cleanups: (() => unknown)[] = [];
    const statsBefore = readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim();
    try {
      const bed = await Testbed.create({ subnet: SUBNET });
      cleanups.push(() => bed.destroy());
      const a = await bed.addSandbox({ ip: '10.8.64.2' });
      const b = await bed.addSandbox({ ip: '10.8.64.3' });
      const bpffs = mkdtempSync(join(tmpdir(), `bw-${bed.id}-bpffs-`));
      await run(['mount', '-t', 'bpf', 'bpf', bpffs]);
      cleanups.push(async () => {
        await run(['umount', bpffs], { check: false });
        rmSync(bpffs, { recursive: true, force: true });
      });
      const attacher = new Attacher(bed, join(bpffs, 'bridgeward'), object, [
        a.hostIfindex,
        b.hostIfindex,
      ]);
      cleanups.push(() => attacher.close());
      const server = spawn('ip', ['netns', 'exec', b.netns, 'iperf3', '-s'], { stdio: 'ignore' });
      cleanups.push(() => server.kill());
      await new Promise((r) => setTimeout(r, 500));
      await bed.exec(a.netns, ['ping', '-c', '1', '-W', '1', b.ip as string]);

      const iperf = async (udp: boolean): Promise<number> => {
        const argv = ['iperf3', '-c', b.ip as string, '-t', String(seconds), '-J'];
        if (udp) argv.push('-u', '-b', '0', '-l', '18', '-A', '1');
        const r = await bed.exec(a.netns, argv);
        const out = JSON.parse(r.stdout) as IperfResult;
        if (!udp) return (out.end.sum_received?.bits_per_second ?? NaN) / 1e9;
        const sum = out.end.sum ?? {};
        return (sum.packets ?? NaN) / (sum.seconds ?? NaN);
      };
      const modes = async (on: boolean) => {
        if (!on) return void (await attacher.ask('detach'));
        const r = await attacher.ask<{ modes: string[] }>(`attach ${attach}`);
        if (r.modes.some((m) => m !== attach)) throw new Error(`attached as ${r.modes.join()}`);
      };

      const tcp = { off: [] as number[], on: [] as number[] };
      const udp = { off: [] as number[], on: [] as number[] };
      for (let i = 0; i < rounds; i++) {
        for (const on of i % 2 === 0 ? [false, true] : [true, false]) {
          await modes(on);
          const key = on ? 'on' : 'off';
          tcp[key].push(await iperf(false));
          udp[key].push(await iperf(true));
          progress(
            `round ${i + 1}/${rounds} ${key}: tcp ${tcp[key].at(-1)?.toFixed(2)} Gbit/s, udp ${Math.round(udp[key].at(-1) ?? 0)} packets/s`,
          );
        }
      }

      await modes(true);
      await run(['sysctl', '-qw', 'kernel.bpf_stats_enabled=1']);
      const s0 = await attacher.ask<{ runTimeNs: number; runCnt: number }>('stats');
      const statsUdp = await iperf(true);
      const s1 = await attacher.ask<{ runTimeNs: number; runCnt: number }>('stats');
      await run(['sysctl', '-qw', `kernel.bpf_stats_enabled=${statsBefore}`]);
      await modes(false);
      const testRun = await attacher.ask<{ ns: number }>('testrun');
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
      for (const c of cleanups.reverse()) await c();
    }
  },
};
