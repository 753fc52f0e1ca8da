/**
 * Two sandboxes on rt0 for the data-plane benchmarks (`dataplane`, `guard`): a test bed, a bpffs
 * of its own, the attach worker (bench/attach-worker.ts) holding the agent's program for both
 * ports, an iperf3 server in the second sandbox, and the measurements: TCP bulk throughput and
 * small-packet UDP rate from the first to the second, in rounds that alternate two settings.
 *
 * @example
 * const pair = await SandboxPair.start({ object: '-' });
 * const r = await pair.alternate(5, 3, (on) => pair.worker.ask(on ? 'attach tcx' : 'detach'));
 * await pair.close();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { run } from '../src/exec.js';
import { REPO_ROOT } from '../src/native.js';
import { Testbed, type Sandbox } from '../src/testbed/testbed.js';
import { progress } from './benchmark.js';

const WORKER = join(REPO_ROOT, 'dist', 'bench', 'attach-worker.js');

/** The attach worker in the runner namespace: one command a line, one JSON answer a line. */
export class AttachWorker {
  readonly #proc: ChildProcess;
  readonly #lines: AsyncIterator<string>;

  /** Starts the worker for `ports` with `object` (the agent's program: '-'), pins in `pinDir`. */
  constructor(bed: Testbed, pinDir: string, object: string, ports: number[]) {
    const args = [WORKER, pinDir, object, ...ports.map(String)];
    this.#proc = spawn('ip', ['netns', 'exec', bed.runnerNs, process.execPath, ...args], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.#lines = createInterface({ input: this.#proc.stdout! })[Symbol.asyncIterator]();
  }

  /** Sends one command and parses its answer. @throws Error with the worker's error. */
  async ask<T>(cmd: string): Promise<T> {
    this.#proc.stdin!.write(`${cmd}\n`);
    const r = await this.#lines.next();
    if (r.done) throw new Error('attach worker exited');
    const out = JSON.parse(r.value) as T & { error?: string };
    if (out.error) throw new Error(out.error);
    return out;
  }

  /** Ends the worker (attachments stay until the pins and links go with the test bed). */
  close(): void {
    this.#proc.stdin!.end();
  }
}

/** Throughput samples of alternating rounds, by setting. */
export interface RoundSamples {
  /** TCP Gbit/s with the setting off, per round. */
  readonly tcpOff: number[];
  /** TCP Gbit/s with the setting on, per round. */
  readonly tcpOn: number[];
  /** UDP packets/s with the setting off, per round. */
  readonly udpOff: number[];
  /** UDP packets/s with the setting on, per round. */
  readonly udpOn: number[];
}

interface IperfResult {
  end: {
    sum_received?: { bits_per_second: number };
    sum?: { packets?: number; seconds?: number };
  };
}

/** Two sandboxes and what measures traffic between them. */
export class SandboxPair {
  /** The test bed. */
  readonly bed: Testbed;
  /** The sender. */
  readonly a: Sandbox;
  /** The receiver (runs iperf3 -s). */
  readonly b: Sandbox;
  /** The attach worker for both ports. */
  readonly worker: AttachWorker;
  readonly #cleanups: (() => unknown)[];

  private constructor(
    bed: Testbed,
    a: Sandbox,
    b: Sandbox,
    worker: AttachWorker,
    cleanups: (() => unknown)[],
  ) {
    this.bed = bed;
    this.a = a;
    this.b = b;
    this.worker = worker;
    this.#cleanups = cleanups;
  }

  /**
   * Creates the pair (the sender 10.8.64.2, the receiver 10.8.64.3, with `macs` when given), the
   * worker for `object`, and the iperf3 server; pings once so both know each other.
   */
  static async start(opts: { object: string; macs?: [string, string] }): Promise<SandboxPair> {
    const cleanups: (() => unknown)[] = [];
    try {
      const bed = await Testbed.create({ subnet: '10.8.64.0/24' });
      cleanups.push(() => bed.destroy());
      const [macA, macB] = opts.macs ?? [];
      const a = await bed.addSandbox({ ip: '10.8.64.2', ...(macA ? { mac: macA } : {}) });
      const b = await bed.addSandbox({ ip: '10.8.64.3', ...(macB ? { mac: macB } : {}) });
      const bpffs = mkdtempSync(join(tmpdir(), `bw-${bed.id}-bpffs-`));
      await run(['mount', '-t', 'bpf', 'bpf', bpffs]);
      cleanups.push(async () => {
        await run(['umount', bpffs], { check: false });
        rmSync(bpffs, { recursive: true, force: true });
      });
      const worker = new AttachWorker(bed, join(bpffs, 'bridgeward'), opts.object, [
        a.hostIfindex,
        b.hostIfindex,
      ]);
      cleanups.push(() => worker.close());
      const server = spawn('ip', ['netns', 'exec', b.netns, 'iperf3', '-s'], { stdio: 'ignore' });
      cleanups.push(() => server.kill());
      await new Promise((r) => setTimeout(r, 500));
      await bed.exec(a.netns, ['ping', '-c', '1', '-W', '1', b.ip as string]);
      return new SandboxPair(bed, a, b, worker, cleanups);
    } catch (e) {
      for (const c of cleanups.reverse()) await c();
      throw e;
    }
  }

  /**
   * One iperf3 run from a to b for `seconds`: TCP Gbit/s, or (udp) packets/s of 18-byte payloads
   * (60-byte frames) with the sender pinned to CPU 1.
   */
  async iperf(udp: boolean, seconds: number): Promise<number> {
    const argv = ['iperf3', '-c', this.b.ip as string, '-t', String(seconds), '-J'];
    if (udp) argv.push('-u', '-b', '0', '-l', '18', '-A', '1');
    const r = await this.bed.exec(this.a.netns, argv);
    const out = JSON.parse(r.stdout) as IperfResult;
    if (!udp) return (out.end.sum_received?.bits_per_second ?? NaN) / 1e9;
    const sum = out.end.sum ?? {};
    return (sum.packets ?? NaN) / (sum.seconds ?? NaN);
  }

  /**
   * `rounds` rounds of TCP then UDP, each with the setting off and on, the order alternating
   * (off/on, then on/off, ...); `set` switches it; `names` label the progress lines.
   */
  async alternate(
    rounds: number,
    seconds: number,
    set: (on: boolean) => Promise<unknown>,
    names: [off: string, on: string] = ['off', 'on'],
  ): Promise<RoundSamples> {
    const s: RoundSamples = { tcpOff: [], tcpOn: [], udpOff: [], udpOn: [] };
    for (let i = 0; i < rounds; i++) {
      for (const on of i % 2 === 0 ? [false, true] : [true, false]) {
        await set(on);
        const tcp = await this.iperf(false, seconds);
        const udp = await this.iperf(true, seconds);
        (on ? s.tcpOn : s.tcpOff).push(tcp);
        (on ? s.udpOn : s.udpOff).push(udp);
        progress(
          `round ${i + 1}/${rounds} ${names[on ? 1 : 0]}: tcp ${tcp.toFixed(2)} Gbit/s, udp ${Math.round(udp)} packets/s`,
        );
      }
    }
    return s;
  }

  /** Removes everything the pair created. */
  async close(): Promise<void> {
    for (const c of this.#cleanups.reverse()) await c();
  }
}
