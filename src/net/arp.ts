/**
 * Ethernet + IPv4-over-Ethernet ARP frames (RFC 826), with at most one 802.1Q/802.1ad tag:
 * building them (probes, announcements, test traffic) and parsing them with every length and
 * field checked. Pure: bytes in, data out.
 *
 * @example
 * const frame = buildProbe('02:00:00:00:00:01', '10.8.64.2');
 * const p = parseArpFrame(frame); // { ok: true, frame: { op: 'request', senderIp: '0.0.0.0', ... } }
 * arpKind(p.frame); // 'probe'
 */
import { invalid } from '../errors.js';
import { formatIp, formatMac, parseIp, parseMac } from './ipv4.js';

/** The ARP ethertype. */
export const ETH_P_ARP = 0x0806;
/** The IPv4 ethertype (ARP's protocol type). */
export const ETH_P_IP = 0x0800;
/** 802.1Q (customer) VLAN tag. */
export const ETH_P_8021Q = 0x8100;
/** 802.1ad (service) VLAN tag. */
export const ETH_P_8021AD = 0x88a8;
/** The broadcast MAC. */
export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';
/** The all-zero MAC (unknown target hardware address). */
export const ZERO_MAC = '00:00:00:00:00:00';

const ETH_HLEN = 14;
const VLAN_HLEN = 4;
const ARP_LEN = 28;
/** Minimum Ethernet frame without FCS; shorter frames are padded with zeros. */
const ETH_MIN = 60;

/** ARP operation. */
export type ArpOp = 'request' | 'reply';

/** A parsed (or to-be-built) Ethernet ARP frame. Addresses are lowercase text. */
export interface ArpFrame {
  /** Ethernet destination MAC. */
  readonly ethDst: string;
  /** Ethernet source MAC. */
  readonly ethSrc: string;
  /** VLAN id of the one tag, or null when untagged. */
  readonly vlan: number | null;
  /** ARP operation. */
  readonly op: ArpOp;
  /** Sender hardware address. */
  readonly senderMac: string;
  /** Sender protocol address (0.0.0.0 in an RFC 5227 probe). */
  readonly senderIp: string;
  /** Target hardware address. */
  readonly targetMac: string;
  /** Target protocol address. */
  readonly targetIp: string;
}

/** Why a frame is not a usable ARP frame. */
export type ArpRejection =
  /** Not ARP at all (another ethertype); not an error. */
  | 'not-arp'
  /** Shorter than its headers say. */
  | 'truncated'
  /** ARP, but not Ethernet/IPv4, or an unknown operation. */
  | 'unsupported'
  /** Sender MAC is multicast, broadcast or zero, or sender IP 0 outside a probe. */
  | 'invalid-sender';

/** Result of `parseArpFrame`. */
export type ArpParse =
  | { readonly ok: true; readonly frame: ArpFrame }
  | { readonly ok: false; readonly reason: ArpRejection };

/** What an ARP frame means (RFC 5227 terms). */
export type ArpKind = 'request' | 'reply' | 'announce' | 'probe';

/**
 * Parses an Ethernet frame. Returns `not-arp` for other ethertypes; any ARP frame that is
 * truncated, not Ethernet/IPv4, or has an impossible sender is rejected with a reason.
 *
 * @example parseArpFrame(Buffer.alloc(10)) // { ok: false, reason: 'truncated' }
 */
export function parseArpFrame(buf: Uint8Array): ArpParse {
  if (buf.length < ETH_HLEN) return { ok: false, reason: 'truncated' };
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let proto = view.getUint16(12);
  let off = ETH_HLEN;
  let vlan: number | null = null;
  if (proto === ETH_P_8021Q || proto === ETH_P_8021AD) {
    if (buf.length < ETH_HLEN + VLAN_HLEN) return { ok: false, reason: 'truncated' };
    vlan = view.getUint16(ETH_HLEN) & 0x0fff;
    proto = view.getUint16(ETH_HLEN + 2);
    off += VLAN_HLEN;
  }
  if (proto !== ETH_P_ARP) return { ok: false, reason: 'not-arp' };
  if (buf.length < off + ARP_LEN) return { ok: false, reason: 'truncated' };
  const htype = view.getUint16(off);
  const ptype = view.getUint16(off + 2);
  const opcode = view.getUint16(off + 6);
  if (
    htype !== 1 ||
    ptype !== ETH_P_IP ||
    buf[off + 4] !== 6 ||
    buf[off + 5] !== 4 ||
    (opcode !== 1 && opcode !== 2)
  ) {
    return { ok: false, reason: 'unsupported' };
  }
  const sha = buf.subarray(off + 8, off + 14);
  const sip = view.getUint32(off + 14);
  const tip = view.getUint32(off + 24);
  const op: ArpOp = opcode === 1 ? 'request' : 'reply';
  const sipZeroOutsideProbe = sip === 0 && (op !== 'request' || tip === 0);
  if ((sha[0] as number) & 1 || sha.every((b) => b === 0) || sipZeroOutsideProbe) {
    return { ok: false, reason: 'invalid-sender' };
  }
  return {
    ok: true,
    frame: {
      ethDst: formatMac(buf.subarray(0, 6)),
      ethSrc: formatMac(buf.subarray(6, 12)),
      vlan,
      op,
      senderMac: formatMac(sha),
      senderIp: formatIp(sip),
      targetMac: formatMac(buf.subarray(off + 18, off + 24)),
      targetIp: formatIp(tip),
    },
  };
}

/**
 * Classifies a parsed frame: `probe` (sender IP 0.0.0.0), `announce` (gratuitous: sender IP ==
 * target IP), otherwise its operation.
 *
 * @example arpKind({ ...f, senderIp: '10.8.64.2', targetIp: '10.8.64.2' }) // 'announce'
 */
export function arpKind(f: ArpFrame): ArpKind {
  if (f.senderIp === '0.0.0.0') return 'probe';
  if (f.senderIp === f.targetIp) return 'announce';
  return f.op;
}

/**
 * Builds an Ethernet ARP frame, padded to the 60-byte Ethernet minimum.
 *
 * @example buildArpFrame({ ethDst: BROADCAST_MAC, ethSrc: mac, vlan: null, op: 'request', senderMac: mac, senderIp: '10.8.64.2', targetMac: ZERO_MAC, targetIp: '10.8.64.1' })
 * @throws BridgewardError INVALID_ARGUMENT for a malformed address or a VLAN id outside 0..4095.
 */
export function buildArpFrame(f: ArpFrame): Buffer {
  if (f.vlan !== null && !(Number.isInteger(f.vlan) && f.vlan >= 0 && f.vlan <= 4095)) {
    throw invalid(`invalid VLAN id ${f.vlan}`);
  }
  const off = f.vlan === null ? ETH_HLEN : ETH_HLEN + VLAN_HLEN;
  const buf = Buffer.alloc(Math.max(ETH_MIN, off + ARP_LEN));
  macBytes(f.ethDst).copy(buf, 0);
  macBytes(f.ethSrc).copy(buf, 6);
  if (f.vlan !== null) {
    buf.writeUInt16BE(ETH_P_8021Q, 12);
    buf.writeUInt16BE(f.vlan, 14);
  }
  buf.writeUInt16BE(ETH_P_ARP, off - 2);
  buf.writeUInt16BE(1, off);
  buf.writeUInt16BE(ETH_P_IP, off + 2);
  buf[off + 4] = 6;
  buf[off + 5] = 4;
  buf.writeUInt16BE(f.op === 'request' ? 1 : 2, off + 6);
  macBytes(f.senderMac).copy(buf, off + 8);
  buf.writeUInt32BE(parseIp(f.senderIp), off + 14);
  macBytes(f.targetMac).copy(buf, off + 18);
  buf.writeUInt32BE(parseIp(f.targetIp), off + 24);
  return buf;
}

/**
 * An RFC 5227 probe for `ip` from `srcMac`: a broadcast request with sender IP 0.0.0.0 and a
 * zero target MAC.
 *
 * @example buildProbe('02:00:00:00:00:01', '10.8.64.2').length // 60
 */
export function buildProbe(srcMac: string, ip: string): Buffer {
  return buildArpFrame({
    ethDst: BROADCAST_MAC,
    ethSrc: srcMac,
    vlan: null,
    op: 'request',
    senderMac: srcMac,
    senderIp: '0.0.0.0',
    targetMac: ZERO_MAC,
    targetIp: ip,
  });
}

function macBytes(mac: string): Buffer {
  return Buffer.from(parseMac(mac).split(':').join(''), 'hex');
}

/**
 * True when `f` answers (or contests) an RFC 5227 probe for `ip` sent from `ownMac`: any ARP
 * whose sender IP is `ip`, or another host's probe for `ip`, from a sender other than us. Frames
 * whose Ethernet source differs from the ARP sender MAC are ignored (RFC 5227 section 2.1.1).
 *
 * @example isProbeAnswer(reply, '10.8.64.2', bridgeMac) // true when reply.senderIp === '10.8.64.2'
 */
export function isProbeAnswer(f: ArpFrame, ip: string, ownMac: string): boolean {
  if (f.senderMac === ownMac || f.ethSrc !== f.senderMac) return false;
  return f.senderIp === ip || (arpKind(f) === 'probe' && f.targetIp === ip);
}
