/**
 * The classic BPF socket filter of a probe window: it lets through only the ARP frames that name
 * one of the probed addresses as sender or target IP, so an ARP storm on the bridge costs the
 * agent nothing while it waits for answers (which `isProbeAnswer` then checks in full). Pure:
 * addresses in, `struct sock_filter` records out (for `PacketSocket.listen`).
 *
 * @example
 * socket.listen(arpAnswerFilter(new Set(['10.8.64.2'])) ?? true);
 */
import { endianness } from 'node:os';
import { parseIp } from './ipv4.js';

/** Offset of the ARP sender IP in an untagged Ethernet frame. */
const SENDER_IP_OFFSET = 14 + 14;
/** Offset of the ARP target IP in an untagged Ethernet frame. */
const TARGET_IP_OFFSET = 14 + 24;
/** The kernel's limit on a classic BPF program (BPF_MAXINSNS). */
const MAX_INSNS = 4096;
/** Instructions outside the per-address pairs: two loads and the final drop. */
const FIXED_INSNS = 3;

const BPF_LD_W_ABS = 0x20;
const BPF_JMP_JEQ_K = 0x15;
const BPF_RET_K = 0x06;
/** Accept: the whole frame (frames on rt0 are at most a jumbo frame). */
const ACCEPT = 0x40000;

/** Most addresses one filter can name (two instruction pairs each). */
export const MAX_FILTER_ADDRESSES = Math.floor((MAX_INSNS - FIXED_INSNS) / 4);

/**
 * The filter for `ips`, or null when there are too many for one program (then listen to every
 * ARP frame). Each address is compared to the sender IP, then to the target IP; a frame too short
 * for a load is dropped by the kernel.
 */
export function arpAnswerFilter(ips: ReadonlySet<string>): Buffer | null {
  if (ips.size === 0 || ips.size > MAX_FILTER_ADDRESSES) return null;
  const keys = [...ips].map(parseIp);
  const insns: [number, number, number, number][] = [];
  for (const offset of [SENDER_IP_OFFSET, TARGET_IP_OFFSET]) {
    insns.push([BPF_LD_W_ABS, 0, 0, offset]);
    // Equal: fall through to the accept right after; not equal: skip it.
    for (const k of keys) insns.push([BPF_JMP_JEQ_K, 0, 1, k], [BPF_RET_K, 0, 0, ACCEPT]);
  }
  insns.push([BPF_RET_K, 0, 0, 0]);
  // struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; } in the host's byte order.
  const buf = Buffer.alloc(insns.length * 8);
  const le = endianness() === 'LE';
  insns.forEach(([code, jt, jf, k], i) => {
    if (le) buf.writeUInt16LE(code, i * 8);
    else buf.writeUInt16BE(code, i * 8);
    buf.writeUInt8(jt, i * 8 + 2);
    buf.writeUInt8(jf, i * 8 + 3);
    if (le) buf.writeUInt32LE(k >>> 0, i * 8 + 4);
    else buf.writeUInt32BE(k >>> 0, i * 8 + 4);
  });
  return buf;
}
