/**
 * A read-only index of active leases by address, MAC and port, built from a store snapshot so the
 * detector can look leases up synchronously. Pure.
 *
 * @example
 * const idx = indexLeases(snapshot.leases);
 * idx.byIp.get('10.8.64.2')?.sandbox; // 'app-1'
 */
import type { Lease } from '../store/types.js';

/** The parts of a lease the detector uses. */
export type LeaseRef = Pick<Lease, 'sandbox' | 'ip' | 'mac' | 'ifindex'>;

/** Active leases by address, by bound MAC and by bound port. */
export interface LeaseIndex {
  /** Lease holding an address. */
  readonly byIp: ReadonlyMap<string, LeaseRef>;
  /** Lease bound to a MAC. */
  readonly byMac: ReadonlyMap<string, LeaseRef>;
  /** Lease bound to a bridge port (ifindex). */
  readonly byPort: ReadonlyMap<number, LeaseRef>;
}

/** An index with no leases. */
export const NO_LEASES: LeaseIndex = indexLeases([]);

/** Builds the index. @example indexLeases([]).byIp.size // 0 */
export function indexLeases(leases: readonly LeaseRef[]): LeaseIndex {
  const byIp = new Map<string, LeaseRef>();
  const byMac = new Map<string, LeaseRef>();
  const byPort = new Map<number, LeaseRef>();
  for (const l of leases) {
    byIp.set(l.ip, l);
    if (l.mac !== null) byMac.set(l.mac, l);
    if (l.ifindex !== null) byPort.set(l.ifindex, l);
  }
  return { byIp, byMac, byPort };
}

/**
 * Whether a claim by `mac` on `port` fits a lease: `yes`, `no`, or `unknown` when the lease is
 * not yet bound to a MAC or port (or the claim's port is unknown and the lease knows only its port).
 *
 * @example leaseFits({ sandbox: 'a', ip: '10.8.64.2', mac: '02:00:00:00:00:02', ifindex: null }, '02:00:00:00:00:03', 7) // 'no'
 */
export function leaseFits(
  lease: LeaseRef,
  mac: string,
  port: number | null,
): 'yes' | 'no' | 'unknown' {
  if (lease.mac !== null && lease.mac !== mac) return 'no';
  if (lease.ifindex !== null && port !== null && lease.ifindex !== port) return 'no';
  if (lease.mac !== null) return 'yes';
  if (lease.ifindex !== null && port !== null) return 'yes';
  return 'unknown';
}
