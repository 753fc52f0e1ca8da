/**
 * Runs `bridgeward run` as a child process inside a test bed's runner namespace, with its own
 * state dir and socket, and reads its JSON log lines.
 *
 * @example
 * const agent = await AgentProcess.start(bed, { subnet: bed.subnet });
 * await agent.waitForLog((l) => l.msg === 'ready');
 * const code = await agent.stop('SIGTERM');
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../native.js';
import { AGENT_NODE_OPTIONS } from '../node-options.js';
import { run, type RunResult } from '../exec.js';
import type { Testbed } from './testbed.js';

/** A parsed pino line. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

/** Path of the CLI shim. */
export const BIN = join(REPO_ROOT, 'bin', 'bridgeward');

/** An agent child process. */
export class AgentProcess {
  /** Directory holding state and the socket; removed by `cleanup()`. */
  readonly dir: string;
  /** State dir passed as --state-dir. */
  readonly stateDir: string;
  /** API socket path. */
  readonly socket: string;
  /** Every log line so far. */
  readonly logs: LogLine[] = [];
  /** Raw stderr. */
  stderr = '';
  #child: ChildProcess | null = null;
  #exit: Promise<number | null> | null = null;
  #waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  private constructor(dir: string, stateDir?: string) {
    this.dir = dir;
    this.stateDir = stateDir ?? join(dir, 'state');
    this.socket = join(dir, 'api.sock');
  }

  /**
   * Spawns the agent in the runner namespace. `flags` are extra `run` flags (kebab-case keys
   * without dashes, e.g. `{ subnet: '10.8.64.0/24' }`); --state-dir, --socket and
   * --metrics-listen off are filled in unless given. Reuse `dir` to restart on the same state.
   */
  static start(bed: Testbed, flags: Record<string, string>, reuse?: AgentProcess): AgentProcess {
    const dir = reuse?.dir ?? mkdtempSync(join(tmpdir(), `bw-${bed.id}-`));
    const agent = new AgentProcess(dir, reuse?.stateDir);
    const all: Record<string, string> = {
      bridge: bed.bridge,
      'state-dir': agent.stateDir,
      socket: agent.socket,
      'metrics-listen': 'off',
      'bpf-pin-dir': `/sys/fs/bpf/bridgeward-${bed.id}`,
      ...flags,
    };
    const argv = Object.entries(all).flatMap(([k, v]) => [`--${k}`, v]);
    agent.spawn(bed.runnerNs, argv);
    return agent;
  }

  private spawn(netns: string, argv: string[]): void {
    // As deployed: the unit and the image run the agent with these options.
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, BIN, 'run', ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: AGENT_NODE_OPTIONS },
    });
    this.#child = child;
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let parsed: LogLine;
        try {
          parsed = JSON.parse(line) as LogLine;
        } catch {
          parsed = { msg: line, level: 0 };
        }
        this.logs.push(parsed);
        this.#waiters = this.#waiters.filter((w) =>
          w.pred(parsed) ? (w.resolve(parsed), false) : true,
        );
      }
    });
    child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.#exit = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  /** Resolves with the first log line (past or future) matching `pred`; rejects on exit or timeout. */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> {
    const seen = this.logs.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for log line; stderr: ${this.stderr}`)),
        timeoutMs,
      );
      const w = {
        pred,
        resolve: (l: LogLine) => {
          clearTimeout(timer);
          resolve(l);
        },
      };
      this.#waiters.push(w);
      void this.#exit?.then((code) => {
        clearTimeout(timer);
        reject(
          new Error(
            `agent exited ${code} before the log line; stderr: ${this.stderr}; last logs: ${JSON.stringify(this.logs.slice(-3))}`,
          ),
        );
      });
    });
  }

  /** Waits for `"msg":"ready"`. */
  ready(timeoutMs?: number): Promise<LogLine> {
    return this.waitForLog((l) => l.msg === 'ready', timeoutMs);
  }

  /** The agent's pid (`ip netns exec` execs the agent in place), or null before it started. */
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  /** Resolves with the exit code once the process is gone. */
  exited(): Promise<number | null> {
    return this.#exit ?? Promise.resolve(null);
  }

  /** Sends a signal and waits for the exit; returns the exit code and how long it took. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; ms: number }> {
    const t0 = Date.now();
    this.#child?.kill(signal);
    const code = await this.exited();
    return { code, ms: Date.now() - t0 };
  }

  /** Runs a client verb against this agent's socket (`bridgeward ARGS --socket S`). */
  cli(args: readonly string[], opts: { check?: boolean } = {}): Promise<RunResult> {
    return run([process.execPath, BIN, ...args, '--socket', this.socket], {
      check: opts.check ?? false,
    });
  }

  /** Runs a client verb with `-o json` and parses stdout; throws with stderr on failure. */
  async json<T>(args: readonly string[]): Promise<T> {
    const r = await this.cli([...args, '-o', 'json']);
    if (r.code !== 0) throw new Error(`bridgeward ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  /** Adds a node port through the CLI, as an operator would (`port add`); returns its view. */
  addPort(
    sandbox: string,
    proto: 'tcp' | 'udp',
    hostPort: number,
    port: number,
  ): Promise<{ addr: string | null }> {
    return this.json([
      'port',
      'add',
      '--sandbox',
      sandbox,
      '--proto',
      proto,
      '--host-port',
      String(hostPort),
      '--port',
      String(port),
    ]);
  }

  /** Kills the process if still running and removes its directory. */
  async cleanup(): Promise<void> {
    if (this.#child && this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill('SIGKILL');
      await this.exited();
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
