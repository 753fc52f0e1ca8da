/**
 * Deletes the conntrack entries a node-port change made stale (see `conntrack-flows.ts`), so
 * clients reach the new backend instead of the old one or nowhere. Uses the `conntrack` tool
 * (conntrack-tools) in the process's network namespace: one dump, then one precise delete per
 * stale flow.
 *
 * @example
 * const n = await clearConntrack({ added: [newElement], removed: [oldElement] });
 */
import { networkInterfaces } from 'node:os';
import { BridgewardError } from '../errors.js';
import { run } from '../exec.js';
import { parseConntrack, staleFlows, type ElementChange, type Flow } from './conntrack-flows.js';

/**
 * Deletes the stale flows of a change; resolves to how many were deleted.
 *
 * @throws BridgewardError KERNEL_ERROR when the tool is missing or fails.
 */
export async function clearConntrack(change: ElementChange): Promise<number> {
  if (change.added.length === 0 && change.removed.length === 0) return 0;
  const dump = await run(['conntrack', '-L'], { check: false });
  if (dump.code !== 0) {
    throw new BridgewardError(
      'KERNEL_ERROR',
      `conntrack -L exited ${dump.code}: ${dump.stderr.trim()}`,
    );
  }
  const stale = staleFlows(parseConntrack(dump.stdout), { ...change, local: localAddresses() });
  let deleted = 0;
  for (const f of stale) if (await deleteFlow(f)) deleted++;
  return deleted;
}

async function deleteFlow(f: Flow): Promise<boolean> {
  const argv = [
    'conntrack',
    '-D',
    '-p',
    f.proto,
    '-s',
    f.orig.src,
    '-d',
    f.orig.dst,
    '--sport',
    String(f.orig.sport),
    '--dport',
    String(f.orig.dport),
  ];
  // Exit 1 means the entry is already gone (it expired or closed meanwhile).
  const r = await run(argv, { check: false });
  if (r.code !== 0 && r.code !== 1) {
    throw new BridgewardError(
      'KERNEL_ERROR',
      `${argv.join(' ')} exited ${r.code}: ${r.stderr.trim()}`,
    );
  }
  return r.code === 0;
}

function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4') out.add(a.address);
  }
  return out;
}
