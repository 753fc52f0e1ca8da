/**
 * Which conntrack entries a node-port change makes stale. Pure: parses `conntrack -L` text and
 * picks flows to delete.
 *
 * - A removed or changed element: flows to its host port whose reply comes from the old backend
 *   (they would keep talking to it; UDP entries never close while a client keeps sending).
 * - An added or changed element: flows to its host port on a local address whose reply does not
 *   come from the new backend (e.g. UDP entries created while the port had no mapping, which
 *   would shadow the new one).
 *
 * @example
 * const flows = parseConntrack(text);
 * staleFlows(flows, { added, removed, local: new Set(['10.255.0.1', '127.0.0.1']) });
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

/**
 * Parses `conntrack -L` lines; lines of other protocols or shapes are skipped.
 *
 * @example
 * parseConntrack('udp 17 29 src=10.255.0.2 dst=10.255.0.1 sport=4100 dport=5300 [UNREPLIED] src=10.8.64.2 dst=10.255.0.2 sport=5353 dport=4100 mark=0 use=1');
 */
export function parseConntrack(text: string): Flow[] {
  const flows: Flow[] = [];
  for (const line of text.split('\n')) {
    const proto = line.split(/\s+/)[0];
    if (proto !== 'tcp' && proto !== 'udp') continue;
    const fields = [...line.matchAll(/\b(src|dst|sport|dport)=(\S+)/g)].map((m) => m[2] ?? '');
    if (fields.length < 8) continue;
    const tuple = (i: number): Tuple => ({
      src: fields[i] ?? '',
      dst: fields[i + 1] ?? '',
      sport: Number(fields[i + 2]),
      dport: Number(fields[i + 3]),
    });
    flows.push({ proto, orig: tuple(0), reply: tuple(4) });
  }
  return flows;
}

/** The flows a change makes stale (each at most once). */
export function staleFlows(
  flows: readonly Flow[],
  change: ElementChange & { readonly local: ReadonlySet<string> },
): Flow[] {
  const removed = byKey(change.removed);
  const added = byKey(change.added);
  const from = (f: Flow, e: NatElement) => f.reply.src === e.addr && f.reply.sport === e.port;
  return flows.filter((f) => {
    const key = elementKey({ proto: f.proto, hostPort: f.orig.dport });
    const old = removed.get(key);
    const neu = added.get(key);
    return (old && from(f, old)) || (neu && change.local.has(f.orig.dst) && !from(f, neu));
  });
}
