/**
 * Follows the ports of the bridge through rtnetlink link events (after an initial dump): tells
 * the listener when a port joins (with its name) and when it leaves (deleted, or moved off the
 * bridge), and when the bridge's own MAC changes. A dropped-notification overrun re-dumps.
 *
 * @example
 * const stop = await watchBridgePorts(rtnl, bridge.index, {
 *   up: (ifindex, name) => pipeline.portUp(ifindex, name),
 *   gone: (ifindex) => pipeline.portGone(ifindex),
 *   bridgeMac: (mac) => detector.addHostMac(mac),
 * }, log);
 */
import type { Logger } from '../log.js';
import type { LinkInfo, Rtnl } from '../observe/rtnl.js';

/** Callbacks for port changes. */
export interface BridgePortListener {
  /** A port joined (or an existing port was seen in the dump / renamed). */
  up(ifindex: number, name: string): void;
  /** A port left the bridge or was deleted. */
  gone(ifindex: number): void;
  /** The bridge's MAC (it may change when ports join). */
  bridgeMac(mac: string): void;
}

/** Dumps the ports, then follows link events; resolves to the unsubscribe function. */
export async function watchBridgePorts(
  rtnl: Rtnl,
  bridge: number,
  listener: BridgePortListener,
  log: Logger,
): Promise<() => void> {
  const ports = new Set<number>();
  const apply = (link: LinkInfo, deleted: boolean) => {
    if (link.index === bridge) {
      if (!deleted && link.mac) listener.bridgeMac(link.mac);
      return;
    }
    const isPort = !deleted && link.master === bridge;
    if (isPort) {
      ports.add(link.index);
      listener.up(link.index, link.name);
    } else if (ports.delete(link.index)) {
      listener.gone(link.index);
    }
  };
  const dump = async () => {
    const links = await rtnl.links();
    const present = new Set(links.map((l) => l.index));
    for (const index of [...ports]) {
      if (!present.has(index)) apply({ index } as LinkInfo, true);
    }
    for (const l of links) apply(l, false);
  };
  const unsubscribe = rtnl.subscribe(
    ['LINK'],
    (e) => {
      if (e.type === 'link') apply(e.link, e.deleted);
    },
    () => {
      log.warn('link notifications were dropped (ENOBUFS); re-dumping bridge ports');
      dump().catch((err: unknown) => log.error({ err }, 'bridge port re-dump failed'));
    },
  );
  await dump();
  return unsubscribe;
}
