/**
 * The agent's use of the RFC 5227 probe: on demand (`POST /v1/probe`), before an address is
 * handed out for the first time since start (the IPAM pre-handout check), and for every leased
 * address at boot. Every answer becomes a `probe-reply` observation for the detector, so a silent
 * duplicate that a passive observer never sees still raises a finding.
 *
 * @example
 * const prober = new AddressProber({ bridge, pipeline, detector, store, log });
 * ipam.setPreHandoutCheck((ip) => prober.preHandoutCheck(ip));
 * await prober.probe('10.8.64.2', 500); // [{ mac, port, ifindex, sandbox, rttMs }]
 */
import { BridgewardError, isBridgewardError } from '../errors.js';
import type { BridgeLifecycle } from '../bridge/lifecycle.js';
import type { Logger } from '../log.js';
import type { ProbeAnswer } from '../api/probe-routes.js';
import { probeAddress, type ProbeReply } from '../observe/arp-probe.js';
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
  /** Addresses whose last probe since start got no answer: not probed again before handout. */
  readonly #silentSinceStart = new Set<string>();

  /** Creates a prober; it sends nothing until asked. */
  constructor(opts: ProberOptions) {
    this.#o = opts;
  }

  /**
   * Probes `ip` and lists every MAC that answered within `timeoutMs`.
   *
   * @throws BridgewardError BRIDGE_ABSENT while there is no bridge (also when it vanishes during
   *   the probe); MISSING_FEATURE without the native addon or a bridge MAC.
   */
  async probe(ip: string, timeoutMs: number): Promise<ProbeAnswer[]> {
    const bridge = this.#o.bridge.require();
    if (bridge.mac === null) {
      throw new BridgewardError('MISSING_FEATURE', 'the bridge has no MAC to probe from');
    }
    const sent = Date.now();
    let replies: ProbeReply[];
    try {
      replies = await probeAddress({
        ifindex: bridge.index,
        srcMac: bridge.mac,
        ip,
        timeoutMs,
        onMalformed: this.#o.onMalformed,
      });
    } catch (e) {
      if (isBridgewardError(e, 'KERNEL_ERROR') && bridgeVanished(e, bridge.index, this.#o.bridge)) {
        throw new BridgewardError(
          'BRIDGE_ABSENT',
          `the bridge went away during the probe of ${ip}`,
          {
            retryable: true,
          },
        );
      }
      throw e;
    }
    if (replies.length === 0) this.#silentSinceStart.add(ip);
    else this.#silentSinceStart.delete(ip);
    for (const r of replies) this.#observe(ip, r);
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
   * The IPAM pre-handout check: probes an address before it is handed out unless a probe since
   * start already found it silent; evidence when anyone answered (the address is then skipped
   * and quarantined, and probed again before any later handout).
   */
  async preHandoutCheck(ip: string): Promise<LiveEvidence | null> {
    if (this.#silentSinceStart.has(ip)) return null;
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
