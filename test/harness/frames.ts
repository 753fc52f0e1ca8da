/**
 * Ethernet frames for the program's tests: an ARP request with the defaults they share (on
 * `src/net/arp.ts`'s builder), IPv4/UDP (optionally behind one 802.1Q tag), IPv6, and any other
 * ethertype. The IPv4 header checksum is
 * right (a bridge with br_netfilter drops a wrong one); UDP's is 0 (none).
 *
 * @example
 * ipv4Frame({ ethSrc: a.mac, ethDst: b.mac, src: '10.8.64.2', dst: '10.8.64.3' });
 */
import { BROADCAST_MAC, ZERO_MAC, buildArpFrame, type ArpFrame } from '../../src/net/arp.js';
import { parseIp, parseMac } from '../../src/net/ipv4.js';

/** A broadcast ARP request from `mac` claiming `ip`, about 10.8.64.1 unless `over` says else. */
export function arpRequest(mac: string, ip: string, over: Partial<ArpFrame> = {}): Buffer {
  return buildArpFrame({
    ethDst: BROADCAST_MAC,
    ethSrc: mac,
    vlan: null,
    op: 'request',
    senderMac: mac,
    senderIp: ip,
    targetMac: ZERO_MAC,
    targetIp: '10.8.64.1',
    ...over,
  });
}

/** What an IPv4/UDP frame carries. */
export interface Ipv4FrameSpec {
  /** Ethernet source MAC. */
  readonly ethSrc: string;
  /** Ethernet destination MAC (default broadcast). */
  readonly ethDst?: string;
  /** IPv4 source. */
  readonly src: string;
  /** IPv4 destination. */
  readonly dst: string;
  /** UDP destination port (default 9). */
  readonly port?: number;
  /** One 802.1Q tag with this VLAN id, or none. */
  readonly vlan?: number;
  /** UDP payload (default 'guard'). */
  readonly payload?: string;
}

/** An IPv4/UDP frame, at least 60 bytes. */
export function ipv4Frame(f: Ipv4FrameSpec): Buffer {
  const payload = Buffer.from(f.payload ?? 'guard');
  const head = ethHeader(f.ethSrc, f.ethDst, 0x0800, f.vlan);
  const ip = Buffer.alloc(20 + 8 + payload.length);
  ip[0] = 0x45;
  ip.writeUInt16BE(ip.length, 2);
  ip[8] = 64;
  ip[9] = 17;
  ip.writeUInt32BE(parseIp(f.src), 12);
  ip.writeUInt32BE(parseIp(f.dst), 16);
  ip.writeUInt16BE(headerChecksum(ip.subarray(0, 20)), 10);
  ip.writeUInt16BE(40000, 20);
  ip.writeUInt16BE(f.port ?? 9, 22);
  ip.writeUInt16BE(8 + payload.length, 24);
  payload.copy(ip, 28);
  return pad(Buffer.concat([head, ip]));
}

/** A minimal IPv6 frame (a header with no payload) from `ethSrc`. */
export function ipv6Frame(ethSrc: string): Buffer {
  const ip = Buffer.alloc(40);
  ip[0] = 0x60;
  ip[6] = 59; // no next header
  ip[7] = 255;
  ip.writeUInt16BE(0xfe80, 8);
  ip.writeUInt16BE(0xff02, 24);
  ip[39] = 1;
  return Buffer.concat([ethHeader(ethSrc, '33:33:00:00:00:01', 0x86dd), ip]);
}

/** A frame of any other ethertype (e.g. 0x88cc, LLDP) from `ethSrc`, 60 bytes. */
export function otherFrame(ethSrc: string, ethertype: number): Buffer {
  return pad(ethHeader(ethSrc, '01:80:c2:00:00:0e', ethertype));
}

function ethHeader(src: string, dst = 'ff:ff:ff:ff:ff:ff', type: number, vlan?: number): Buffer {
  const tagged = vlan !== undefined;
  const h = Buffer.alloc(tagged ? 18 : 14);
  mac(dst).copy(h, 0);
  mac(src).copy(h, 6);
  if (tagged) {
    h.writeUInt16BE(0x8100, 12);
    h.writeUInt16BE(vlan, 14);
  }
  h.writeUInt16BE(type, tagged ? 16 : 12);
  return h;
}

/** The Internet checksum of an IPv4 header (its checksum field zero). */
function headerChecksum(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < h.length; i += 2) sum += h.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function mac(text: string): Buffer {
  return Buffer.from(parseMac(text).replaceAll(':', ''), 'hex');
}

function pad(b: Buffer): Buffer {
  return b.length >= 60 ? b : Buffer.concat([b, Buffer.alloc(60 - b.length)]);
}
