/**
 * IPv4 addresses, MACs and subnets as plain data: parsing, formatting and arithmetic. Pure.
 *
 * @example
 * const s = parseCidr('10.8.64.0/24');
 * formatIp(s.network + 1); // '10.8.64.1'
 */
import { invalid } from '../errors.js';

/** An IPv4 subnet: network address as an unsigned 32-bit number and its prefix length. */
export interface Subnet {
  /** Network address (host bits zero) as an unsigned 32-bit integer. */
  readonly network: number;
  /** Prefix length, 0..32. */
  readonly prefixLength: number;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/**
 * Parses a dotted-quad IPv4 address into an unsigned 32-bit number.
 *
 * @example parseIp('10.8.64.2') // 168312834
 * @throws BridgewardError INVALID_ARGUMENT for anything but four decimal octets 0..255.
 */
export function parseIp(text: string): number {
  // A scan of the characters (no regex, no substrings): the allocator parses every pool address
  // of every batch.
  let n = 0;
  let octets = 0;
  let i = 0;
  while (octets < 4) {
    const start = i;
    let octet = 0;
    while (i < text.length && i - start < 3) {
      const c = text.charCodeAt(i) - 48; // '0'
      if (c < 0 || c > 9) break;
      octet = octet * 10 + c;
      i++;
    }
    const digits = i - start;
    const leadingZero = digits > 1 && text.charCodeAt(start) === 48;
    if (digits === 0 || octet > 255 || leadingZero) break;
    n = n * 256 + octet;
    octets++;
    if (octets < 4) {
      if (text.charCodeAt(i) !== 46) break; // '.'
      i++;
    }
  }
  if (octets !== 4 || i !== text.length) {
    throw invalid(`invalid IPv4 address ${JSON.stringify(text)}`);
  }
  return n;
}

/** True when `text` is a dotted-quad IPv4 address. */
export function isIp(text: string): boolean {
  try {
    parseIp(text);
    return true;
  } catch {
    return false;
  }
}

/** Formats an unsigned 32-bit number as a dotted quad. @example formatIp(168312834) // '10.8.64.2' */
export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/**
 * Parses `a.b.c.d/len`; host bits must be zero.
 *
 * @example parseCidr('10.8.64.0/24') // { network: 168312832, prefixLength: 24 }
 * @throws BridgewardError INVALID_ARGUMENT for malformed input, a prefix outside 8..30, or host bits set.
 */
export function parseCidr(text: string): Subnet {
  const slash = text.indexOf('/');
  if (slash < 0) throw invalid(`invalid CIDR ${JSON.stringify(text)}: expected a.b.c.d/len`);
  const network = parseIp(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,2}$/.test(lenText))
    throw invalid(`invalid CIDR ${JSON.stringify(text)}: bad prefix length`);
  const prefixLength = Number(lenText);
  if (prefixLength < 8 || prefixLength > 30) {
    throw invalid(`invalid CIDR ${JSON.stringify(text)}: prefix length must be 8..30`);
  }
  if ((network & hostMask(prefixLength)) !== 0) {
    throw invalid(
      `invalid CIDR ${JSON.stringify(text)}: host bits set (did you mean ${formatCidr({ network: (network & ~hostMask(prefixLength)) >>> 0, prefixLength })}?)`,
    );
  }
  return { network, prefixLength };
}

/** Formats a subnet as `a.b.c.d/len`. */
export function formatCidr(s: Subnet): string {
  return `${formatIp(s.network)}/${s.prefixLength}`;
}

function hostMask(prefixLength: number): number {
  return prefixLength === 0 ? 0xffffffff : (2 ** (32 - prefixLength) - 1) >>> 0;
}

/** The broadcast address of a subnet. */
export function broadcastOf(s: Subnet): number {
  return (s.network + hostMask(s.prefixLength)) >>> 0;
}

/** True when `ip` (number) lies inside `s`, network and broadcast included. */
export function contains(s: Subnet, ip: number): boolean {
  return ip >= s.network && ip <= broadcastOf(s);
}

/** The first usable host address (network + 1), the default gateway. */
export function firstHost(s: Subnet): number {
  return s.network + 1;
}

/**
 * Normalises a MAC to lowercase colon form.
 *
 * @example parseMac('02-AB-00-00-00-01') // '02:ab:00:00:00:01'
 * @throws BridgewardError INVALID_ARGUMENT for anything but six hex octets.
 */
export function parseMac(text: string): string {
  const mac = text.trim().toLowerCase().replace(/-/g, ':');
  if (!MAC_RE.test(mac)) throw invalid(`invalid MAC address ${JSON.stringify(text)}`);
  return mac;
}

/** Formats six bytes as a lowercase colon-separated MAC. */
export function formatMac(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}
