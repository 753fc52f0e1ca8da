/**
 * The sysctls node ports need, set on the bridge only (never `all`/`default`):
 *
 * - `net/ipv4/conf/<bridge>/route_localnet = 1`: lets DNATed 127.0.0.1 traffic be routed out of
 *   the bridge and its replies come back in. Security trade-off (CVE-2020-8558): with it, a
 *   neighbour on the bridge could send packets to 127.0.0.1 that the runner accepts, reaching
 *   services bound to localhost. Scoping it to the bridge limits that to the sandboxes.
 * - `net/ipv4/conf/<bridge>/forwarding = 1`: packets arriving on the bridge may be forwarded
 *   (hairpin to a sandbox, and sandboxes' answers to outside clients). Outside clients also need
 *   forwarding on the interface they arrive on, which a runner with sandbox egress already has.
 *
 * @example
 * await enableNodePortSysctls('rt0', '/proc/sys'); // [{ key: 'net/ipv4/conf/rt0/route_localnet', value: '1', was: '0' }]
 */
import { readFile, writeFile } from 'node:fs/promises';
import { BridgewardError } from '../errors.js';

/** One sysctl the agent set. */
export interface SysctlChange {
  /** Path below /proc/sys. */
  readonly key: string;
  /** Value written. */
  readonly value: string;
  /** Value before. */
  readonly was: string;
}

/** The sysctl keys node ports need on `bridge`. */
export function nodePortSysctls(bridge: string): { key: string; value: string }[] {
  return [
    { key: `net/ipv4/conf/${bridge}/route_localnet`, value: '1' },
    { key: `net/ipv4/conf/${bridge}/forwarding`, value: '1' },
  ];
}

/**
 * Sets the node-port sysctls on the bridge (in the process's network namespace) below `dir`
 * (/proc/sys, or a mount of the node's /proc/sys/net at `dir`/net).
 *
 * @throws BridgewardError KERNEL_ERROR when a key cannot be read or written.
 */
export async function enableNodePortSysctls(bridge: string, dir: string): Promise<SysctlChange[]> {
  const out: SysctlChange[] = [];
  for (const { key, value } of nodePortSysctls(bridge)) {
    const path = `${dir}/${key}`;
    try {
      const was = (await readFile(path, 'utf8')).trim();
      if (was !== value) await writeFile(path, value);
      out.push({ key, value, was });
    } catch (e) {
      throw new BridgewardError(
        'KERNEL_ERROR',
        `cannot set ${key}=${value}: ${(e as Error).message}`,
      );
    }
  }
  return out;
}
