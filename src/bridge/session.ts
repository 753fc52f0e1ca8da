/**
 * Everything bound to one bridge instance, built in one place when it appears and torn down
 * there when it goes. The parts themselves live as long as the agent; this module tells them
 * about each instance, in order:
 *
 * - up (at start when the bridge exists, when it appears late, when it comes back with a new
 *   ifindex): the bridge-up gauge; the neighbour/FDB view re-dumped for the new ifindex; the
 *   gateway address (idempotent: the runtime may be adding it at the same moment) and its
 *   watch; the per-device sysctls; the identity token server's socket (once); node ports (a
 *   full sync, hairpin on the new ports); a reconcile sweep. The eBPF programs and the
 *   detector follow the ports through their own `BridgeListener`s.
 * - down (deleted, renamed away, replaced by a non-bridge link): the gauge to 0, the neighbour
 *   view emptied, the gateway no longer kept, a reconcile sweep that ends the port bindings of
 *   leases (their ports are gone). Leases, quarantines, node ports and identities are untouched;
 *   reads keep being served and allocation answers BRIDGE_ABSENT until the bridge is back.
 *
 * Steps for one instance run one after another; a step that fails is logged and the rest still
 * run; work for an instance that is already gone again is skipped.
 *
 * @example
 * const session = BridgeSession.start({ bridge, gateway, neighbours, nodePorts, reconciler, identity,
 *   sysctls: enableNodePortSysctls, metrics, log });
 * await session.settled(); // the current instance (if any) is fully set up
 * session.status(); // { name: 'rt0', state: 'present', ifindex: 7, ... }
 */
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { LinkInfo } from '../observe/rtnl.js';
import type { BridgeLifecycle } from './lifecycle.js';
import type { GatewayAddress } from './gateway.js';

/** The bridge as `GET /v1/status` shows it. */
export interface BridgeStatus {
  /** Its name. */
  readonly name: string;
  /** present, absent or not-a-bridge. */
  readonly state: 'present' | 'absent' | 'not-a-bridge';
  /** ifindex of the current instance (or of the non-bridge link), else null. */
  readonly ifindex: number | null;
  /** Its MAC, else null. */
  readonly mac: string | null;
  /** Ports of the current instance. */
  readonly ports: number;
  /** Since when (ISO time) it has been in this state. */
  readonly since: string;
  /** One line for humans. */
  readonly detail: string;
}

/** The agent's parts that hear about bridge instances. */
export interface BridgeSessionParts {
  /** The followed bridge. */
  readonly bridge: BridgeLifecycle;
  /** Keeps the gateway address on the current instance. */
  readonly gateway: Pick<GatewayAddress, 'bind' | 'unbind'>;
  /** The neighbour/FDB view, re-dumped for each instance. */
  readonly neighbours: { setBridge(ifindex: number | null): Promise<void> };
  /** Node ports: a full sync for each instance (hairpin on its ports). */
  readonly nodePorts: { bridgeUp(): Promise<void> };
  /** The reconciler: a sweep for each instance, and when one goes. */
  readonly reconciler: { sweep(trigger: 'bridge'): Promise<unknown>; kick(): void };
  /** The identity token server, listening once the gateway is there; null when off. */
  readonly identity: { listen(): Promise<void> } | null;
  /** Sets the per-device sysctls on the bridge by name. */
  readonly sysctls: (bridge: string) => Promise<unknown>;
  /** The bridge-up gauge. */
  readonly metrics: Pick<Metrics, 'bridgeUp'>;
  /** Logger. */
  readonly log: Logger;
}

/** Binds the agent's parts to each bridge instance. */
export class BridgeSession {
  readonly #p: BridgeSessionParts;
  #queue: Promise<void> = Promise.resolve();
  #unlisten: (() => void) | null = null;

  private constructor(parts: BridgeSessionParts) {
    this.#p = parts;
  }

  /** Starts following; the current instance, if any, is set up right away (see `settled`). */
  static start(parts: BridgeSessionParts): BridgeSession {
    const s = new BridgeSession(parts);
    parts.metrics.bridgeUp.set(0);
    s.#unlisten = parts.bridge.listen({
      bridgeUp: (link) => s.#up(link),
      bridgeDown: (link) => s.#down(link),
      portGone: () => parts.reconciler.kick(),
    });
    if (!parts.bridge.current()) {
      parts.log.warn(
        { bridge: parts.bridge.name },
        `waiting for bridge ${parts.bridge.name} to appear`,
      );
    }
    return s;
  }

  /** Resolves once everything queued so far (set-ups and tear-downs) has run. */
  async settled(): Promise<void> {
    await this.#queue;
  }

  /** The bridge as status shows it. */
  status(): BridgeStatus {
    const { bridge } = this.#p;
    const s = bridge.state();
    return {
      name: bridge.name,
      state: s.kind,
      ifindex: s.kind === 'absent' ? null : s.link.index,
      mac: s.kind === 'absent' ? null : s.link.mac,
      ports: bridge.ports().size,
      since: new Date(bridge.since()).toISOString(),
      detail: bridge.describe(),
    };
  }

  /** Stops following (what is set up stays; the agent is stopping). Waits for queued steps. */
  async stop(): Promise<void> {
    this.#unlisten?.();
    this.#unlisten = null;
    await this.#queue;
  }

  #up(link: LinkInfo): void {
    const { metrics, neighbours } = this.#p;
    metrics.bridgeUp.set(1);
    const dumped = neighbours.setBridge(link.index); // at once: events for it count from now
    this.#enqueue(() => this.#setUp(link, dumped));
  }

  #down(link: LinkInfo): void {
    const { metrics, neighbours, gateway, reconciler, log, bridge } = this.#p;
    metrics.bridgeUp.set(0);
    gateway.unbind();
    void neighbours.setBridge(null);
    log.warn(
      { bridge: bridge.name, ifindex: link.index },
      `${bridge.describe()}; waiting for it to come back (leases, node ports and identities are kept)`,
    );
    reconciler.kick(); // the leases' ports went with it
  }

  async #setUp(link: LinkInfo, dumped: Promise<void>): Promise<void> {
    const { bridge, gateway, sysctls, identity, nodePorts, reconciler, log } = this.#p;
    const t0 = Date.now();
    const steps: [string, () => Promise<unknown>][] = [
      ['gateway address', () => gateway.bind(link.index)],
      ['neighbour and FDB dump', () => dumped],
      ['per-device sysctls', () => sysctls(link.name)],
      ['identity token server', () => identity?.listen() ?? Promise.resolve()],
      ['node ports and hairpin', () => nodePorts.bridgeUp()],
      ['reconcile sweep', () => reconciler.sweep('bridge')],
    ];
    const failed: string[] = [];
    for (const [step, run] of steps) {
      if (bridge.current()?.index !== link.index) {
        log.info({ ifindex: link.index, skipped: step }, 'the bridge went away during its set-up');
        return;
      }
      try {
        const result = await run();
        if (step === 'gateway address' || step === 'per-device sysctls')
          log.info({ ifindex: link.index, step, result }, `bridge set-up: ${step}`);
      } catch (err) {
        failed.push(step);
        log.error({ err, ifindex: link.index, step }, `bridge set-up step failed: ${step}`);
      }
    }
    log.info(
      { bridge: link.name, ifindex: link.index, mac: link.mac, ms: Date.now() - t0, failed },
      'bridge up',
    );
  }

  #enqueue(f: () => Promise<void>): void {
    this.#queue = this.#queue
      .then(f)
      .catch((err: unknown) => this.#p.log.error({ err }, 'bridge session step failed'));
  }
}
