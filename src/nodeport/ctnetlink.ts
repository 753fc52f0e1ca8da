/**
 * The conntrack netlink (ctnetlink) messages the agent needs, encoded and parsed (pure): a dump
 * request for the IPv4 table, each dumped entry as a `Flow`, and the delete request for one
 * flow. The adapter in `conntrack.ts` sends them on a NETLINK_NETFILTER socket, in-process: no
 * `conntrack` child process per node-port change.
 *
 * @example
 * const flows = messages.flatMap((m) => parseCtMessage(m.data) ?? []);
 * socket.request(CT_DELETE, [encodeCtDelete(flows[0])]);
 */
import type { Flow, Tuple } from './conntrack-flows.js';

const AF_INET = 2;
const NFNL_SUBSYS_CTNETLINK = 1;
const IPCTNL_MSG_CT_GET = 1;
const IPCTNL_MSG_CT_DELETE = 2;
const NFGENMSG_LEN = 4;
const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;

/** Attribute types (linux/netfilter/nfnetlink_conntrack.h). */
const CTA_TUPLE_ORIG = 1;
const CTA_TUPLE_REPLY = 2;
const CTA_TUPLE_IP = 1;
const CTA_TUPLE_PROTO = 2;
const CTA_IP_V4_SRC = 1;
const CTA_IP_V4_DST = 2;
const CTA_PROTO_NUM = 1;
const CTA_PROTO_SRC_PORT = 2;
const CTA_PROTO_DST_PORT = 3;

const PROTO_NUMBERS = { tcp: 6, udp: 17 } as const;

/** Netlink message type of a conntrack dump request. */
export const CT_GET = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
/** Netlink message type of a conntrack delete request. */
export const CT_DELETE = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;

/**
 * The payload of an IPv4 dump request (`nfgenmsg` alone: every entry).
 *
 * @example socket.request(CT_GET, [ctDumpRequest()], { flags: DUMP });
 */
export function ctDumpRequest(): Buffer {
  return nfgenmsg();
}

/**
 * A dumped conntrack entry (a message payload: `nfgenmsg` and attributes) as a flow, or null
 * for anything but an IPv4 TCP/UDP entry or a malformed message.
 *
 * @example parseCtMessage(msg.data)?.orig.dport; // 5300
 */
export function parseCtMessage(payload: Buffer): Flow | null {
  if (payload.length < NFGENMSG_LEN || payload[0] !== AF_INET) return null;
  const top = attributes(payload, NFGENMSG_LEN);
  const orig = top.get(CTA_TUPLE_ORIG);
  const reply = top.get(CTA_TUPLE_REPLY);
  if (!orig || !reply) return null;
  const o = tuple(orig);
  const r = tuple(reply);
  if (!o || !r || o.proto !== r.proto) return null;
  return { proto: o.proto, orig: o.tuple, reply: r.tuple };
}

/**
 * The payload of a request deleting the entry with `flow`'s original tuple.
 *
 * @example socket.request(CT_DELETE, [encodeCtDelete(flow)]);
 */
export function encodeCtDelete(flow: Flow): Buffer {
  const ip = nest(CTA_TUPLE_IP, [
    attr(CTA_IP_V4_SRC, ipBytes(flow.orig.src)),
    attr(CTA_IP_V4_DST, ipBytes(flow.orig.dst)),
  ]);
  const proto = nest(CTA_TUPLE_PROTO, [
    attr(CTA_PROTO_NUM, Buffer.from([PROTO_NUMBERS[flow.proto]])),
    attr(CTA_PROTO_SRC_PORT, u16be(flow.orig.sport)),
    attr(CTA_PROTO_DST_PORT, u16be(flow.orig.dport)),
  ]);
  return Buffer.concat([nfgenmsg(), nest(CTA_TUPLE_ORIG, [ip, proto])]);
}

/** `struct nfgenmsg` for IPv4, version 0, resource id 0. */
function nfgenmsg(): Buffer {
  return Buffer.from([AF_INET, 0, 0, 0]);
}

/** The attributes from `off` on, by type (the first of each type), payloads only. */
function attributes(buf: Buffer, off = 0): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & NLA_TYPE_MASK;
    if (len < 4 || off + len > buf.length) break;
    if (!out.has(type)) out.set(type, buf.subarray(off + 4, off + len));
    off += (len + 3) & ~3;
  }
  return out;
}

function tuple(nested: Buffer): { proto: Flow['proto']; tuple: Tuple } | null {
  const parts = attributes(nested);
  const ip = attributes(parts.get(CTA_TUPLE_IP) ?? Buffer.alloc(0));
  const proto = attributes(parts.get(CTA_TUPLE_PROTO) ?? Buffer.alloc(0));
  const src = ip.get(CTA_IP_V4_SRC);
  const dst = ip.get(CTA_IP_V4_DST);
  const num = proto.get(CTA_PROTO_NUM)?.[0];
  const sport = proto.get(CTA_PROTO_SRC_PORT);
  const dport = proto.get(CTA_PROTO_DST_PORT);
  if (src?.length !== 4 || dst?.length !== 4 || sport?.length !== 2 || dport?.length !== 2) {
    return null;
  }
  const name = num === PROTO_NUMBERS.tcp ? 'tcp' : num === PROTO_NUMBERS.udp ? 'udp' : null;
  if (name === null) return null;
  return {
    proto: name,
    tuple: {
      src: src.join('.'),
      dst: dst.join('.'),
      sport: sport.readUInt16BE(0),
      dport: dport.readUInt16BE(0),
    },
  };
}

function attr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}

function nest(type: number, children: Buffer[]): Buffer {
  return attr(type | NLA_F_NESTED, Buffer.concat(children));
}

function ipBytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}

function u16be(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n, 0);
  return b;
}
