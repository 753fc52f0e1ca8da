/**
 * Debian's arpwatch watching the test bed's bridge, as the detect benchmark's peer: its reports
 * of a changed address (`changed ethernet address`, `flip flop`) by address and time.
 *
 * @example
 * const aw = await Arpwatch.start(bed, join(dir, 'arp.dat'));
 * await aw.reports.wait('10.8.64.2', 5000); // CLOCK_MONOTONIC ms of the report, or null
 * aw.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Testbed } from '../src/testbed/testbed.js';

/** CLOCK_MONOTONIC in ms, the clock the frame senders stamp with (same in every process). */
export function nowMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

/** Per-address reports, first one each, and waiting for them. */
export class Reports {
  readonly #seen = new Map<string, number>();
  readonly #waiting = new Map<string, (at: number) => void>();

  /** Records a report on `ip` at `at` (later reports on the same address are ignored). */
  record(ip: string, at: number): void {
    if (this.#seen.has(ip)) return;
    this.#seen.set(ip, at);
    this.#waiting.get(ip)?.(at);
  }

  /** The time of the first report on `ip`, waiting up to `timeoutMs`; null when none came. */
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

/** A running arpwatch. */
export class Arpwatch {
  /** Its reports. */
  readonly reports = new Reports();
  readonly #proc: ChildProcess;
  readonly #datFile: string;

  private constructor(proc: ChildProcess, datFile: string) {
    this.#proc = proc;
    this.#datFile = datFile;
    for (const out of [proc.stdout, proc.stderr]) {
      if (!out) continue;
      createInterface({ input: out }).on('line', (line) => {
        const m = /^Subject: (?:changed ethernet address|flip flop) \(([\d.]+)\)/.exec(line);
        if (m) this.reports.record(m[1] as string, nowMs());
      });
    }
  }

  /** Starts arpwatch on the bed's bridge with a fresh database; resolves once it captures. */
  static async start(bed: Testbed, datFile: string): Promise<Arpwatch> {
    writeFileSync(datFile, ''); // arpwatch needs an existing database
    const argv = ['-d', '-N', '-p', '-i', bed.bridge, '-f', datFile];
    const proc = spawn('ip', ['netns', 'exec', bed.runnerNs, 'arpwatch', ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const aw = new Arpwatch(proc, datFile);
    await new Promise((r) => setTimeout(r, 1000)); // it opens its capture
    if (proc.exitCode !== null) throw new Error(`arpwatch exited ${proc.exitCode}`);
    return aw;
  }

  /** Its pid (`ip netns exec` execs it, so this is arpwatch's own). */
  get pid(): number {
    return this.#proc.pid as number;
  }

  /** Stops it and removes its database. */
  async stop(): Promise<void> {
    if (this.#proc.exitCode === null) {
      const exited = new Promise((r) => this.#proc.once('exit', r));
      this.#proc.kill();
      await exited;
    }
    rmSync(this.#datFile, { force: true });
  }
}
