/**
 * Runs a command (optionally inside a network namespace) and collects its output.
 *
 * @example
 * const r = await run(['ip', 'link', 'show'], { netns: 'bw-1a2b-r' });
 */
import { spawn } from 'node:child_process';
import { BridgewardError } from './errors.js';

/** The result of a finished command. */
export interface RunResult {
  /** Exit code (null when killed by a signal). */
  readonly code: number | null;
  /** Collected stdout. */
  readonly stdout: string;
  /** Collected stderr. */
  readonly stderr: string;
}

/** Options for `run`. */
export interface RunOptions {
  /** Network namespace to run in (`ip netns exec`). */
  readonly netns?: string;
  /** Text written to stdin. */
  readonly input?: string;
  /** Reject when the exit code is not 0 (default true). */
  readonly check?: boolean;
  /** Kill after this many ms (default 30 s). */
  readonly timeoutMs?: number;
  /** Extra environment. */
  readonly env?: Record<string, string>;
}

/** Prefixes argv with `ip netns exec NS` when a namespace is given. */
export function inNetns(argv: readonly string[], netns: string | undefined): string[] {
  return netns ? ['ip', 'netns', 'exec', netns, ...argv] : [...argv];
}

/**
 * Runs argv to completion.
 *
 * @throws BridgewardError KERNEL_ERROR when `check` is on and the exit code is not 0.
 */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const full = inNetns(argv, opts.netns);
  return new Promise((resolve, reject) => {
    const child = spawn(full[0] as string, full.slice(1), {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new BridgewardError('KERNEL_ERROR', `${full.join(' ')}: ${e.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if ((opts.check ?? true) && code !== 0) {
        reject(
          new BridgewardError(
            'KERNEL_ERROR',
            `${full.join(' ')} exited ${code}: ${stderr.trim() || stdout.trim()}`,
          ),
        );
      } else resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined); // EPIPE when the command ignores stdin and exits first
    child.stdin.end(opts.input ?? '');
  });
}
