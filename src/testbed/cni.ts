/**
 * A CNI network on a test bed's `rt0`, as a runtime would run it: Debian's `bridge` plugin with
 * `"ipam": {"type": "bridgeward"}` naming the agent's socket, a CNI bin dir holding the plugin
 * as `bridgeward`, and every plugin executed inside the runner namespace (`nsenter --net`) with
 * the `CNI_*` environment and the config on stdin. Used by the CNI tests and the `cni` bench.
 *
 * @example
 * const net = CniNetwork.create(bed, agent);
 * const netns = await bed.addNamespace('c1');
 * const add = await net.exec('bridge', net.env('ADD', 'c1', netns), net.config());
 * add.result; // { cniVersion: '1.0.0', interfaces: [...], ips: [{ address: '10.8.64.2/24', ... }], ... }
 */
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../exec.js';
import { REPO_ROOT } from '../native.js';
import type { AgentProcess } from './agent-process.js';
import type { Testbed } from './testbed.js';

/** Debian's CNI plugins (containernetworking-plugins). */
export const DEBIAN_CNI_DIR = '/usr/lib/cni';
/** The plugin's executable in this checkout. */
export const CNI_PLUGIN = join(REPO_ROOT, 'bin', 'bridgeward-cni');

/** What a plugin printed and how it exited. */
export interface CniOutcome {
  /** Exit code. */
  readonly code: number | null;
  /** Raw stdout. */
  readonly stdout: string;
  /** Raw stderr. */
  readonly stderr: string;
  /** stdout parsed as JSON, or null when empty. */
  readonly result: Record<string, unknown> | null;
}

/** A CNI network on the test bed's bridge. */
export class CniNetwork {
  /** The bin dir holding `bridgeward` (a link to the plugin); Debian's dir follows in CNI_PATH. */
  readonly binDir: string;
  /** Network name. */
  readonly name: string;
  readonly #bed: Testbed;
  readonly #socket: string;

  private constructor(bed: Testbed, binDir: string, socket: string) {
    this.#bed = bed;
    this.binDir = binDir;
    this.#socket = socket;
    this.name = `bw-${bed.id}`;
  }

  /** Makes the bin dir under the agent's directory (removed with it). */
  static create(bed: Testbed, agent: AgentProcess): CniNetwork {
    const binDir = join(agent.dir, 'cni-bin');
    mkdirSync(binDir, { recursive: true });
    symlinkSync(CNI_PLUGIN, join(binDir, 'bridgeward'));
    return new CniNetwork(bed, binDir, agent.socket);
  }

  /** `CNI_PATH`: the bin dir, then Debian's plugins. */
  get cniPath(): string {
    return `${this.binDir}:${DEBIAN_CNI_DIR}`;
  }

  /** The `bridge` plugin's config on `rt0` with bridgeward as IPAM (the agent owns the gateway). */
  plugin(ipam: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      type: 'bridge',
      bridge: this.#bed.bridge,
      isGateway: false,
      ipMasq: false,
      ipam: { type: 'bridgeward', socket: this.#socket, ...ipam },
    };
  }

  /** The config one plugin execution gets on stdin (`extra` adds or overrides keys). */
  config(extra: Record<string, unknown> = {}, cniVersion = '1.0.0'): string {
    return JSON.stringify({ cniVersion, name: this.name, ...this.plugin(), ...extra });
  }

  /** The conflist a runtime reads (e.g. podman's `--cni-config-dir`). */
  conflist(): string {
    return JSON.stringify({ cniVersion: '1.0.0', name: this.name, plugins: [this.plugin()] });
  }

  /** The environment of one command on one attachment (`netns` is a test bed namespace name). */
  env(
    command: string,
    containerId: string,
    netns: string,
    ifname = 'eth0',
  ): Record<string, string> {
    return {
      CNI_COMMAND: command,
      CNI_CONTAINERID: containerId,
      CNI_NETNS: `/run/netns/${netns}`,
      CNI_IFNAME: ifname,
      CNI_PATH: this.cniPath,
    };
  }

  /**
   * Executes a plugin (`bridge`, or `bridgeward` for the IPAM plugin alone) in the runner
   * namespace with exactly `env` (and PATH) and `stdin`.
   */
  async exec(
    plugin: 'bridge' | 'bridgeward',
    env: Record<string, string>,
    stdin: string,
  ): Promise<CniOutcome> {
    const path = plugin === 'bridge' ? join(DEBIAN_CNI_DIR, 'bridge') : CNI_PLUGIN;
    const r = await run(
      [
        'nsenter',
        `--net=/run/netns/${this.#bed.runnerNs}`,
        'env',
        '-i',
        `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`,
        ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
        path,
      ],
      { check: false, input: stdin },
    );
    const text = r.stdout.trim();
    return { ...r, result: text === '' ? null : (JSON.parse(text) as Record<string, unknown>) };
  }
}
