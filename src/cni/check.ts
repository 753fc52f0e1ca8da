/**
 * CNI CHECK for an IPAM plugin: the attachment's lease must still exist (the agent answers
 * UNKNOWN_SANDBOX otherwise) and hold an address the runtime recorded in `prevResult`. Pure.
 *
 * @example
 * checkLease({ sandbox: 'c1.eth0', ip: '10.8.64.5' }, { addresses: ['10.8.64.5/24'], mac: null }); // ok
 * checkLease({ sandbox: 'c1.eth0', ip: '10.8.64.6' }, { addresses: ['10.8.64.5/24'], mac: null }); // throws
 */
import { BridgewardError } from '../errors.js';
import type { PrevResult } from './request.js';

/**
 * Passes when one of the recorded addresses is the lease's.
 *
 * @throws BridgewardError LEASE_MISMATCH naming both.
 */
export function checkLease(lease: { sandbox: string; ip: string }, prev: PrevResult): void {
  if (prev.addresses.some((a) => a.split('/')[0] === lease.ip)) return;
  throw new BridgewardError(
    'LEASE_MISMATCH',
    `sandbox ${lease.sandbox} holds ${lease.ip}, but prevResult records ${prev.addresses.join(', ') || 'no address'}`,
  );
}
