/**
 * A real, throw-away etcd server (Debian's `etcd-server`, /usr/bin/etcd) on loopback, with
 * ports and a data dir unique to the test run, started and stopped by the test.
 *
 * @example
 * const etcd = await EtcdServer.start();
 * t.teardown(() => etcd.stop());
 * const store = await openEtcdStore([etcd.endpoint]);
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inNetns, run } from '../../src/exec.js';

/** Binary of Debian's etcd-server package. */
export const ETCD_BIN = '/usr/bin/etcd';

/** Finds a free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/** A running etcd. */
export class EtcdServer {
  /** Client URL (http://127.0.0.1:PORT). */
  readonly endpoint: string;
  readonly #child: ChildProcess;
  readonly #dir: string;
  #log = '';

  private constructor(endpoint: string, child: ChildProcess, dir: string) {
    this.endpoint = endpoint;
    this.#child = child;
    this.#dir = dir;
    child.stderr?.on('data', (d: Buffer) => (this.#log = (this.#log + d.toString()).slice(-4000)));
  }

  /**
   * Starts etcd (inside network namespace `netns` when given, so agents in that namespace reach
   * it on their loopback) and resolves once it answers a read.
   */
  static async start(opts: { netns?: string } = {}): Promise<EtcdServer> {
    const dir = mkdtempSync(join(tmpdir(), 'bw-etcd-'));
    const [client, peer] = [await freePort(), await freePort()];
    const endpoint = `http://127.0.0.1:${client}`;
    const peerUrl = `http://127.0.0.1:${peer}`;
    const argv = inNetns(
      [
        ETCD_BIN,
        '--name',
        'bw',
        '--data-dir',
        join(dir, 'data'),
        '--listen-client-urls',
        endpoint,
        '--advertise-client-urls',
        endpoint,
        '--listen-peer-urls',
        peerUrl,
        '--initial-advertise-peer-urls',
        peerUrl,
        '--initial-cluster',
        `bw=${peerUrl}`,
        '--initial-cluster-state',
        'new',
        '--log-level',
        'warn',
      ],
      opts.netns,
    );
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    const server = new EtcdServer(endpoint, child, dir);
    for (let i = 0; ; i++) {
      const r = await run(
        ['etcdctl', `--endpoints=${endpoint}`, '--command-timeout=500ms', 'get', 'probe'],
        { netns: opts.netns, check: false, env: { ETCDCTL_API: '3' } },
      );
      if (r.code === 0) return server;
      if (i > 100 || child.exitCode !== null) {
        await server.stop();
        throw new Error(`etcd did not start: ${r.stderr}\n${server.#log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Stops etcd and removes its data dir. */
  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      const exited = new Promise((r) => this.#child.once('exit', r));
      this.#child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
