/**
 * The agent's use of the RFC 5227 probe: on demand (`POST /v1/probe`), before an address is
 * handed out (the IPAM pre-handout check, when no probe found it silent recently enough: see
 * `ipam/candidate-prober.ts`), in batches for the candidates the background prober keeps fresh,
 * and for every leased address at boot. Every answer becomes a `probe-reply`
 * observation for the detector, so a silent duplicate that a passive observer never sees still
 * raises a finding. One probe socket is kept per bridge instance (opening and closing one costs
 * milliseconds of waiting in the kernel).
 *
 * @example
 * const prober = new AddressProber({ bridge, pipeline, detector, store, log });
 * ipam.setPreHandoutCheck((ip) => prober.preHandoutCheck(ip));
 * await prober.probe('10.8.64.2', 500); // [{ mac, port, ifindex, sandbox, rttMs }]
 * await prober.probeMany(['10.8.64.3', '10.8.64.4']); // prober.silentAt('10.8.64.3'): when
 */
import { BridgewardError, isBridgewardError } from '../errors.js';
import type { BridgeLifecycle } from '../bridge/lifecycle.js';
import type { Logger } from '../log.js';
import type { ProbeAnswer } from '../api/probe-routes.js';
import { ArpProbeSocket, type ProbeReply } from '../observe/arp-probe.js';
import type { BridgeListener } from '../bridge/lifecycle.js';
import type { LiveEvidence } from '../observe/types.js';
import type { LeaseStore } from '../store/types.js';
import type { ConflictDetector } from './detector.js';
import type { DetectionPipeline } from './pipeline.js';

/** What the prober needs. */
export interface ProberOptions {
  /** The current bridge: probes go out of it, from its MAC. */
  readonly bridge: Pick<BridgeLifecycle, 'require' | 'current'>;
  /** Where answers go as observations. */
  readonly pipeline: Pick<DetectionPipeline, 'submit'>;
  /** Resolves a MAC's port. */
  readonly detector: Pick<ConflictDetector, 'portOf'>;
  /** Resolves a MAC's or port's sandbox. */
  readonly store: Pick<LeaseStore, 'snapshot'>;
  /** Logger. */
  readonly log: Logger;
  /** Answer window of the pre-handout and boot probes (ms, default 100). */
  readonly checkTimeoutMs?: number;
  /** Called for every malformed ARP frame the probe socket saw. */
  readonly onMalformed?: () => void;
}

/** Sends probes and reports what answered. */
export class AddressProber {
  readonly #o: ProberOptions;
  /** When the last probe of each address that got no answer started (ms since the epoch). */
  readonly #silentAt = new Map<string, number>();
  /** The bridge instance those probes went out on (another instance's silence says nothing). */
  #probedOn: number | null = null;
  /** The probe socket, kept on the current bridge instance. */
  #socket: ArpProbeSocket | null = null;

  /** Closes the probe socket when its bridge instance goes (the next probe opens one anew). */
  readonly bridgeListener: BridgeListener = { bridgeDown: () => this.close() };

  /** Creates a prober; it sends nothing until asked. */
  constructor(opts: ProberOptions) {
    this.#o = opts;
  }

  /** Closes the probe socket (probes in flight end with what they collected). */
  close(): void {
    this.#socket?.close();
    this.#socket = null;
  }

  /**
   * Probes `ip` and lists every MAC that answered within `timeoutMs`.
   *
   * @throws BridgewardError BRIDGE_ABSENT while there is no bridge (also when it vanishes during
   *   the probe); MISSING_FEATURE without the native addon or a bridge MAC.
   */
  async probe(ip: string, timeoutMs: number): Promise<ProbeAnswer[]> {
    const sent = Date.now();
    const replies = (await this.#probeAll([ip], timeoutMs)).get(ip) ?? [];
    if (replies.length === 0) return [];
    const { leases } = await this.#o.store.snapshot();
    return replies.map((r) => {
      const port = this.#o.detector.portOf(r.mac);
      const lease =
        leases.find((l) => l.mac === r.mac) ??
        (port ? leases.find((l) => l.ifindex === port.ifindex) : undefined);
      return {
        mac: r.mac,
        port: port?.name ?? null,
        ifindex: port?.ifindex ?? null,
        sandbox: lease?.sandbox ?? null,
        rttMs: Math.max(0, r.at - sent),
      };
    });
  }

  /**
   * Probes several addresses in one window (the pre-handout window) and records which were
   * silent; answers go to the detector.
   *
   * @throws BridgewardError as `probe`.
   */
  async probeMany(ips: readonly string[]): Promise<void> {
    await this.#probeAll(ips, this.#o.checkTimeoutMs ?? 100);
  }

  /** When the last probe of `ip` that got no answer started, unless one answered since. */
  silentAt(ip: string): number | undefined {
    return this.#silentAt.get(ip);
  }

  /**
   * The IPAM pre-handout check: probes an address before it is handed out; evidence when anyone
   * answered (the address is then skipped and quarantined, and probed again before any later
   * handout).
   */
  async preHandoutCheck(ip: string): Promise<LiveEvidence | null> {
    const answers = await this.probe(ip, this.#o.checkTimeoutMs ?? 100);
    if (answers.length === 0) return null;
    return {
      ip,
      macs: answers.map((a) => a.mac),
      ifindexes: answers.flatMap((a) => (a.ifindex === null ? [] : [a.ifindex])),
      sources: ['probe'],
      lastSeen: Date.now(),
    };
  }

  /** Probes every leased address once (at boot), one at a time; failures are logged. */
  async probeLeased(): Promise<number> {
    const { leases } = await this.#o.store.snapshot();
    let answered = 0;
    for (const l of leases) {
      try {
        if ((await this.probe(l.ip, this.#o.checkTimeoutMs ?? 100)).length > 0) answered++;
      } catch (err) {
        this.#o.log.warn({ err, ip: l.ip }, 'boot probe failed');
        return answered;
      }
    }
    return answered;
  }

  /** Probes `ips` in one window, records the silent ones and reports every answer. */
  async #probeAll(ips: readonly string[], timeoutMs: number): Promise<Map<string, ProbeReply[]>> {
    const bridge = this.#o.bridge.require();
    if (bridge.mac === null) {
      throw new BridgewardError('MISSING_FEATURE', 'the bridge has no MAC to probe from');
    }
    if (this.#probedOn !== bridge.index) {
      this.#silentAt.clear();
      this.#probedOn = bridge.index;
    }
    const sent = Date.now();
    let replies: Map<string, ProbeReply[]>;
    try {
      replies = await this.#socketOn(bridge.index).probe({
        srcMac: bridge.mac,
        ips,
        timeoutMs,
      });
    } catch (e) {
      if (isBridgewardError(e, 'KERNEL_ERROR') && bridgeVanished(e, bridge.index, this.#o.bridge)) {
        throw new BridgewardError('BRIDGE_ABSENT', 'the bridge went away during a probe', {
          retryable: true,
        });
      }
      throw e;
    }
    for (const ip of ips) {
      const answers = replies.get(ip);
      if (answers === undefined) this.#silentAt.set(ip, sent);
      else this.#silentAt.delete(ip);
      for (const r of answers ?? []) this.#observe(ip, r);
    }
    return replies;
  }

  /** The kept socket on bridge `ifindex`, opened (again) when the instance changed. */
  #socketOn(ifindex: number): ArpProbeSocket {
    if (this.#socket?.ifindex !== ifindex) {
      this.close();
      this.#socket = ArpProbeSocket.open(ifindex, this.#o.onMalformed);
    }
    return this.#socket;
  }

  #observe(ip: string, r: ProbeReply): void {
    this.#o.pipeline.submit({
      source: 'probe',
      kind: 'probe-reply',
      ip,
      mac: r.mac,
      ifindex: this.#o.detector.portOf(r.mac)?.ifindex ?? null,
      at: r.at,
    });
  }
}

/** Socket errors of a device that is gone. */
const GONE_ERRNOS: ReadonlySet<unknown> = new Set(['ENODEV', 'ENXIO', 'ENETDOWN']);

/** Whether a probe failed because its bridge instance is gone (or going). */
function bridgeVanished(
  e: BridgewardError,
  ifindex: number,
  bridge: Pick<BridgeLifecycle, 'current'>,
): boolean {
  return bridge.current()?.index !== ifindex || GONE_ERRNOS.has(e.details?.errno);
}
