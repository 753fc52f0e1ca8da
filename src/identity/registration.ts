/**
 * Identity records and what a registration hands back, as pure functions: a new identity bound
 * to a lease, a rotated one, the view that omits the hash, and the result shown once with the
 * secret, the token URL and the environment block for the sandbox.
 *
 * @example
 * const identity = newIdentity(lease, { sandbox: 'app-1', app: 'web', audiences: [] }, hashSecret(s), now);
 * registrationResult(identity, s, 'http://10.8.64.1:7123' + TOKEN_PATH).env;
 * // { MIREN_IDENTITY_TOKEN_SECRET: s, MIREN_IDENTITY_TOKEN_URL: 'http://10.8.64.1:7123/v1/token' }
 */
import type { Identity, Lease } from '../store/types.js';
import { DEFAULT_AUDIENCE } from './claims.js';

/** Environment variable carrying the secret into the sandbox. */
export const ENV_SECRET = 'MIREN_IDENTITY_TOKEN_SECRET';
/** Environment variable carrying the token URL into the sandbox. */
export const ENV_TOKEN_URL = 'MIREN_IDENTITY_TOKEN_URL';
/** Path of the token endpoint. */
export const TOKEN_PATH = '/v1/token';
/** Path of the public keys. */
export const JWKS_PATH = '/.well-known/jwks.json';

/** What `identity register` asks for. */
export interface RegisterRequest {
  /** Sandbox id (must hold an active lease). */
  readonly sandbox: string;
  /** Optional application name, carried in tokens as `app`. */
  readonly app: string | null;
  /** Audiences tokens may be issued for; empty means only the default audience. */
  readonly audiences: readonly string[];
}

/** An identity as shown to operators: everything but the secret's hash. */
export type IdentityView = Omit<Identity, 'secretHash'>;

/** What register and rotate return, once: the view plus the secret, URL and env block. */
export interface RegistrationResult extends IdentityView {
  /** The secret (never stored, never shown again). */
  readonly secret: string;
  /** Where the sandbox fetches tokens. */
  readonly tokenUrl: string;
  /** Environment to inject into the sandbox. */
  readonly env: { readonly [ENV_SECRET]: string; readonly [ENV_TOKEN_URL]: string };
}

/**
 * The origin sandboxes reach the token server at, also the tokens' issuer: the listen address,
 * or the gateway when it listens on every address.
 *
 * @example tokenOrigin({ host: '0.0.0.0', port: 7123 }, '10.8.64.1') // 'http://10.8.64.1:7123'
 */
export function tokenOrigin(listen: { host: string; port: number }, gateway: string): string {
  const host = listen.host === '0.0.0.0' || listen.host === '::' ? gateway : listen.host;
  return `http://${host}:${listen.port}`;
}

/** De-duplicates audiences keeping their order; none at all means `[DEFAULT_AUDIENCE]`. */
export function normalizeAudiences(audiences: readonly string[]): string[] {
  const unique = [...new Set(audiences)];
  return unique.length > 0 ? unique : [DEFAULT_AUDIENCE];
}

/** A new identity bound to `lease` (its address and generation). */
export function newIdentity(
  lease: Lease,
  req: RegisterRequest,
  secretHash: string,
  now: Date,
): Identity {
  const at = now.toISOString();
  return {
    sandbox: lease.sandbox,
    ip: lease.ip,
    generation: lease.generation,
    secretHash,
    app: req.app,
    audiences: normalizeAudiences(req.audiences),
    createdAt: at,
    rotatedAt: at,
  };
}

/** The same identity with a new secret. */
export function rotatedIdentity(identity: Identity, secretHash: string, now: Date): Identity {
  return { ...identity, secretHash, rotatedAt: now.toISOString() };
}

/** True when `identity` belongs to this very lease (same address and generation). */
export function boundTo(identity: Identity, lease: Lease): boolean {
  return (
    identity.sandbox === lease.sandbox &&
    identity.ip === lease.ip &&
    identity.generation === lease.generation
  );
}

/** The identity without its hash. */
export function identityView(identity: Identity): IdentityView {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { secretHash, ...view } = identity;
  return view;
}

/** The one-time answer of register/rotate. */
export function registrationResult(
  identity: Identity,
  secret: string,
  url: string,
): RegistrationResult {
  return {
    ...identityView(identity),
    secret,
    tokenUrl: url,
    env: { [ENV_SECRET]: secret, [ENV_TOKEN_URL]: url },
  };
}
