/**
 * The active RFC 5227 probe: sends ARP probes (sender IP 0.0.0.0, from the bridge's MAC) for
 * addresses out of the bridge through an AF_PACKET socket, and collects every MAC that answers
 * within a window. It finds silent duplicates that a passive observer never sees. The agent
 * keeps one `ArpProbeSocket` per bridge instance; `probeAddress(es)` open one for a single use.
 *
 * @example
 * const answers = await probeAddress({ ifindex: bridge.index, srcMac: bridge.mac, ip: '10.8.64.2', timeoutMs: 300 });
 * // [{ mac: '02:aa:00:00:00:01', at: 1764048000123 }]
 */
import { arpAnswerFilter } from '../net/arp-answer-filter.js';
import { BridgewardError, invalid } from '../errors.js';
import { ETH_P_ARP, buildProbe, isProbeAnswer, parseArpFrame } from '../net/arp.js';
import { isIp, parseMac } from '../net/ipv4.js';
import { loadNative, nativeFailure, type Closable } from '../native.js';

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
 * Probes every address of `ips` in the same window through a socket opened for it, and resolves,
 * after `timeoutMs`, with the MACs that answered for each (addresses nobody answered for are
 * absent). For repeated probes keep an `ArpProbeSocket` instead: opening and closing a packet
 * socket waits for an RCU grace period each time.
 *
 * @example
 * const answered = await probeAddresses({ ifindex, srcMac, ips: ['10.8.64.2', '10.8.64.3'], timeoutMs: 100 });
 * answered.has('10.8.64.3'); // false: silent
 * @throws BridgewardError as `probeAddress`.
 */
export async function probeAddresses(req: BatchProbeRequest): Promise<Map<string, ProbeReply[]>> {
  checkRequest(req);
  const socket = ArpProbeSocket.open(req.ifindex, req.onMalformed);
  try {
    return await socket.probe(req);
  } finally {
    socket.close();
  }
}

/** What one probe window of a kept socket collects. */
interface Window {
  readonly ips: ReadonlySet<string>;
  readonly ownMac: string;
  readonly replies: Map<string, Map<string, number>>;
}

/**
 * An AF_PACKET ARP socket kept on one interface (one bridge instance) for repeated probes: it
 * receives frames only while a probe window is open (a socket filter drops them otherwise), and
 * overlapping windows share it.
 *
 * @example
 * const sock = ArpProbeSocket.open(bridge.index);
 * const answered = await sock.probe({ srcMac: bridge.mac, ips: ['10.8.64.2'], timeoutMs: 100 });
 * sock.close();
 */
export class ArpProbeSocket {
  /** The interface it is bound to. */
  readonly ifindex: number;
  readonly #socket: Closable & { send(frame: Buffer): void; listen(on: boolean | Buffer): void };
  readonly #windows = new Set<Window>();

  private constructor(
    ifindex: number,
    socket: Closable & { send(frame: Buffer): void; listen(on: boolean | Buffer): void },
  ) {
    this.ifindex = ifindex;
    this.#socket = socket;
  }

  /**
   * Opens the socket on `ifindex`, not listening yet.
   *
   * @throws BridgewardError MISSING_FEATURE without the addon; MISSING_PRIVILEGE without
   *   CAP_NET_RAW; KERNEL_ERROR when the socket fails.
   */
  static open(ifindex: number, onMalformed?: () => void): ArpProbeSocket {
    if (!Number.isInteger(ifindex) || ifindex <= 0) throw invalid(`invalid ifindex ${ifindex}`);
    const native = loadNative();
    if (!native.addon) throw new BridgewardError('MISSING_FEATURE', native.error);
    let self: ArpProbeSocket | null = null;
    try {
      const socket = new native.addon.PacketSocket(
        ifindex,
        ETH_P_ARP,
        (frames) => {
          if (self) self.#received(frames, onMalformed);
        },
        false,
      );
      self = new ArpProbeSocket(ifindex, socket);
      return self;
    } catch (e) {
      throw nativeFailure(e, `opening an ARP socket on ifindex ${ifindex}`);
    }
  }

  /**
   * Probes every address of `req.ips` in one window and resolves, after `req.timeoutMs`, with the
   * MACs that answered for each (addresses nobody answered for are absent).
   *
   * @throws BridgewardError INVALID_ARGUMENT for a bad request; KERNEL_ERROR when sending fails.
   */
  async probe(req: Omit<BatchProbeRequest, 'ifindex'>): Promise<Map<string, ProbeReply[]>> {
    checkRequest({ ...req, ifindex: this.ifindex });
    const ips = new Set(req.ips);
    const ownMac = parseMac(req.srcMac);
    const count = Math.max(1, req.count ?? 2);
    const window: Window = { ips, ownMac, replies: new Map() };
    this.#open(window);
    const frames = [...ips].map((ip) => ({ ip, frame: buildProbe(ownMac, ip) }));
    const timers: NodeJS.Timeout[] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        const send = () => {
          for (const { ip, frame } of frames) {
            try {
              this.#socket.send(frame);
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
      this.#shut(window);
    }
    return new Map(
      [...window.replies].map(([ip, macs]) => [ip, [...macs].map(([mac, at]) => ({ mac, at }))]),
    );
  }

  /** Closes the socket (windows still open end with what they collected). */
  close(): void {
    this.#socket.close();
  }

  /** Opens a window: the socket now takes the ARP frames naming any open window's address. */
  #open(w: Window): void {
    this.#windows.add(w);
    try {
      this.#socket.listen(this.#filter());
    } catch (e) {
      this.#windows.delete(w);
      throw nativeFailure(e, `listening for ARP answers on ifindex ${this.ifindex}`);
    }
  }

  #shut(w: Window): void {
    this.#windows.delete(w);
    try {
      this.#socket.listen(this.#windows.size === 0 ? false : this.#filter());
    } catch {
      // closed meanwhile (the bridge went away): nothing is received any more anyway
    }
  }

  /** The filter for the open windows' addresses (every ARP frame when they are too many). */
  #filter(): Buffer | true {
    const ips = new Set<string>();
    for (const w of this.#windows) for (const ip of w.ips) ips.add(ip);
    return arpAnswerFilter(ips) ?? true;
  }

  #received(frames: Buffer[], onMalformed?: () => void): void {
    const at = Date.now();
    for (const raw of frames) {
      const p = parseArpFrame(raw);
      if (!p.ok) {
        if (p.reason !== 'not-arp') onMalformed?.();
        continue;
      }
      for (const w of this.#windows) {
        for (const ip of new Set([p.frame.senderIp, p.frame.targetIp])) {
          if (!w.ips.has(ip) || !isProbeAnswer(p.frame, ip, w.ownMac)) continue;
          const macs = w.replies.get(ip) ?? new Map<string, number>();
          if (!macs.has(p.frame.senderMac)) macs.set(p.frame.senderMac, at);
          w.replies.set(ip, macs);
        }
      }
    }
  }
}

function checkRequest(req: BatchProbeRequest): void {
  for (const ip of req.ips) {
    if (!isIp(ip) || ip === '0.0.0.0') throw invalid(`cannot probe ${JSON.stringify(ip)}`);
  }
  if (req.ips.length === 0) throw invalid('no address to probe');
  if (!Number.isInteger(req.ifindex) || req.ifindex <= 0)
    throw invalid(`invalid ifindex ${req.ifindex}`);
  if (!(Number.isFinite(req.timeoutMs) && req.timeoutMs > 0 && req.timeoutMs <= 60_000)) {
    throw invalid(`probe timeout ${req.timeoutMs} ms is outside 1..60000`);
  }
}
