/**
 * The DaemonSet's pod run with podman on a throw-away runner: a test bed (a runner namespace
 * with rt0 standing in for the node, an outside client), the pod's hostPath volumes as
 * directories of its own (the node's bpffs as a fresh bpffs mount), the ConfigMap as files, and
 * the container started from `podmanRunArgs`. Everything is removed by `destroy()`, and on
 * process exit or SIGINT/SIGTERM.
 *
 * @example
 * const pod = await PodmanPod.start(readDeploy(), { image: 'localhost/bridgeward:0.1.0' });
 * await pod.waitForLog((l) => l.msg === 'ready');
 * await pod.destroy();
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type RunResult } from '../../src/exec.js';
import { REPO_ROOT } from '../../src/native.js';
import { BIN, type LogLine } from '../../src/testbed/agent-process.js';
import { destroyOnExit } from '../../src/testbed/exit-sweep.js';
import { Testbed, type OutsideClient } from '../../src/testbed/testbed.js';
import {
  podmanRunArgs,
  writeConfigMap,
  type Deploy,
  type PodmanOptions,
} from './daemonset-podman.js';

/** podman's settings for this machine (runc, explicit ulimits), as `scripts/image.sh` uses them. */
export const CONTAINERS_CONF = join(REPO_ROOT, 'scripts', 'containers.conf');

/** Runs `podman ARGS` with the project's containers.conf; never rejects on an exit code. */
export function podman(args: readonly string[], timeoutMs = 60_000): Promise<RunResult> {
  return run(['podman', ...args], { env: { CONTAINERS_CONF }, check: false, timeoutMs });
}

/** What `PodmanPod.start` needs besides the manifest. */
export interface PodOptions extends Pick<PodmanOptions, 'capabilities' | 'seccomp'> {
  /** Local image reference. */
  readonly image: string;
  /** Node name whose subnet (from the ConfigMap's subnets.json) the runner gets. */
  readonly nodeName: string;
}

/** The container's state from `podman inspect`. */
export interface ContainerState {
  /** Still running. */
  readonly running: boolean;
  /** Exit code of the last run. */
  readonly exitCode: number;
  /** When the last run ended (epoch ms; NaN while running). */
  readonly finishedAt: number;
}

const live = new Set<PodmanPod>();

/** A pod of the DaemonSet running on a test bed. */
export class PodmanPod {
  /** The runner standing in for the node. */
  readonly bed: Testbed;
  /** A client outside the runner (for node ports). */
  readonly outside: OutsideClient;
  /** Container name. */
  readonly name: string;
  /** Where the node's hostPath directories live here. */
  readonly hostDir: string;
  /** The node's bpffs (a bpffs mounted for this pod). */
  readonly bpffs: string;
  /** The API socket as seen from the host. */
  readonly socket: string;

  private constructor(bed: Testbed, outside: OutsideClient, hostDir: string) {
    this.bed = bed;
    this.outside = outside;
    this.name = `bw-img-${bed.id}`;
    this.hostDir = hostDir;
    this.bpffs = join(hostDir, 'bpffs');
    this.socket = join(hostDir, 'run', 'api.sock');
  }

  /** Makes the test bed and the pod's volumes, then starts the container (not yet ready). */
  static async start(deploy: Deploy, o: PodOptions): Promise<PodmanPod> {
    destroyOnExit(live);
    const subnets = JSON.parse(deploy.configData['subnets.json'] ?? '{}') as Record<string, string>;
    const subnet = subnets[o.nodeName];
    if (!subnet) throw new Error(`subnets.json has no subnet for ${o.nodeName}`);
    const bed = await Testbed.create({ subnet });
    let pod: PodmanPod | null = null;
    try {
      const outside = await bed.addOutsideClient();
      pod = new PodmanPod(bed, outside, mkdtempSync(join(tmpdir(), `bw-img-${bed.id}-`)));
      live.add(pod);
      for (const d of ['config', 'state', 'run', 'bpffs']) mkdirSync(join(pod.hostDir, d));
      await run(['mount', '-t', 'bpf', 'bpf', pod.bpffs]);
      writeConfigMap(deploy, join(pod.hostDir, 'config'));
      const argv = podmanRunArgs(deploy, {
        ...o,
        name: pod.name,
        netns: bed.runnerNs,
        configDir: join(pod.hostDir, 'config'),
        hostPaths: {
          '/var/lib/bridgeward': join(pod.hostDir, 'state'),
          '/run/bridgeward': join(pod.hostDir, 'run'),
          '/sys/fs/bpf': pod.bpffs,
        },
      });
      const r = await podman(argv);
      if (r.code !== 0) throw new Error(`podman ${argv.join(' ')}: ${r.stderr.trim()}`);
      return pod;
    } catch (e) {
      if (pod) pod.destroySync();
      await bed.destroy();
      throw e;
    }
  }

  /** The container's log lines so far (JSON lines parsed; other lines as `{ msg }`). */
  async logs(): Promise<LogLine[]> {
    const r = await podman(['logs', this.name]);
    return `${r.stdout}\n${r.stderr}`
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        try {
          return JSON.parse(l) as LogLine;
        } catch {
          return { msg: l };
        }
      });
  }

  /**
   * Waits until `count` log lines match `pred`; resolves with the last of them, or null when the
   * container stopped or the time ran out first.
   */
  async waitForLog(
    pred: (l: LogLine) => boolean,
    count = 1,
    timeoutMs = 30_000,
  ): Promise<LogLine | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hits = (await this.logs()).filter(pred);
      if (hits.length >= count) return hits[count - 1] ?? null;
      if (Date.now() > deadline || !(await this.state()).running) return null;
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  /** The container's state. */
  async state(): Promise<ContainerState> {
    const r = await podman([
      'inspect',
      '--format',
      '{{.State.Running}} {{.State.ExitCode}} {{.State.FinishedAt.UnixMilli}}',
      this.name,
    ]);
    const [running, exitCode, finishedAt] = r.stdout.trim().split(' ');
    return {
      running: running === 'true',
      exitCode: Number(exitCode),
      finishedAt: running === 'true' ? NaN : Number(finishedAt),
    };
  }

  /** Runs argv inside the container (`podman exec`), as a kubelet's exec probe does. */
  exec(argv: readonly string[]): Promise<RunResult> {
    return podman(['exec', this.name, ...argv]);
  }

  /** Runs a client verb from the host against the pod's socket with `-o json`; parses stdout. */
  async json<T>(args: readonly string[]): Promise<T> {
    const r = await run([process.execPath, BIN, ...args, '--socket', this.socket, '-o', 'json'], {
      check: false,
    });
    if (r.code !== 0) throw new Error(`bridgeward ${args.join(' ')}: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout) as T;
  }

  /** Sends SIGTERM (as a kubelet does) and waits for the container to exit. */
  async terminate(): Promise<ContainerState> {
    await podman(['kill', '--signal', 'TERM', this.name]);
    await podman(['wait', this.name]);
    return this.state();
  }

  /** Starts the stopped container again (same volumes, as a restarted pod container). */
  async restart(): Promise<void> {
    const r = await podman(['start', this.name]);
    if (r.code !== 0) throw new Error(`podman start ${this.name}: ${r.stderr.trim()}`);
  }

  /** Removes the container, the bpffs mount, the directories and the test bed. Idempotent. */
  async destroy(): Promise<void> {
    this.destroySync();
    await this.bed.destroy();
  }

  /** Synchronous part of the teardown (also for exit hooks). */
  destroySync(): void {
    if (!live.delete(this)) return;
    const quiet = { stdio: 'ignore' as const, env: { ...process.env, CONTAINERS_CONF } };
    try {
      execFileSync('podman', ['rm', '--force', '--time', '0', this.name], quiet);
    } catch {
      // never created or already gone
    }
    try {
      execFileSync('umount', [this.bpffs], quiet);
    } catch {
      // not mounted
    }
    rmSync(this.hostDir, { recursive: true, force: true });
    this.bed.destroySync();
  }
}
