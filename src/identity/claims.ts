/**
 * What a token says: the bounds of a token request (`?audience=`, `?ttl=`) and the JWT claims
 * built from an identity. Pure.
 *
 * @example
 * const p = tokenParams({ ttl: '300' }, identity.audiences);
 * const claims = tokenClaims({ issuer, identity, ...p, now: new Date(), jti: randomUUID() });
 */
import { invalid } from '../errors.js';
import type { Identity } from '../store/types.js';

/** Token lifetimes in seconds: the default and the accepted range of `?ttl=`. */
export const TOKEN_TTL = { default: 600, min: 60, max: 3600 } as const;

/** The audience tokens carry when a sandbox was registered without `--audience`. */
export const DEFAULT_AUDIENCE = 'bridgeward';

/** A validated token request. */
export interface TokenParams {
  /** The `aud` claim. */
  readonly audience: string;
  /** Lifetime in seconds. */
  readonly ttlSeconds: number;
}

/**
 * Validates the query of `GET /v1/token` against the identity's audiences. Without `audience`
 * the first registered audience is used; without `ttl` the default.
 *
 * @throws BridgewardError INVALID_ARGUMENT for a ttl out of bounds or an audience not registered.
 * @example tokenParams({ audience: 'vault' }, ['vault']) // { audience: 'vault', ttlSeconds: 600 }
 */
export function tokenParams(
  query: { audience?: string | undefined; ttl?: string | undefined },
  audiences: readonly string[],
): TokenParams {
  let ttlSeconds: number = TOKEN_TTL.default;
  if (query.ttl !== undefined) {
    const n = Number(query.ttl);
    if (!/^\d{1,6}$/.test(query.ttl) || n < TOKEN_TTL.min || n > TOKEN_TTL.max) {
      throw invalid(
        `ttl ${JSON.stringify(query.ttl)}: expected whole seconds ${TOKEN_TTL.min}..${TOKEN_TTL.max}`,
      );
    }
    ttlSeconds = n;
  }
  const allowed = audiences.length > 0 ? audiences : [DEFAULT_AUDIENCE];
  const audience = query.audience ?? (allowed[0] as string);
  if (!allowed.includes(audience)) {
    throw invalid(
      `audience ${JSON.stringify(audience)} is not registered for this sandbox (registered: ${allowed.join(', ')})`,
    );
  }
  return { audience, ttlSeconds };
}

/** The claims of an identity token. */
export interface TokenClaims {
  /** Issuer: this node's token server. */
  readonly iss: string;
  /** Subject: `sandbox:<id>`. */
  readonly sub: string;
  /** Audience. */
  readonly aud: string;
  /** Issued at (seconds since the epoch). */
  readonly iat: number;
  /** Not before (equal to iat). */
  readonly nbf: number;
  /** Expiry (seconds since the epoch). */
  readonly exp: number;
  /** Unique token id. */
  readonly jti: string;
  /** Sandbox id. */
  readonly sandbox: string;
  /** Application name, or null. */
  readonly app: string | null;
  /** Generation of the lease the identity is bound to. */
  readonly generation: number;
  [claim: string]: unknown;
}

/**
 * Builds the claims of a token for `identity`.
 *
 * @example
 * tokenClaims({ issuer: 'bridgeward:node1', identity, audience: 'vault', ttlSeconds: 600,
 *   now: new Date(0), jti: 'x' }).sub // 'sandbox:app-1'
 */
export function tokenClaims(input: {
  issuer: string;
  identity: Identity;
  audience: string;
  ttlSeconds: number;
  now: Date;
  jti: string;
}): TokenClaims {
  const iat = Math.floor(input.now.getTime() / 1000);
  return {
    iss: input.issuer,
    sub: `sandbox:${input.identity.sandbox}`,
    aud: input.audience,
    iat,
    nbf: iat,
    exp: iat + input.ttlSeconds,
    jti: input.jti,
    sandbox: input.identity.sandbox,
    app: input.identity.app,
    generation: input.identity.generation,
  };
}
