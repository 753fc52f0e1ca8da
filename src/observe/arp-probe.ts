/**
 * The active RFC 5227 probe: sends ARP probes (sender IP 0.0.0.0, from the bridge's MAC) for one
 * address out of the bridge through an AF_PACKET socket, and collects every MAC that answers
 * within a window. It finds silent duplicates that a passive observer never sees.
 *
 * @example
 * const answers = await probeAddress({ ifindex: bridge.index, srcMac: bridge.mac, ip: '10.8.64.2', timeoutMs: 300 });
 * // [{ mac: '02:aa:00:00:00:01', at: 1764048000123 }]
 */
import { BridgewardError, invalid } from '../errors.js';
import { ETH_P_ARP, buildProbe, isProbeAnswer, parseArpFrame } from '../net/arp.js';
import { isIp, parseMac } from '../net/ipv4.js';
import { loadNative, nativeFailure } from '../native.js';

/** What to probe. */
export interface ProbeRequest {
  /** Interface to probe on (the bridge). */
  readonly ifindex: number;
  /** Our MAC (the bridge's): the probe's source; answers from it are ignored. */
  readonly srcMac: string;
  /** The address to probe. */
  readonly ip: string;
  /** How long to collect answers (ms). */
  readonly timeoutMs: number;
  /** Probes sent, spread over the first half of the window (default 2, at least 1). */
  readonly count?: number;
  /** Told about each received ARP frame that failed validation. */
  readonly onMalformed?: () => void;
}

/** One MAC that answered, with when its first answer arrived (ms since the epoch). */
export interface ProbeReply {
  /** Lowercase colon-separated MAC. */
  readonly mac: string;
  /** Arrival of its first answer (ms since the epoch). */
  readonly at: number;
}

/**
 * Probes `ip` and resolves, after `timeoutMs`, with every MAC that answered (first answer
 * first; empty when none did).
 *
 * @throws BridgewardError INVALID_ARGUMENT for a bad request; MISSING_FEATURE without the addon;
 * MISSING_PRIVILEGE without CAP_NET_RAW; KERNEL_ERROR when the socket fails.
 */
export async function probeAddress(req: ProbeRequest): Promise<ProbeReply[]> {
  return (await probeAddresses({ ...req, ips: [req.ip] })).get(req.ip) ?? [];
}

/** Several addresses probed at once, through one socket and one window. */
export interface BatchProbeRequest extends Omit<ProbeRequest, 'ip'> {
  /** The addresses to probe (at least one). */
  readonly ips: readonly string[];
}

/**
 * Probes every address of `ips` in the same window through one socket and resolves, after
 * `timeoutMs`, with the MACs that answered for each (addresses nobody answered for are absent).
 *
 * @example
 * const answered = await probeAddresses({ ifindex, srcMac, ips: ['10.8.64.2', '10.8.64.3'], timeoutMs: 100 });
 * answered.has('10.8.64.3'); // false: silent
 * @throws BridgewardError as `probeAddress`.
 */
export async function probeAddresses(req: BatchProbeRequest): Promise<Map<string, ProbeReply[]>> {
  const ips = new Set(req.ips);
  for (const ip of ips) {
    if (!isIp(ip) || ip === '0.0.0.0') throw invalid(`cannot probe ${JSON.stringify(ip)}`);
  }
  if (ips.size === 0) throw invalid('no address to probe');
  if (!Number.isInteger(req.ifindex) || req.ifindex <= 0)
    throw invalid(`invalid ifindex ${req.ifindex}`);
  if (!(Number.isFinite(req.timeoutMs) && req.timeoutMs > 0 && req.timeoutMs <= 60_000)) {
    throw invalid(`probe timeout ${req.timeoutMs} ms is outside 1..60000`);
  }
  const ownMac = parseMac(req.srcMac);
  const count = Math.max(1, req.count ?? 2);
  const native = loadNative();
  if (!native.addon) throw new BridgewardError('MISSING_FEATURE', native.error);
  const { PacketSocket } = native.addon;

  const replies = new Map<string, Map<string, number>>();
  let socket: InstanceType<typeof PacketSocket>;
  try {
    socket = new PacketSocket(req.ifindex, ETH_P_ARP, (frames) => {
      const at = Date.now();
      for (const raw of frames) {
        const p = parseArpFrame(raw);
        if (!p.ok) {
          if (p.reason !== 'not-arp') req.onMalformed?.();
          continue;
        }
        for (const ip of new Set([p.frame.senderIp, p.frame.targetIp])) {
          if (!ips.has(ip) || !isProbeAnswer(p.frame, ip, ownMac)) continue;
          const macs = replies.get(ip) ?? new Map<string, number>();
          if (!macs.has(p.frame.senderMac)) macs.set(p.frame.senderMac, at);
          replies.set(ip, macs);
        }
      }
    });
  } catch (e) {
    throw nativeFailure(e, `opening an ARP socket on ifindex ${req.ifindex}`);
  }
  const frames = [...ips].map((ip) => ({ ip, frame: buildProbe(ownMac, ip) }));
  const timers: NodeJS.Timeout[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const send = () => {
        for (const { ip, frame } of frames) {
          try {
            socket.send(frame);
          } catch (e) {
            reject(nativeFailure(e, `sending an ARP probe for ${ip}`));
            return;
          }
        }
      };
      send();
      const gap = req.timeoutMs / 2 / count;
      for (let i = 1; i < count; i++) timers.push(setTimeout(send, gap * i));
      timers.push(setTimeout(resolve, req.timeoutMs));
    });
  } finally {
    for (const t of timers) clearTimeout(t);
    socket.close();
  }
  return new Map(
    [...replies].map(([ip, macs]) => [ip, [...macs].map(([mac, at]) => ({ mac, at }))]),
  );
}
