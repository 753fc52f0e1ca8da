/**
 * A throw-away runner: a network namespace holding a real `rt0` bridge, sandbox namespaces
 * attached with veth pairs, and helpers to run commands and the agent inside them. Used by the
 * demo, the integration tests and the benchmarks. Every name carries a per-run id, and
 * everything is torn down by `destroy()`, on process exit and on SIGINT/SIGTERM.
 *
 * @example
 * const bed = await Testbed.create({ subnet: '10.8.64.0/24' });
 * const a = await bed.addSandbox({ ip: '10.8.64.2' });
 * await bed.exec(a.netns, ['ping', '-c1', '10.8.64.1']);
 * await bed.destroy();
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { parseCidr } from '../net/ipv4.js';
import { destroyOnExit } from './exit-sweep.js';
import { run, type RunOptions, type RunResult } from '../exec.js';

/** A sandbox namespace attached to the bridge. */
export interface Sandbox {
  /** Short name, unique within the test bed (`s1`, `s2`, ...). */
  readonly name: string;
  /** Its network namespace. */
  readonly netns: string;
  /** Host side of the veth (a port of `rt0`), in the runner namespace. */
  readonly hostIf: string;
  /** ifindex of the host side, in the runner namespace. */
  readonly hostIfindex: number;
  /** MAC of the sandbox's `eth0`. */
  readonly mac: string;
  /** Address configured on `eth0`, or null. */
  readonly ip: string | null;
}

/** A client namespace outside the runner, linked to it by a veth with its own /30. */
export interface OutsideClient {
  /** The client's namespace. */
  readonly netns: string;
  /** The runner's side of the link (in the runner namespace). */
  readonly runnerIf: string;
  /** The runner's address on that link (its "outside" address). */
  readonly runnerIp: string;
  /** The client's address. */
  readonly clientIp: string;
}

/** Options for `Testbed.create`. */
export interface TestbedOptions {
  /** Sandbox subnet; the gateway (first host) goes on the bridge. */
  readonly subnet: string;
  /** Create the bridge now (default true); false lets a test create it later. */
  readonly bridge?: boolean;
  /** Bridge name (default rt0). */
  readonly bridgeName?: string;
  /**
   * A fixed MAC for the bridge. Without one the kernel gives the bridge the lowest MAC of its
   * ports, so it changes as ports come and go (the CNI `bridge` plugin's CHECK compares it).
   */
  readonly bridgeMac?: string;
}

const live = new Set<Testbed>();

/** A runner namespace with a bridge and sandboxes. */
export class Testbed {
  /** Per-run id in every name this test bed creates. */
  readonly id: string;
  /** The runner namespace (holds the bridge and the host ends of the veths). */
  readonly runnerNs: string;
  /** Bridge name. */
  readonly bridge: string;
  /** Subnet in CIDR form. */
  readonly subnet: string;
  /** Gateway address (first host). */
  readonly gateway: string;
  /** Prefix length of the subnet. */
  readonly prefixLength: number;
  readonly #namespaces: string[] = [];
  readonly #sandboxes: Sandbox[] = [];
  #reattached = 0;
  readonly #bridgeMac: string | undefined;

  private constructor(id: string, opts: TestbedOptions) {
    const s = parseCidr(opts.subnet);
    this.id = id;
    this.runnerNs = `bw-${id}-r`;
    this.bridge = opts.bridgeName ?? 'rt0';
    this.#bridgeMac = opts.bridgeMac;
    this.subnet = opts.subnet;
    this.prefixLength = s.prefixLength;
    const g = s.network + 1;
    this.gateway = [g >>> 24, (g >>> 16) & 255, (g >>> 8) & 255, g & 255].join('.');
  }

  /** Creates the runner namespace (loopback up) and, unless told not to, the bridge. */
  static async create(opts: TestbedOptions): Promise<Testbed> {
    destroyOnExit(live);
    const bed = new Testbed(randomBytes(3).toString('hex'), opts);
    live.add(bed);
    try {
      await bed.#addNetns(bed.runnerNs);
      if (opts.bridge ?? true) await bed.createBridge();
    } catch (e) {
      await bed.destroy();
      throw e;
    }
    return bed;
  }

  /** Creates the bridge in the runner namespace and brings it up (no address: the agent adds it). */
  async createBridge(): Promise<void> {
    await this.ip(['link', 'add', this.bridge, 'type', 'bridge']);
    if (this.#bridgeMac) await this.ip(['link', 'set', this.bridge, 'address', this.#bridgeMac]);
    await this.ip(['link', 'set', this.bridge, 'up']);
  }

  /**
   * Creates the bridge the way a runtime does, racing the agent: add it, assign the gateway,
   * bring it up, three `ip` calls in a row. The gateway add may find the agent's address already
   * there (EEXIST); that is the runtime's benign race, not an error.
   */
  async createBridgeAsRuntime(prefixLength = this.prefixLength): Promise<void> {
    await this.ip(['link', 'add', this.bridge, 'type', 'bridge']);
    await run(['ip', 'addr', 'add', `${this.gateway}/${prefixLength}`, 'dev', this.bridge], {
      netns: this.runnerNs,
      check: false,
    });
    await this.ip(['link', 'set', this.bridge, 'up']);
  }

  /** The bridge's ifindex now (NaN when it does not exist). */
  async bridgeIfindex(): Promise<number> {
    const r = await run(['ip', '-j', 'link', 'show', this.bridge], {
      netns: this.runnerNs,
      check: false,
    });
    return r.code === 0
      ? ((JSON.parse(r.stdout) as { ifindex: number }[])[0]?.ifindex ?? NaN)
      : NaN;
  }

  /** Deletes the bridge (its ports stay, detached), as a runtime resetting its network does. */
  async deleteBridge(): Promise<void> {
    await this.ip(['link', 'del', this.bridge]);
  }

  /** Deletes a sandbox's veth pair; its namespace (the running sandbox) stays. */
  async detachSandbox(s: Sandbox): Promise<void> {
    await run(['ip', 'link', 'del', s.hostIf], { netns: this.runnerNs, check: false });
  }

  /**
   * Attaches a running sandbox again on a new veth pair (a new port of the bridge, with a new
   * name and ifindex), with its MAC and `ip` (default: the address it was created with): what a
   * runtime does for its surviving sandboxes after recreating the bridge. Returns the sandbox as
   * it is now.
   */
  async reattachSandbox(s: Sandbox, ip: string | null = s.ip): Promise<Sandbox> {
    const hostIf = `${s.hostIf.slice(0, 12)}r${++this.#reattached}`.slice(0, 15);
    const hostIfindex = await this.#attach(s.netns, hostIf, s.mac);
    if (ip) await this.setSandboxIp(s.netns, ip);
    const now: Sandbox = { ...s, hostIf, hostIfindex, ip };
    this.#sandboxes[this.#sandboxes.indexOf(s)] = now;
    return now;
  }

  /** Runs `ip ARGS` in the runner namespace. */
  ip(args: readonly string[]): Promise<RunResult> {
    return run(['ip', ...args], { netns: this.runnerNs });
  }

  /** Runs argv inside a namespace. */
  exec(
    netns: string,
    argv: readonly string[],
    opts: Omit<RunOptions, 'netns'> = {},
  ): Promise<RunResult> {
    return run(argv, { ...opts, netns });
  }

  /**
   * Adds a sandbox namespace: a veth pair whose host side joins the bridge, `eth0` inside with
   * the given MAC and address and a default route via the gateway.
   */
  async addSandbox(opts: { ip?: string; mac?: string } = {}): Promise<Sandbox> {
    const n = this.#sandboxes.length + 1;
    const name = `s${n}`;
    const netns = `bw-${this.id}-${name}`;
    const hostIf = `bw${this.id}${name}`.slice(0, 15);
    const id = this.id;
    const mac =
      opts.mac ??
      `02:${id.slice(0, 2)}:${id.slice(2, 4)}:${id.slice(4, 6)}:${hex2(n >> 8)}:${hex2(n)}`;
    await this.#addNetns(netns);
    const hostIfindex = await this.#attach(netns, hostIf, mac);
    if (opts.ip) await this.setSandboxIp(netns, opts.ip);
    const sandbox: Sandbox = { name, netns, hostIf, hostIfindex, mac, ip: opts.ip ?? null };
    this.#sandboxes.push(sandbox);
    return sandbox;
  }

  /** A veth pair: `hostIf` on the bridge, `eth0` with `mac` in `netns`; resolves to hostIf's ifindex. */
  async #attach(netns: string, hostIf: string, mac: string): Promise<number> {
    await this.ip(['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
    await this.ip(['link', 'set', hostIf, 'master', this.bridge]);
    await this.ip(['link', 'set', hostIf, 'up']);
    await run(['ip', 'link', 'set', 'eth0', 'address', mac], { netns });
    await run(['ip', 'link', 'set', 'eth0', 'up'], { netns });
    const idx = await this.ip(['-o', 'link', 'show', hostIf]);
    return Number(idx.stdout.split(':')[0]);
  }

  /** Configures `eth0` of a sandbox namespace with an address and a default route. */
  async setSandboxIp(netns: string, ip: string): Promise<void> {
    await run(['ip', 'addr', 'add', `${ip}/${this.prefixLength}`, 'dev', 'eth0'], { netns });
    await run(['ip', 'route', 'add', 'default', 'via', this.gateway], { netns, check: false });
  }

  /**
   * Adds an "outside client" namespace linked to the runner by a veth with its own /30: the
   * runner side gets `runnerIp` (the runner's outside address) and forwards what arrives on it,
   * as a runner's uplink does; the client gets `clientIp` and a default route via the runner.
   */
  async addOutsideClient(
    opts: { runnerIp?: string; clientIp?: string } = {},
  ): Promise<OutsideClient> {
    const runnerIp = opts.runnerIp ?? '10.255.0.1';
    const clientIp = opts.clientIp ?? '10.255.0.2';
    const netns = `bw-${this.id}-c`;
    const runnerIf = `bw${this.id}up`;
    await this.#addNetns(netns);
    await this.ip([
      'link',
      'add',
      runnerIf,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      netns,
    ]);
    await this.ip(['addr', 'add', `${runnerIp}/30`, 'dev', runnerIf]);
    await this.ip(['link', 'set', runnerIf, 'up']);
    await run(['sysctl', '-qw', `net.ipv4.conf.${runnerIf}.forwarding=1`], {
      netns: this.runnerNs,
    });
    await run(['ip', 'addr', 'add', `${clientIp}/30`, 'dev', 'eth0'], { netns });
    await run(['ip', 'link', 'set', 'eth0', 'up'], { netns });
    await run(['ip', 'route', 'add', 'default', 'via', runnerIp], { netns });
    return { netns, runnerIf, runnerIp, clientIp };
  }

  /**
   * Adds an empty namespace `bw-<id>-<suffix>` (loopback up), removed with the test bed: a
   * container's namespace for a CNI plugin to attach. Returns its name.
   */
  async addNamespace(suffix: string): Promise<string> {
    const netns = `bw-${this.id}-${suffix}`;
    await this.#addNetns(netns);
    return netns;
  }

  /** Deletes a namespace this test bed created (links in it go with it). */
  async removeNamespace(netns: string): Promise<void> {
    await run(['ip', 'netns', 'del', netns], { check: false });
    const i = this.#namespaces.indexOf(netns);
    if (i >= 0) this.#namespaces.splice(i, 1);
  }

  /** Deletes one sandbox's namespace (its veth goes with it). */
  async removeSandbox(s: Sandbox): Promise<void> {
    await this.removeNamespace(s.netns);
  }

  /** Sandboxes added so far (removed ones included). */
  get sandboxes(): readonly Sandbox[] {
    return this.#sandboxes;
  }

  /** Deletes every namespace this test bed created (links go with them). Idempotent. */
  async destroy(): Promise<void> {
    for (const ns of this.#namespaces.splice(0).reverse()) {
      await run(['ip', 'netns', 'del', ns], { check: false });
    }
    live.delete(this);
  }

  /** Synchronous teardown for exit hooks. */
  destroySync(): void {
    for (const ns of this.#namespaces.splice(0).reverse()) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
    live.delete(this);
  }

  async #addNetns(ns: string): Promise<void> {
    await run(['ip', 'netns', 'add', ns]);
    this.#namespaces.push(ns);
    await run(['ip', 'link', 'set', 'lo', 'up'], { netns: ns });
  }
}

function hex2(n: number): string {
  return (n & 255).toString(16).padStart(2, '0');
}
