/**
 * The node's signing keys as data: one active key, and retired keys kept until the last token
 * they signed has expired so verifiers can still check those tokens. Pure: rotation, pruning,
 * the public JWKS and parsing of the persisted form.
 *
 * @example
 * let ring = initialRing(key);
 * ring = rotateRing(ring, freshKey, new Date(), TOKEN_TTL.max);
 * publicJwks(ring, new Date()).keys.length; // 2: the new key and the retired one
 */
import { BridgewardError } from '../errors.js';

/** Signature algorithm of every node key (Ed25519). */
export const KEY_ALG = 'EdDSA';

/** An Ed25519 key in JWK form (`d` only in the private half). */
export interface OkpJwk {
  readonly kty: 'OKP';
  readonly crv: 'Ed25519';
  readonly x: string;
  readonly d?: string;
}

/** A public key as published in the JWKS. */
export interface PublishedJwk extends OkpJwk {
  /** Key id (the JWK thumbprint). */
  readonly kid: string;
  /** Always `EdDSA`. */
  readonly alg: typeof KEY_ALG;
  /** Always `sig`. */
  readonly use: 'sig';
}

/** One signing key with its life cycle. */
export interface SigningKey {
  /** Key id, carried in each token's header. */
  readonly kid: string;
  /** The private key (includes the public `x`). */
  readonly privateJwk: OkpJwk;
  /** ISO time the key was created. */
  readonly createdAt: string;
  /** ISO time it stopped signing, or null while active. */
  readonly retiredAt: string | null;
  /** ISO time the last token it signed expires (retired keys only), or null. */
  readonly keepUntil: string | null;
}

/** All keys; exactly one has `retiredAt === null` (the active one), and it comes first. */
export interface KeyRing {
  readonly keys: readonly SigningKey[];
}

/** A ring holding only `key`, which becomes the active key. */
export function initialRing(key: SigningKey): KeyRing {
  return { keys: [key] };
}

/** The key that signs new tokens. */
export function activeKey(ring: KeyRing): SigningKey {
  return ring.keys[0] as SigningKey;
}

/**
 * Makes `fresh` the active key. The previous active key is retired now and kept until
 * `maxTtlSeconds` from now, when the last token it may have signed expires; expired retired
 * keys are dropped.
 */
export function rotateRing(
  ring: KeyRing,
  fresh: SigningKey,
  now: Date,
  maxTtlSeconds: number,
): KeyRing {
  const keepUntil = new Date(now.getTime() + maxTtlSeconds * 1000).toISOString();
  const retired = ring.keys.map((k) =>
    k.retiredAt === null ? { ...k, retiredAt: now.toISOString(), keepUntil } : k,
  );
  return pruneRing({ keys: [fresh, ...retired] }, now);
}

/** Drops retired keys whose last token has expired by `now`. */
export function pruneRing(ring: KeyRing, now: Date): KeyRing {
  return {
    keys: ring.keys.filter((k) => k.keepUntil === null || Date.parse(k.keepUntil) > now.getTime()),
  };
}

/** The public JWKS at `now`: the active key and retired keys still within their keep time. */
export function publicJwks(ring: KeyRing, now: Date): { keys: PublishedJwk[] } {
  return {
    keys: pruneRing(ring, now).keys.map((k) => ({
      kty: 'OKP',
      crv: 'Ed25519',
      x: k.privateJwk.x,
      kid: k.kid,
      alg: KEY_ALG,
      use: 'sig',
    })),
  };
}

/**
 * Parses the persisted ring (JSON), checking its shape.
 *
 * @throws BridgewardError INVALID_CONFIG naming `source` when the text is not a valid ring.
 */
export function parseKeyRing(text: string, source: string): KeyRing {
  const bad = (why: string) =>
    new BridgewardError('INVALID_CONFIG', `signing key file ${source} is unusable: ${why}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw bad((e as Error).message);
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw bad('no keys');
  keys.forEach((k: unknown, i) => {
    const key = k as Partial<SigningKey> | null;
    const jwk = key?.privateJwk;
    if (
      typeof key?.kid !== 'string' ||
      typeof key.createdAt !== 'string' ||
      jwk?.kty !== 'OKP' ||
      jwk.crv !== 'Ed25519' ||
      typeof jwk.x !== 'string' ||
      typeof jwk.d !== 'string'
    ) {
      throw bad(`key ${i} is not an Ed25519 signing key`);
    }
    const active = key.retiredAt === null && key.keepUntil === null;
    const retired = typeof key.retiredAt === 'string' && typeof key.keepUntil === 'string';
    if (i === 0 ? !active : !retired) throw bad('the first key, and only it, must be active');
  });
  return { keys: keys as SigningKey[] };
}
