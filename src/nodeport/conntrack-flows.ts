/**
 * Which conntrack entries a node-port change makes stale. Pure: picks flows to delete (the
 * flows come from a ctnetlink dump, `ctnetlink.ts`).
 *
 * - A removed or changed element: flows to its host port whose reply comes from the old backend
 *   (they would keep talking to it; UDP entries never close while a client keeps sending).
 * - An added or changed element: flows to its host port on a local address whose reply does not
 *   come from the new backend (e.g. UDP entries created while the port had no mapping, which
 *   would shadow the new one).
 *
 * @example
 * staleFlows(await conntrack.flows(), { added, removed, local: new Set(['10.255.0.1', '127.0.0.1']) });
 */
import { byKey } from './desired.js';
import { elementKey, type NatElement } from './element.js';

/** One direction of a conntrack tuple. */
export interface Tuple {
  /** Source address. */
  readonly src: string;
  /** Destination address. */
  readonly dst: string;
  /** Source port. */
  readonly sport: number;
  /** Destination port. */
  readonly dport: number;
}

/** One conntrack entry (TCP or UDP). */
export interface Flow {
  /** Transport protocol. */
  readonly proto: 'tcp' | 'udp';
  /** The original direction (as the client sent it). */
  readonly orig: Tuple;
  /** The reply direction (as the backend answers, after NAT). */
  readonly reply: Tuple;
}

/** What changed in the map. */
export interface ElementChange {
  /** Elements that are new or carry a new value. */
  readonly added: readonly NatElement[];
  /** Elements that went or carried the old value. */
  readonly removed: readonly NatElement[];
}

/** The flows a change makes stale (each at most once). */
export function staleFlows(
  flows: readonly Flow[],
  change: ElementChange & { readonly local: ReadonlySet<string> },
): Flow[] {
  const removed = new Map<string, NatElement[]>();
  for (const e of change.removed)
    removed.set(elementKey(e), [...(removed.get(elementKey(e)) ?? []), e]);
  const added = byKey(change.added);
  const from = (f: Flow, e: NatElement) => f.reply.src === e.addr && f.reply.sport === e.port;
  return flows.filter((f) => {
    const key = elementKey({ proto: f.proto, hostPort: f.orig.dport });
    const old = removed.get(key);
    const neu = added.get(key);
    return (
      (old?.some((o) => from(f, o)) ?? false) ||
      (neu !== undefined && change.local.has(f.orig.dst) && !from(f, neu))
    );
  });
}

/**
 * One change with the effect of `first` then `then`: every value either removed is gone (its
 * flows are stale), and a key counts as added with its last added value unless `then` removed
 * it again. Lets one `conntrack` dump serve a burst of changes.
 *
 * @example
 * mergeChanges({ added: [a1], removed: [] }, { added: [a2], removed: [a1] }); // { added: [a2], removed: [a1] }
 */
export function mergeChanges(first: ElementChange, then: ElementChange): ElementChange {
  const added = byKey(first.added);
  for (const e of then.removed) {
    const key = elementKey(e);
    const was = added.get(key);
    if (was && was.addr === e.addr && was.port === e.port) added.delete(key);
  }
  for (const e of then.added) added.set(elementKey(e), e);
  return { added: [...added.values()], removed: [...first.removed, ...then.removed] };
}
