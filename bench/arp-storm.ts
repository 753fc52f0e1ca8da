/**
 * The ARP storm sender (`bench/arp-storm.c`, built by `npm run build` into bench/build/) run
 * inside a sandbox namespace: `same` repeats one binding, `spoof` claims a new random sender IP
 * and MAC in every frame.
 *
 * @example
 * const r = await startStorm(sandbox, 'spoof', 20_000, 10).done;
 * r.sent / r.s; // frames per second reached
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../src/native.js';
import type { Sandbox } from '../src/testbed/testbed.js';

/** Path of the built sender. */
export const ARP_STORM_BIN = join(REPO_ROOT, 'bench', 'build', 'arp-storm');

/** The two kinds of storm. */
export type StormKind = 'same' | 'spoof';

/** What a finished storm reports. */
export interface StormResult {
  /** Frames sent. */
  readonly sent: number;
  /** Seconds it ran. */
  readonly s: number;
  /** The sender's CPU seconds (its softirq work for the frames included). */
  readonly cpuS: number;
}

/** A running storm. */
export interface Storm {
  /** Resolves when the sender finished (null when it was stopped early). */
  readonly done: Promise<StormResult | null>;
  /** Stops it now. */
  stop(): void;
}

/** Starts a storm of `kind` from `sandbox`'s eth0 at `pps` for `seconds`. */
export function startStorm(sandbox: Sandbox, kind: StormKind, pps: number, seconds: number): Storm {
  const sender = sandbox.ip ?? '10.8.64.200';
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      sandbox.netns,
      ARP_STORM_BIN,
      'eth0',
      kind,
      String(pps),
      String(seconds),
      sender,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<StormResult | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      const [sent, s, cpuS] = out.trim().split(' ').map(Number);
      if (code !== 0 || sent === undefined || !Number.isFinite(sent)) return resolve(null);
      resolve({ sent, s: s ?? NaN, cpuS: cpuS ?? NaN });
    });
  });
  return { done, stop: () => child.kill('SIGTERM') };
}
