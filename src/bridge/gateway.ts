/**
 * Keeps the gateway address on the current bridge. Adding it is idempotent (the runtime may
 * assign it at the same moment: EEXIST is success). When anyone removes it while the bridge
 * exists, it is put back at once (driven by the address notification, no polling), logged and
 * counted in `bridgeward_drift_repairs_total{object="gateway-address"}`. An address of the same
 * IP with another prefix length is somebody's deliberate choice: it is reported once per bridge
 * instance and left alone.
 *
 * @example
 * const gw = GatewayAddress.start({ rtnl, ip: '10.8.64.1', prefixLength: 24, bridgeName: 'rt0', log, metrics });
 * await gw.bind(bridge.index); // on every bridge instance
 * gw.unbind();                 // when it goes
 * gw.close();
 */
import { isBridgewardError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Rtnl } from '../observe/rtnl.js';

/** What the keeper needs. */
export interface GatewayAddressOptions {
  /** The rtnetlink adapter. */
  readonly rtnl: Rtnl;
  /** The gateway address. */
  readonly ip: string;
  /** Its prefix length (the sandbox subnet's). */
  readonly prefixLength: number;
  /** The bridge's name (for messages). */
  readonly bridgeName: string;
  /** Logger. */
  readonly log: Logger;
  /** Repairs are counted here. */
  readonly metrics: Pick<Metrics, 'driftRepairs'>;
}

/** What `ensure` found or did. */
export type GatewayOutcome = 'added' | 'present' | 'other-prefix' | 'bridge-gone';

/** The gateway address on the current bridge, kept there. */
export class GatewayAddress {
  readonly #o: GatewayAddressOptions;
  #ifindex: number | null = null;
  #warned: string | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #unsubscribe: (() => void) | null = null;

  private constructor(opts: GatewayAddressOptions) {
    this.#o = opts;
  }

  /** Starts watching address notifications; nothing is added until `bind`. */
  static start(opts: GatewayAddressOptions): GatewayAddress {
    const g = new GatewayAddress(opts);
    g.#unsubscribe = opts.rtnl.subscribe(
      ['IPV4_IFADDR'],
      (e) => {
        if (
          e.type === 'address' &&
          e.deleted &&
          e.address.index === g.#ifindex &&
          e.address.ip === opts.ip
        )
          g.#repair();
      },
      () => g.#repair(),
    );
    return g;
  }

  /**
   * Puts the gateway on bridge `ifindex` (a new instance) and keeps it there.
   *
   * @throws BridgewardError KERNEL_ERROR / MISSING_PRIVILEGE when the kernel refuses (other than
   *   the bridge vanishing meanwhile, which resolves to `bridge-gone`).
   */
  bind(ifindex: number): Promise<GatewayOutcome> {
    this.#ifindex = ifindex;
    return this.#serial(() => this.#ensure(ifindex));
  }

  /** The bridge went away: nothing to keep until the next `bind`. */
  unbind(): void {
    this.#ifindex = null;
  }

  /** Stops watching. */
  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.#ifindex = null;
  }

  /** The address was removed (or notifications were lost): put it back if it is missing. */
  #repair(): void {
    const ifindex = this.#ifindex;
    if (ifindex === null) return;
    void this.#serial(async () => {
      const outcome = await this.#ensure(ifindex);
      if (outcome !== 'added') return;
      this.#o.metrics.driftRepairs.inc({ object: 'gateway-address' });
      this.#o.log.warn(
        { bridge: this.#o.bridgeName, ifindex, gateway: this.#o.ip },
        `gateway address ${this.#o.ip}/${this.#o.prefixLength} was removed from ${this.#o.bridgeName}; restored`,
      );
    }).catch((err: unknown) =>
      this.#o.log.error({ err, gateway: this.#o.ip }, 'cannot restore the gateway address'),
    );
  }

  async #ensure(ifindex: number): Promise<GatewayOutcome> {
    const { rtnl, ip, prefixLength, bridgeName, log } = this.#o;
    if (this.#ifindex !== ifindex) return 'bridge-gone';
    try {
      const mine = (await rtnl.addresses()).filter((a) => a.index === ifindex && a.ip === ip);
      if (mine.some((a) => a.prefixLength === prefixLength)) return 'present';
      const other = mine[0];
      if (other) {
        const key = `${ifindex}/${other.prefixLength}`;
        if (this.#warned !== key) {
          this.#warned = key;
          log.warn(
            {
              bridge: bridgeName,
              gateway: ip,
              found: other.prefixLength,
              configured: prefixLength,
            },
            `gateway ${ip} is on ${bridgeName} as /${other.prefixLength}, not /${prefixLength} as configured; leaving it as it is`,
          );
        }
        return 'other-prefix';
      }
      // EEXIST: the runtime added it a moment ago; that is the same result.
      return (await rtnl.addAddress(ifindex, ip, prefixLength)) === 'added' ? 'added' : 'present';
    } catch (e) {
      if (this.#ifindex !== ifindex || (isBridgewardError(e) && e.details?.errno === 'ENODEV'))
        return 'bridge-gone';
      throw e;
    }
  }

  #serial<T>(f: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(f, f);
    this.#queue = next.catch(() => undefined);
    return next;
  }
}
