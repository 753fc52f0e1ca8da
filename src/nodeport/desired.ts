/**
 * Renders the desired map elements from the store's state: every node port whose sandbox holds
 * an active lease becomes one element pointing at the lease's address. Pure.
 *
 * @example
 * desiredElements(
 *   [{ proto: 'tcp', hostPort: 6667, sandbox: 'app-2', port: 8080 }],
 *   [{ sandbox: 'app-2', ip: '10.8.64.7' }],
 * ); // [{ proto: 'tcp', hostPort: 6667, addr: '10.8.64.7', port: 8080 }]
 */
import type { PortMapping } from '../store/types.js';
import { elementKey, type NatElement } from './element.js';

/**
 * Joins mappings with leases. Mappings whose sandbox has no lease are left out (the store
 * removes a lease's ports with the lease, so this only covers a read that raced a release), and
 * so are keys in `reserved` (the agent's own listening ports). The result is sorted by key so
 * renders are deterministic.
 */
export function desiredElements(
  mappings: readonly PortMapping[],
  leases: readonly { readonly sandbox: string; readonly ip: string }[],
  reserved: ReadonlyMap<string, string> = new Map(),
): NatElement[] {
  const ipOf = new Map(leases.map((l) => [l.sandbox, l.ip]));
  const out: NatElement[] = [];
  for (const m of mappings) {
    const addr = ipOf.get(m.sandbox);
    if (addr === undefined || reserved.has(elementKey(m))) continue;
    out.push({ proto: m.proto, hostPort: m.hostPort, addr, port: m.port });
  }
  return out.sort(compareElements);
}

/** Orders elements by proto, then host port. */
export function compareElements(a: NatElement, b: NatElement): number {
  return a.proto === b.proto ? a.hostPort - b.hostPort : a.proto < b.proto ? -1 : 1;
}

/** Indexes elements by key. */
export function byKey(elements: Iterable<NatElement>): Map<string, NatElement> {
  const m = new Map<string, NatElement>();
  for (const e of elements) m.set(elementKey(e), e);
  return m;
}
