/**
 * Watches nftables for transactions by other processes on the agent's table, so drift (someone
 * flushing the table, deleting or editing elements) is repaired within milliseconds instead of
 * at the next periodic read-back. It runs `nft monitor` as a child process: libnftables has no
 * event API that returns control to the caller, and the monitor's output already names the
 * committing process on every generation line (`# new generation N by process PID (COMM)`).
 * Transactions committed by this process (libnftables runs in-process) are ignored; with the
 * `nft` binary fallback the agent's own changes look foreign and only cause a needless read-back.
 *
 * The child is restarted with a growing delay when it exits; without an `nft` binary the agent
 * keeps the periodic read-back alone and says so once.
 *
 * @example
 * const monitor = NftMonitor.start({ family: 'ip', table: 'bridgeward', ownPid: process.pid, log,
 *   onForeign: (b) => nodePorts.verifySoon() });
 * monitor.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '../log.js';
import { MonitorBatches, type MonitorBatch } from './monitor-batches.js';

/** What the monitor needs. */
export interface NftMonitorOptions {
  /** Family of the watched table. */
  readonly family: string;
  /** Name of the watched table. */
  readonly table: string;
  /** The pid whose transactions are the agent's own. */
  readonly ownPid: number;
  /** Logger. */
  readonly log: Logger;
  /** Called for every transaction of another process that touched the table. */
  readonly onForeign: (batch: MonitorBatch) => void;
}

const FIRST_RESTART_MS = 1_000;
const MAX_RESTART_MS = 30_000;

/** A running `nft monitor` child, restarted until `stop()`. */
export class NftMonitor {
  readonly #o: NftMonitorOptions;
  readonly #log: Logger;
  #child: ChildProcess | null = null;
  #restartMs = FIRST_RESTART_MS;
  #restartTimer: NodeJS.Timeout | null = null;
  #watching = false;
  #stopped = false;

  private constructor(opts: NftMonitorOptions) {
    this.#o = opts;
    this.#log = opts.log.child({ component: 'nft-monitor' });
  }

  /** Starts watching (the child subscribes within milliseconds). */
  static start(opts: NftMonitorOptions): NftMonitor {
    const m = new NftMonitor(opts);
    m.#spawn();
    return m;
  }

  /**
   * Whether the table is being watched right now: the child runs and has reported the agent's
   * own first transaction (so it was subscribed before it).
   */
  watching(): boolean {
    return this.#watching && this.#child !== null;
  }

  /** Stops the child and any restart. */
  stop(): void {
    this.#stopped = true;
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    this.#child?.kill('SIGTERM');
  }

  #spawn(): void {
    const batches = new MonitorBatches(this.#o.family, this.#o.table);
    const child = spawn('nft', ['monitor'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    let buf = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const batch = batches.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (batch) this.#batch(batch);
      }
    });
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-500)));
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        this.#stopped = true;
        this.#log.warn('no nft binary: drift is found by the periodic read-back only');
      } else this.#log.warn({ err }, 'nft monitor failed to start');
    });
    child.on('close', (code, signal) => {
      this.#child = null;
      this.#watching = false;
      if (this.#stopped) return;
      this.#log.warn(
        { code, signal, stderr: stderr.trim(), retryMs: this.#restartMs },
        'nft monitor exited; restarting',
      );
      this.#restartTimer = setTimeout(() => this.#spawn(), this.#restartMs);
      this.#restartMs = Math.min(this.#restartMs * 2, MAX_RESTART_MS);
    });
  }

  #batch(b: MonitorBatch): void {
    this.#restartMs = FIRST_RESTART_MS;
    if (b.pid === this.#o.ownPid) {
      if (!this.#watching) {
        this.#watching = true;
        this.#log.info({ generation: b.generation }, 'nft monitor is watching the node-port table');
      }
      return;
    }
    // A restarted child may see someone else's transaction first: it watches from then on.
    this.#watching = true;
    if (!b.touchesTable) return;
    this.#log.warn(
      { generation: b.generation, pid: b.pid, comm: b.comm },
      'another process changed the node-port table',
    );
    this.#o.onForeign(b);
  }
}
