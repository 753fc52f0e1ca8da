/**
 * Hairpin for node ports behind a bridge with br_netfilter. When bridged IPv4 is handed to the
 * IP hooks (`net.bridge.bridge-nf-call-iptables = 1`), a sandbox that reaches a node port leading
 * to itself is DNATed at the bridge and bridged straight back to the port it came from, which a
 * bridge only does on ports in hairpin mode. So the agent turns hairpin mode on for exactly the
 * bridge ports of sandboxes that back a node port (and off again when they no longer do), and
 * only while br_netfilter is active. Without br_netfilter the packet is routed and needs nothing.
 *
 * A port is found from the lease (`ifname` once bound, else its MAC, else the kernel neighbour
 * entry of its address) and the bridge's forwarding database; unresolved sandboxes are retried
 * on the next update.
 *
 * @example
 * const hp = new HairpinPorts('rt0');
 * await hp.update([{ ip: '10.8.64.7', mac: '02:00:00:00:00:07', ifname: null }]);
 */
import { readFile } from 'node:fs/promises';
import { run } from '../exec.js';

/** A sandbox backing a node port, as far as the lease knows it. */
export interface Backend {
  /** Leased address. */
  readonly ip: string;
  /** MAC once known. */
  readonly mac: string | null;
  /** Bridge port once bound. */
  readonly ifname: string | null;
}

/**
 * Picks the bridge ports of the backends (pure).
 *
 * @example
 * hairpinPorts([{ ip: '10.8.64.7', mac: null, ifname: null }], [{ mac: 'aa:..', ifname: 'veth1' }], new Map([['10.8.64.7', 'aa:..']]));
 * // { ports: Set { 'veth1' }, unresolved: [] }
 */
export function hairpinPorts(
  backends: readonly Backend[],
  fdb: readonly { mac: string; ifname: string }[],
  neighbours: ReadonlyMap<string, string>,
): { ports: Set<string>; unresolved: string[] } {
  const portOf = new Map(fdb.map((f) => [f.mac.toLowerCase(), f.ifname]));
  const ports = new Set<string>();
  const unresolved: string[] = [];
  for (const b of backends) {
    const mac = (b.mac ?? neighbours.get(b.ip) ?? '').toLowerCase();
    const port = b.ifname ?? portOf.get(mac);
    if (port) ports.add(port);
    else unresolved.push(b.ip);
  }
  return { ports, unresolved };
}

/** Keeps hairpin mode on exactly the bridge ports of node-port backends. */
export class HairpinPorts {
  readonly #bridge: string;
  #on = new Set<string>();

  /** Manages ports of `bridge`. */
  constructor(bridge: string) {
    this.#bridge = bridge;
  }

  /**
   * Updates hairpin mode for the current backends; resolves to the addresses whose port is not
   * known yet. Does nothing (and turns nothing on) while br_netfilter is inactive.
   */
  async update(backends: readonly Backend[]): Promise<string[]> {
    if (!(await brNetfilterActive())) return [];
    // No backends (the common case on a runner without node ports): nothing to look up.
    const { ports, unresolved } =
      backends.length > 0
        ? await this.#resolve(backends)
        : { ports: new Set<string>(), unresolved: [] };
    for (const p of ports) if (!this.#on.has(p)) await setHairpin(p, true);
    for (const p of this.#on) if (!ports.has(p)) await setHairpin(p, false);
    this.#on = ports;
    return unresolved;
  }

  /**
   * Turns hairpin mode on for one more backend (a node port just added), leaving the others;
   * the next `update` settles the whole set. Resolves to false when its port is not known yet.
   */
  async include(backend: Backend): Promise<boolean> {
    if (!(await brNetfilterActive())) return true;
    const { ports } = await this.#resolve([backend]);
    for (const p of ports) if (!this.#on.has(p)) await setHairpin(p, true);
    for (const p of ports) this.#on.add(p);
    return ports.size > 0;
  }

  async #resolve(
    backends: readonly Backend[],
  ): Promise<{ ports: Set<string>; unresolved: string[] }> {
    const [fdb, neigh] = await Promise.all([
      run(['bridge', '-j', 'fdb', 'show', 'br', this.#bridge]),
      run(['ip', '-j', '-4', 'neigh', 'show', 'dev', this.#bridge]),
    ]);
    const entries = (JSON.parse(fdb.stdout || '[]') as { mac: string; ifname: string }[]).filter(
      (f) => f.ifname !== this.#bridge,
    );
    const neighbours = new Map(
      (JSON.parse(neigh.stdout || '[]') as { dst: string; lladdr?: string }[])
        .filter((n) => n.lladdr)
        .map((n) => [n.dst, n.lladdr as string]),
    );
    return hairpinPorts(backends, entries, neighbours);
  }
}

async function setHairpin(port: string, on: boolean): Promise<void> {
  const argv = [
    'ip',
    'link',
    'set',
    'dev',
    port,
    'type',
    'bridge_slave',
    'hairpin',
    on ? 'on' : 'off',
  ];
  // Turning it off on a port that is gone (its sandbox was deleted) is not an error.
  await run(argv, { check: on });
}

async function brNetfilterActive(): Promise<boolean> {
  try {
    return (await readFile('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8')).trim() === '1';
  } catch {
    return false;
  }
}
