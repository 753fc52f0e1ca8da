/**
 * The decision of the token server, as a pure function of what it read at request time: the
 * request's headers, the lease on its source address, that lease's identity and what the bridge
 * sees at that address (MAC, port). Refusals are `BridgewardError`s whose details say whether
 * the client should retry and after how long.
 *
 * @example
 * const lease = await store.leaseByIp(sourceIp);
 * const identity = lease && (await store.identity(lease.sandbox));
 * const seen = (await neighbours.live()).get(sourceIp) ?? null;
 * const decision = authorizeTokenRequest({ sourceIp, headers, lease, identity, seen });
 * if (!decision.ok) throw decision.error;
 */
import { BridgewardError } from '../errors.js';
import type { Identity, Lease } from '../store/types.js';
import { secretMatches } from './secret.js';

/** Seconds a client should wait before retrying a retryable refusal. */
export const RETRY_AFTER_SECONDS = 2;

/** Request headers the decision looks at (lowercase names, as node gives them). */
export interface TokenRequestHeaders {
  readonly authorization?: string | undefined;
  readonly 'x-forwarded-for'?: string | string[] | undefined;
  readonly forwarded?: string | undefined;
}

/** The outcome: the identity to issue a token for, or why not. */
export type TokenDecision =
  | { readonly ok: true; readonly identity: Identity; readonly lease: Lease }
  | { readonly ok: false; readonly error: BridgewardError };

/**
 * Extracts the secret of an `Authorization: Bearer <secret>` header, or null.
 *
 * @example bearerSecret('Bearer abc') // 'abc'
 */
export function bearerSecret(header: string | undefined): string | null {
  const m = /^Bearer +(\S+) *$/i.exec(header ?? '');
  return m ? (m[1] as string) : null;
}

/** What the bridge currently sees at the caller's address (empty lists: not known). */
export interface SeenAtAddress {
  /** MACs the address resolves to. */
  readonly macs: readonly string[];
  /** Bridge ports those MACs are learned on. */
  readonly ifindexes: readonly number[];
}

/** A refusal the client can retry after `RETRY_AFTER_SECONDS`. */
function retryable(
  code: 'UNKNOWN_ADDRESS' | 'UNKNOWN_IDENTITY' | 'BINDING_MISMATCH',
  message: string,
): TokenDecision {
  return {
    ok: false,
    error: new BridgewardError(code, message, {
      retryable: true,
      retryAfterSeconds: RETRY_AFTER_SECONDS,
    }),
  };
}

/** A refusal retrying will not fix. */
function final(code: 'INVALID_ARGUMENT' | 'INVALID_SECRET', message: string): TokenDecision {
  return { ok: false, error: new BridgewardError(code, message, { retryable: false }) };
}

/**
 * Decides a token request. Order: proxied requests are refused outright (the source address is
 * the identity's anchor, so it must be the caller's own); then a bearer secret must be present;
 * an address without a lease or a lease without an identity is retryable (the runtime may not
 * have allocated or registered yet); an identity bound to another lease (address or generation)
 * or a secret that does not match is final. Last, once the lease knows its MAC or port, the
 * bridge must see the address at that MAC and port: the kernel answers the connection at the
 * MAC its neighbour entry holds, so a mismatch means someone else holds the address on the wire
 * (or the entry is a moment old): retryable, and never a pass.
 */
export function authorizeTokenRequest(facts: {
  sourceIp: string;
  headers: TokenRequestHeaders;
  lease: Lease | null;
  identity: Identity | null;
  seen: SeenAtAddress | null;
}): TokenDecision {
  const { sourceIp, headers, lease, identity, seen } = facts;
  if (headers['x-forwarded-for'] !== undefined || headers.forwarded !== undefined) {
    return final(
      'INVALID_ARGUMENT',
      'proxied requests (X-Forwarded-For/Forwarded) are refused: call the token server directly',
    );
  }
  const secret = bearerSecret(headers.authorization);
  if (secret === null) {
    return final('INVALID_SECRET', 'missing "Authorization: Bearer <secret>" header');
  }
  if (lease === null) {
    return retryable('UNKNOWN_ADDRESS', `no sandbox holds a lease on ${sourceIp} (yet)`);
  }
  if (identity === null) {
    return retryable(
      'UNKNOWN_IDENTITY',
      `sandbox ${lease.sandbox} on ${sourceIp} has no registered identity (yet)`,
    );
  }
  if (identity.ip !== lease.ip || identity.generation !== lease.generation) {
    return final(
      'INVALID_SECRET',
      `the identity of sandbox ${lease.sandbox} is bound to an earlier lease; register it again`,
    );
  }
  if (!secretMatches(secret, identity.secretHash)) {
    return final('INVALID_SECRET', `invalid secret for the sandbox on ${sourceIp}`);
  }
  if (lease.mac !== null && seen && seen.macs.length > 0 && !seen.macs.includes(lease.mac)) {
    return retryable(
      'BINDING_MISMATCH',
      `${sourceIp} is seen at MAC ${seen.macs.join(',')} on the bridge, but its lease is bound to ${lease.mac}`,
    );
  }
  if (
    lease.ifindex !== null &&
    seen &&
    seen.ifindexes.length > 0 &&
    !seen.ifindexes.includes(lease.ifindex)
  ) {
    return retryable(
      'BINDING_MISMATCH',
      `${sourceIp} is seen on bridge port ${seen.ifindexes.join(',')}, but its lease is bound to port ${lease.ifindex}`,
    );
  }
  return { ok: true, identity, lease };
}
