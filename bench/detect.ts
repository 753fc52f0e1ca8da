/**
 * `npm run bench -- detect [--trials N] [--storm-pps N] [--storm-seconds N]`: bridgeward's
 * conflict detection side by side with Debian's arpwatch watching the same rt0 in the same run.
 *
 * Latency: per trial sandbox A gets a lease (through the API) and announces its address, then
 * sandbox B claims it with one gratuitous ARP; the time from B's send (CLOCK_MONOTONIC in the
 * sender) to bridgeward's `duplicate-ip` event on `GET /v1/events`, and to arpwatch's `changed
 * ethernet address` report. CPU: a sustained storm of ARP requests from a third sandbox; the
 * agent's process time (all threads, /proc/PID/task/TID/schedstat) plus its eBPF program's run
 * time (`kernel.bpf_stats_enabled`, bpftool), against arpwatch's process time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { apiRequest } from '../src/api/client.js';
import { openEventStream } from '../src/api/event-stream-client.js';
import type { Finding } from '../src/detect/finding.js';
import { run } from '../src/exec.js';
import { AgentProcess } from '../src/testbed/agent-process.js';
import { Testbed, type Sandbox } from '../src/testbed/testbed.js';
import { progress, quantile, type Benchmark } from './benchmark.js';

const SUBNET = '10.8.64.0/24';

/** Sends crafted ARP frames from inside a sandbox; `send(ip)` resolves with the send time. */
const SENDER = `
import socket, struct, sys, time
mac = bytes.fromhex(sys.argv[1].replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
def arp(op, sip, tip):
    return (b"\\xff" * 6 + mac + b"\\x08\\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, op)
            + mac + socket.inet_aton(sip) + b"\\x00" * 6 + socket.inet_aton(tip)).ljust(60, b"\\x00")
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "announce":
        s.send(arp(1, cmd[1], cmd[1]))
        print(time.monotonic_ns(), flush=True)
    elif cmd[0] == "storm":
        pps, secs, sip = int(cmd[1]), float(cmd[2]), cmd[3]
        frames = [arp(1, sip, "10.8.64.%d" % (201 + i)) for i in range(50)]
        start = time.monotonic(); sent = 0
        while True:
            now = time.monotonic() - start
            if now >= secs: break
            due = int(now * pps) + 1
            while sent < due:
                s.send(frames[sent % 50]); sent += 1
            time.sleep(0.0005)
        print(sent, time.monotonic() - start, flush=True)
`;

class FrameSender {
  readonly #proc: ChildProcess;
  readonly #lines: AsyncIterator<string>;

  constructor(sandbox: Sandbox) {
    this.#proc = spawn(
      'ip',
      ['netns', 'exec', sandbox.netns, 'python3', '-u', '-c', SENDER, sandbox.mac],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    this.#lines = createInterface({ input: this.#proc.stdout! })[Symbol.asyncIterator]();
  }

  async #ask(cmd: string): Promise<string> {
    this.#proc.stdin!.write(`${cmd}\n`);
    const r = await this.#lines.next();
    if (r.done) throw new Error('frame sender exited');
    return r.value;
  }

  /** Sends one gratuitous ARP for `ip`; resolves with the send time (CLOCK_MONOTONIC, ms). */
  async announce(ip: string): Promise<number> {
    return Number(BigInt(await this.#ask(`announce ${ip}`)) / 1000n) / 1000;
  }

  /** Sends ARP requests at `pps` for `seconds`; resolves with frames sent and elapsed seconds. */
  async storm(
    pps: number,
    seconds: number,
    senderIp: string,
  ): Promise<{ sent: number; s: number }> {
    const [sent, s] = (await this.#ask(`storm ${pps} ${seconds} ${senderIp}`))
      .split(' ')
      .map(Number);
    return { sent: sent ?? 0, s: s ?? 0 };
  }

  close(): void {
    this.#proc.kill();
  }
}

/** Waits for per-address reports, keyed by address. */
class Reports {
  readonly #seen = new Map<string, number>();
  readonly #waiting = new Map<string, (at: number) => void>();

  record(ip: string, at: number): void {
    if (this.#seen.has(ip)) return;
    this.#seen.set(ip, at);
    this.#waiting.get(ip)?.(at);
  }

  wait(ip: string, timeoutMs: number): Promise<number | null> {
    const seen = this.#seen.get(ip);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), timeoutMs);
      this.#waiting.set(ip, (at) => {
        clearTimeout(timer);
        resolve(at);
      });
    });
  }
}

/** CLOCK_MONOTONIC in ms, the clock the frame sender stamps with (same clock in every process). */
function nowMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

/** On-CPU time of all threads of a process in seconds (/proc/PID/task/TID/schedstat, ns). */
function cpuSeconds(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns / 1e9;
}

/** Run time (s) and run count of an eBPF program (needs kernel.bpf_stats_enabled=1). */
async function bpfRun(progId: number): Promise<{ s: number; runs: number }> {
  const r = await run(['bpftool', '-j', 'prog', 'show', 'id', String(progId)]);
  const info = JSON.parse(r.stdout) as { run_time_ns?: number; run_cnt?: number };
  return { s: (info.run_time_ns ?? 0) / 1e9, runs: info.run_cnt ?? 0 };
}

function flag(argv: string[], name: string, dflt: number): number {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

const round = (x: number | null, d = 3) =>
  x === null || !Number.isFinite(x) ? null : Number(x.toFixed(d));

/** The detect benchmark. */
export const detectBench: Benchmark = {
  async run(argv) {
    const trials = flag(argv, 'trials', 30);
    if (trials > 150) throw new Error('--trials is at most 150 (one lease per trial in a /24)');
    const stormPps = flag(argv, 'storm-pps', 20_000);
    const stormSeconds = flag(argv, 'storm-seconds', 10);
    const notes: string[] = [];
    const cleanups: (() => Promise<void> | void)[] = [];
    const statsBefore = readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim();
    try {
      const bed = await Testbed.create({ subnet: SUBNET });
      cleanups.push(() => bed.destroy());
      const [a, b, storm] = [
        await bed.addSandbox(),
        await bed.addSandbox(),
        await bed.addSandbox(),
      ] as const;
      const agent = AgentProcess.start(bed, { subnet: SUBNET });
      cleanups.push(() => agent.cleanup());
      await agent.ready();
      const status = await agent.json<{ observers: { bpf: boolean } }>(['status']);
      if (!status.observers.bpf)
        notes.push('eBPF observer not running: bridgeward used netlink only');
      const agentPid = Number(agent.logs[0]?.pid);
      progress(`agent pid ${agentPid}, eBPF ${status.observers.bpf}`);

      const bridgeward = new Reports();
      const stream = openEventStream(agent.socket, (e) => {
        if (e.event !== 'raised') return;
        const f = JSON.parse(e.data) as Finding;
        if (f.kind === 'duplicate-ip' && f.ip) bridgeward.record(f.ip, nowMs());
      });
      cleanups.push(() => stream.close());

      const arpwatch = new Reports();
      const datFile = join(agent.dir, 'arp.dat');
      writeFileSync(datFile, ''); // arpwatch needs an existing database
      const aw = spawn(
        'ip',
        [
          'netns',
          'exec',
          bed.runnerNs,
          'arpwatch',
          '-d',
          '-N',
          '-p',
          '-i',
          bed.bridge,
          '-f',
          datFile,
        ],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      cleanups.push(() => {
        aw.kill();
        rmSync(datFile, { force: true });
      });
      for (const out of [aw.stdout, aw.stderr]) {
        createInterface({ input: out }).on('line', (line) => {
          const m = /^Subject: (?:changed ethernet address|flip flop) \(([\d.]+)\)/.exec(line);
          if (m) arpwatch.record(m[1] as string, nowMs());
        });
      }
      await new Promise((r) => setTimeout(r, 1000)); // arpwatch opens its capture
      if (aw.exitCode !== null) throw new Error(`arpwatch exited ${aw.exitCode}`);

      const senderA = new FrameSender(a);
      const senderB = new FrameSender(b);
      const senderS = new FrameSender(storm);
      cleanups.push(() => [senderA, senderB, senderS].forEach((s) => s.close()));

      const bw: number[] = [];
      const awl: number[] = [];
      let bwMissed = 0;
      let awMissed = 0;
      for (let i = 0; i < trials; i++) {
        // A holds a lease on the address, as a real sandbox would; B is the duplicate.
        const { ip } = await apiRequest<{ ip: string }>(agent.socket, 'POST', '/v1/leases', {
          sandbox: `bench-a-${i}`,
          mac: a.mac,
        });
        await senderA.announce(ip);
        await new Promise((r) => setTimeout(r, 100));
        const sent = await senderB.announce(ip);
        const [x, y] = await Promise.all([bridgeward.wait(ip, 3000), arpwatch.wait(ip, 5000)]);
        if (x === null) bwMissed++;
        else bw.push(x - sent);
        if (y === null) awMissed++;
        else awl.push(y - sent);
        progress(
          `trial ${i + 1}/${trials} ${ip}: bridgeward ${x === null ? 'missed' : (x - sent).toFixed(2) + ' ms'}, arpwatch ${y === null ? 'missed' : (y - sent).toFixed(2) + ' ms'}`,
        );
      }
      if (bwMissed) notes.push(`bridgeward missed ${bwMissed} of ${trials} trials`);
      if (awMissed) notes.push(`arpwatch missed ${awMissed} of ${trials} trials`);

      await run(['sysctl', '-qw', 'kernel.bpf_stats_enabled=1']);
      const tc = await bed.exec(bed.runnerNs, [
        'tc',
        'filter',
        'show',
        'dev',
        storm.hostIf,
        'ingress',
      ]);
      const progId = Number(/\bid (\d+)/.exec(tc.stdout)?.[1] ?? NaN);
      if (!Number.isFinite(progId))
        notes.push('no eBPF program on the storm port: bpf CPU not measured');
      const awPid = aw.pid as number;
      const idle0 = { agent: cpuSeconds(agentPid), arpwatch: cpuSeconds(awPid) };
      await new Promise((r) => setTimeout(r, stormSeconds * 1000));
      const idle = {
        agent: cpuSeconds(agentPid) - idle0.agent,
        arpwatch: cpuSeconds(awPid) - idle0.arpwatch,
      };
      progress(
        `idle for ${stormSeconds} s: cpu agent ${idle.agent.toFixed(4)} s, arpwatch ${idle.arpwatch.toFixed(4)} s`,
      );
      const before = {
        agent: cpuSeconds(agentPid),
        arpwatch: cpuSeconds(awPid),
        bpf: Number.isFinite(progId) ? await bpfRun(progId) : { s: 0, runs: 0 },
      };
      progress(`storm: ${stormPps} ARP/s for ${stormSeconds} s`);
      const stormResult = await senderS.storm(stormPps, stormSeconds, '10.8.64.200');
      await new Promise((r) => setTimeout(r, 500)); // let both drain what is queued
      const after = {
        agent: cpuSeconds(agentPid),
        arpwatch: cpuSeconds(awPid),
        bpf: Number.isFinite(progId) ? await bpfRun(progId) : { s: 0, runs: 0 },
      };
      const agentCpu = after.agent - before.agent;
      const bpfCpu = Number.isFinite(progId) ? after.bpf.s - before.bpf.s : null;
      const bpfRuns = after.bpf.runs - before.bpf.runs;
      const awCpu = after.arpwatch - before.arpwatch;
      const stormPpsMeasured = stormResult.sent / stormResult.s;
      progress(
        `storm sent ${stormResult.sent} frames in ${stormResult.s.toFixed(2)} s; cpu agent ${agentCpu.toFixed(4)} s, bpf ${bpfCpu?.toFixed(4)} s, arpwatch ${awCpu.toFixed(4)} s`,
      );
      if (awCpu === 0) notes.push('arpwatch used no measurable CPU: cpu_ratio not computed');
      notes.push(
        "arpwatch's in-kernel capture cost (packet-socket filter and copy, in softirq) is not charged to its process; bridgeward's eBPF run time is charged in full",
      );

      const p50 = (xs: number[]) => (xs.length ? quantile(xs, 0.5) : null);
      const p99 = (xs: number[]) => (xs.length ? quantile(xs, 0.99) : null);
      const bw50 = p50(bw);
      const aw50 = p50(awl);
      return {
        trials,
        bridgeward_p50_ms: round(bw50),
        bridgeward_p99_ms: round(p99(bw)),
        arpwatch_p50_ms: round(aw50),
        arpwatch_p99_ms: round(p99(awl)),
        latency_ratio_p50: bw50 !== null && aw50 ? round(bw50 / aw50, 4) : null,
        storm_pps: Math.round(stormPpsMeasured),
        storm_s: round(stormResult.s, 2),
        bridgeward_cpu_s: round(agentCpu, 4),
        bridgeward_bpf_cpu_s: round(bpfCpu, 4),
        arpwatch_cpu_s: round(awCpu, 4),
        cpu_ratio: awCpu > 0 ? round((agentCpu + (bpfCpu ?? 0)) / awCpu, 4) : null,
        bridgeward_bpf_runs: bpfRuns,
        bridgeward_bpf_ns_per_frame:
          bpfCpu !== null && bpfRuns > 0 ? round((bpfCpu * 1e9) / bpfRuns, 1) : null,
        arpwatch_ns_per_frame:
          stormResult.sent > 0 ? round((awCpu * 1e9) / stormResult.sent, 1) : null,
        bridgeward_idle_cpu_s: round(idle.agent, 4),
        arpwatch_idle_cpu_s: round(idle.arpwatch, 4),
        loadavg_1m: round(loadavg()[0] ?? null, 2),
        bridgeward_missed: bwMissed,
        arpwatch_missed: awMissed,
        notes,
      };
    } finally {
      await run(['sysctl', '-qw', `kernel.bpf_stats_enabled=${statsBefore}`], { check: false });
      for (const c of cleanups.reverse()) await c();
    }
  },
};
