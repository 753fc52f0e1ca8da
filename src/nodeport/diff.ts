/**
 * The pure diff between the elements the kernel holds and the desired ones, and its rendering as
 * one nftables transaction. A changed value is a delete of the old element plus an add of the
 * new one in the same transaction (nftables refuses to re-add an existing key with another
 * value).
 *
 * @example
 * const d = diffElements(current, desired);
 * const script = renderDiff(d); // null when nothing changed
 */
import { byKey } from './desired.js';
import { elementKey, formatElement, sameElement, type NatElement } from './element.js';
import { MAP_NAME, TABLE_FAMILY, TABLE_NAME } from './ruleset.js';

/** What has to change to turn the current elements into the desired ones. */
export interface ElementDiff {
  /** Current elements to delete: removed keys and the old value of changed keys. */
  readonly remove: readonly NatElement[];
  /** Elements to add: new keys and the new value of changed keys. */
  readonly add: readonly NatElement[];
}

/**
 * Computes the element diff. Unchanged elements appear in neither list.
 *
 * @example
 * diffElements(
 *   [{ proto: 'tcp', hostPort: 80, addr: '10.8.64.2', port: 80 }],
 *   [{ proto: 'tcp', hostPort: 80, addr: '10.8.64.3', port: 80 }],
 * ); // remove the .2 element, add the .3 element
 */
export function diffElements(
  current: Iterable<NatElement>,
  desired: Iterable<NatElement>,
): ElementDiff {
  const cur = byKey(current);
  const want = byKey(desired);
  const remove: NatElement[] = [];
  const add: NatElement[] = [];
  for (const [key, e] of cur) {
    const w = want.get(key);
    if (!w || !sameElement(e, w)) remove.push(e);
  }
  for (const [key, w] of want) {
    const e = cur.get(key);
    if (!e || !sameElement(e, w)) add.push(w);
  }
  return { remove, add };
}

/** True when the diff changes nothing. */
export function isEmptyDiff(d: ElementDiff): boolean {
  return d.remove.length === 0 && d.add.length === 0;
}

/**
 * Renders a diff as one nft command buffer (deletes first, then adds), or null when empty. The
 * buffer is one kernel transaction: if any delete or add fails, nothing changes.
 *
 * @example
 * renderDiff({ remove: [old], add: [neu] });
 * // 'delete element ip bridgeward nodeports { tcp . 80 }\nadd element ip bridgeward nodeports { tcp . 80 : 10.8.64.3 . 80 }\n'
 */
export function renderDiff(d: ElementDiff): string | null {
  if (isEmptyDiff(d)) return null;
  const target = `${TABLE_FAMILY} ${TABLE_NAME} ${MAP_NAME}`;
  let out = '';
  if (d.remove.length)
    out += `delete element ${target} { ${d.remove.map(elementKey).join(', ')} }\n`;
  if (d.add.length) out += `add element ${target} { ${d.add.map(formatElement).join(', ')} }\n`;
  return out;
}
