/**
 * The sandbox bridge as an observed object (pure): what a link named like the bridge is right
 * now, and how one rtnetlink link event changes that. The runtime owns the bridge: it creates,
 * deletes, renames and recreates it at any time, and the agent only follows.
 *
 * - `absent`: no link of that name (never seen, deleted, or renamed away);
 * - `present`: a bridge of that name, with its ifindex and MAC (a recreated bridge is a new
 *   `present` with another ifindex);
 * - `not-a-bridge`: a link of that name that is not a bridge (e.g. a veth): the agent waits.
 *
 * @example
 * let s = bridgeStateOf('rt0', await rtnl.links());
 * s = nextBridgeState('rt0', s, { deleted: true, link: s.kind === 'present' ? s.link : x }).state;
 * describeBridgeState('rt0', s); // 'bridge rt0 is not present (deleted)'
 */
import type { LinkInfo } from '../observe/rtnl.js';

/** Why the bridge is absent. */
export type AbsentReason = 'never-seen' | 'deleted' | 'renamed';

/** What the link named like the bridge is. */
export type BridgeState =
  | { readonly kind: 'absent'; readonly reason: AbsentReason; readonly detail: string | null }
  | { readonly kind: 'present'; readonly link: LinkInfo }
  | { readonly kind: 'not-a-bridge'; readonly link: LinkInfo };

/** The state before the first dump. */
export const NEVER_SEEN: BridgeState = { kind: 'absent', reason: 'never-seen', detail: null };

/**
 * The state a full link dump shows.
 *
 * @example bridgeStateOf('rt0', []).kind; // 'absent'
 */
export function bridgeStateOf(
  name: string,
  links: readonly LinkInfo[],
  before: BridgeState = NEVER_SEEN,
): BridgeState {
  const link = links.find((l) => l.name === name);
  if (link) return stateOfLink(link);
  if (before.kind === 'absent') return before;
  const same = links.find((l) => l.index === before.link.index);
  return same
    ? { kind: 'absent', reason: 'renamed', detail: `renamed to ${same.name}` }
    : { kind: 'absent', reason: 'deleted', detail: null };
}

/**
 * The state after one link notification. Returns the same object when the event does not
 * concern the bridge's name or current link.
 *
 * @example
 * nextBridgeState('rt0', NEVER_SEEN, { deleted: false, link: { ...rt0, kind: 'bridge' } }).kind; // 'present'
 */
export function nextBridgeState(
  name: string,
  state: BridgeState,
  event: { readonly deleted: boolean; readonly link: LinkInfo },
): BridgeState {
  const { link, deleted } = event;
  const current = state.kind === 'absent' ? null : state.link;
  if (current !== null && link.index === current.index) {
    if (deleted) return { kind: 'absent', reason: 'deleted', detail: null };
    if (link.name !== name)
      return { kind: 'absent', reason: 'renamed', detail: `renamed to ${link.name}` };
    return stateOfLink(link);
  }
  // Another link: it matters only when it (newly) carries the name.
  if (deleted || link.name !== name) return state;
  return stateOfLink(link);
}

/**
 * Whether two states name a different bridge instance (another ifindex, or present vs not):
 * what the agent's bridge-bound parts must be rebuilt for. A MAC change is not one.
 *
 * @example isNewInstance(NEVER_SEEN, { kind: 'present', link }); // true
 */
export function isNewInstance(a: BridgeState, b: BridgeState): boolean {
  if (a.kind !== b.kind) return true;
  if (a.kind === 'absent' || b.kind === 'absent') return false;
  return a.link.index !== b.link.index;
}

/**
 * One line for logs, status and errors.
 *
 * @example describeBridgeState('rt0', NEVER_SEEN); // 'bridge rt0 is not present'
 */
export function describeBridgeState(name: string, s: BridgeState): string {
  switch (s.kind) {
    case 'present':
      return `bridge ${name} is present (ifindex ${s.link.index})`;
    case 'not-a-bridge':
      return `${name} exists but is a ${s.link.kind ?? 'plain'} link, not a bridge`;
    case 'absent':
      return `bridge ${name} is not present${s.detail ? ` (${s.detail})` : s.reason === 'deleted' ? ' (deleted)' : ''}`;
  }
}

function stateOfLink(link: LinkInfo): BridgeState {
  return link.kind === 'bridge' ? { kind: 'present', link } : { kind: 'not-a-bridge', link };
}
