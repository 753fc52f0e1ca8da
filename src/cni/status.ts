/**
 * CNI STATUS for an IPAM plugin: available while the pool has an address to hand out (a free
 * one, or one still cooling down after a release, which is used when nothing else is left).
 * Pure; the agent being unreachable is decided by the caller.
 *
 * @example
 * assertAvailable({ subnet: '10.8.64.0/24', total: 253, active: 253, quarantined: 0, cooling: 0, liveUnleased: 0, free: 0 });
 * // throws POOL_EXHAUSTED
 */
import { BridgewardError } from '../errors.js';
import type { PoolView } from '../api/lease-routes.js';

/**
 * Passes when ADD could get an address now.
 *
 * @throws BridgewardError POOL_EXHAUSTED with the counts.
 */
export function assertAvailable(pool: PoolView): void {
  if (pool.free + pool.cooling > 0) return;
  throw new BridgewardError(
    'POOL_EXHAUSTED',
    `no free address in ${pool.subnet}: ${pool.active} active, ${pool.quarantined} quarantined, ` +
      `${pool.liveUnleased} live without a lease`,
  );
}
