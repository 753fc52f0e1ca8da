/**
 * Deletes the conntrack entries that still lead to a backend whose mapping changed or went, so
 * clients (UDP ones in particular, whose entries never close) reach the new backend instead of
 * blackholing. Uses the `conntrack` tool (conntrack-tools) in the agent's network namespace.
 *
 * @example
 * const n = await clearConntrack([{ proto: 'udp', hostPort: 5353, addr: '10.8.64.7', port: 53 }]);
 */
import { BridgewardError } from '../errors.js';
import { run } from '../exec.js';
import type { NatElement } from './element.js';

/**
 * Deletes every entry whose original destination port is the host port and whose reply comes
 * from the old backend (address and port). Resolves to the number of entries deleted.
 *
 * @throws BridgewardError KERNEL_ERROR when the tool is missing or fails.
 */
export async function clearConntrack(
  stale: readonly NatElement[],
  netns?: string,
): Promise<number> {
  let deleted = 0;
  for (const e of stale) {
    const argv = [
      'conntrack',
      '-D',
      '-p',
      e.proto,
      '--orig-port-dst',
      String(e.hostPort),
      '--reply-src',
      e.addr,
      '--reply-port-src',
      String(e.port),
    ];
    // conntrack exits 1 when nothing matched; only other codes are failures.
    const r = await run(argv, { check: false, ...(netns ? { netns } : {}) });
    if (r.code !== 0 && r.code !== 1) {
      throw new BridgewardError(
        'KERNEL_ERROR',
        `${argv.join(' ')} exited ${r.code}: ${r.stderr.trim()}`,
      );
    }
    deleted += Number(/(\d+) flow entries have been deleted/.exec(r.stderr)?.[1] ?? 0);
  }
  return deleted;
}
