/**
 * Hairpin for node ports behind a bridge with br_netfilter. When bridged IPv4 is handed to the
 * IP hooks (`net.bridge.bridge-nf-call-iptables = 1`), a sandbox that reaches a node port leading
 * to itself is DNATed at the bridge and bridged straight back to the port it came from, which a
 * bridge only does on ports in hairpin mode. So the agent turns hairpin mode on for exactly the
 * bridge ports of sandboxes that back a node port (and off again when they no longer do), and
 * only while br_netfilter is active. Without br_netfilter the packet is routed and needs nothing.
 *
 * A backend's port is found in the agent's own view of the bridge, without asking the kernel:
 * the lease's bound port while it is on the bridge, else the port the bridge FDB learned the
 * backend's MAC on (the lease's MAC, else the one the neighbour table holds for its address).
 * The owner calls `update` again whenever that view changes (a sandbox's first frame), so a
 * backend's port is switched within milliseconds of becoming known, not at the next sweep.
 *
 * @example
 * const hp = new HairpinPorts({ ports: () => bridge.ports(), portsOf: (m) => nb.portsOf(m), macOf: (ip) => nb.macOf(ip) });
 * await hp.update([{ ip: '10.8.64.7', mac: '02:00:00:00:00:07', ifindex: null }]); // [] when resolved
 */
import { readFile } from 'node:fs/promises';
import { run } from '../exec.js';

/** A sandbox backing a node port, as far as the lease knows it. */
export interface Backend {
  /** Leased address. */
  readonly ip: string;
  /** MAC once known. */
  readonly mac: string | null;
  /** Bridge port (ifindex) once bound. */
  readonly ifindex: number | null;
}

/** The agent's view of the bridge that hairpin resolution reads. */
export interface BridgeView {
  /** The current bridge's ports: ifindex -> name (empty while it is absent). */
  ports(): ReadonlyMap<number, string>;
  /** Ports the bridge FDB has learned a MAC on. */
  portsOf(mac: string): readonly number[];
  /** The MAC the neighbour table holds for an address, or null. */
  macOf(ip: string): string | null;
}

/**
 * Finds the bridge ports of the backends (pure): ifindex -> backend address, and the addresses
 * whose port is not known.
 *
 * @example
 * hairpinPorts([{ ip: '10.8.64.7', mac: '02:00:00:00:00:07', ifindex: null }], view);
 * // { found: Map { 9 => '10.8.64.7' }, unresolved: [] }
 */
export function hairpinPorts(
  backends: readonly Backend[],
  view: BridgeView,
): { found: Map<number, string>; unresolved: string[] } {
  const ports = view.ports();
  const found = new Map<number, string>();
  const unresolved: string[] = [];
  for (const b of backends) {
    const mac = b.mac ?? view.macOf(b.ip);
    const learned = mac === null ? [] : view.portsOf(mac).filter((p) => ports.has(p));
    const port = b.ifindex !== null && ports.has(b.ifindex) ? b.ifindex : learned[0];
    if (port === undefined) unresolved.push(b.ip);
    else found.set(port, b.ip);
  }
  return { found, unresolved };
}

/** Keeps hairpin mode on exactly the bridge ports of node-port backends. */
export class HairpinPorts {
  readonly #view: BridgeView;
  /** Ports with hairpin mode on: ifindex -> the backend address it is on for. */
  #on = new Map<number, string>();
  /** br_netfilter as the last `update` found it (re-read there; `include` is the hot path). */
  #brNetfilter: boolean | null = null;

  /** Manages hairpin on the ports of the bridge `view` shows. */
  constructor(view: BridgeView) {
    this.#view = view;
  }

  /**
   * Updates hairpin mode for the current backends; resolves to the addresses whose port is not
   * known yet. A backend whose port is no longer known (its FDB entry aged out while it was
   * quiet) keeps the port it had while that port is on the bridge. Does nothing (and turns
   * nothing on) while br_netfilter is inactive.
   */
  async update(backends: readonly Backend[]): Promise<string[]> {
    this.#brNetfilter = await brNetfilterActive();
    if (!this.#brNetfilter) return [];
    const ports = this.#view.ports();
    const { found, unresolved } = hairpinPorts(backends, this.#view);
    const waiting = new Set(unresolved);
    for (const [ifindex, ip] of this.#on) {
      if (waiting.has(ip) && ports.has(ifindex) && !found.has(ifindex)) found.set(ifindex, ip);
    }
    for (const ifindex of found.keys()) {
      if (!this.#on.has(ifindex)) await setHairpin(ports.get(ifindex), true);
    }
    for (const ifindex of this.#on.keys()) {
      if (!found.has(ifindex)) await setHairpin(ports.get(ifindex), false);
    }
    this.#on = found;
    return unresolved;
  }

  /**
   * Turns hairpin mode on for one more backend (a node port just added), leaving the others;
   * the next `update` settles the whole set. Resolves to false when its port is not known yet.
   * Whether br_netfilter is active is taken from the last `update` (a sysctl read per node-port
   * change would cost more than the rest of it).
   */
  async include(backend: Backend): Promise<boolean> {
    this.#brNetfilter ??= await brNetfilterActive();
    if (!this.#brNetfilter) return true;
    const ports = this.#view.ports();
    const { found } = hairpinPorts([backend], this.#view);
    for (const [ifindex, ip] of found) {
      if (!this.#on.has(ifindex)) await setHairpin(ports.get(ifindex), true);
      this.#on.set(ifindex, ip);
    }
    return found.size > 0;
  }

  /** Forgets every port (a new bridge instance: its ports start with hairpin off). */
  reset(): void {
    this.#on.clear();
  }
}

/** Sets hairpin mode on a port by name; a port that is gone (no name) needs nothing. */
async function setHairpin(port: string | undefined, on: boolean): Promise<void> {
  if (port === undefined) return;
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
  // Turning it off on a port that is going away (its sandbox was deleted) is not an error.
  await run(argv, { check: on });
}

async function brNetfilterActive(): Promise<boolean> {
  try {
    return (await readFile('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8')).trim() === '1';
  } catch {
    return false;
  }
}
