/**
 * The node's token signing keys, persisted in the state dir (mode 0600) so that tokens issued
 * before a restart keep verifying and the JWKS survives restarts. Holds the key ring (see
 * `key-ring.ts`) and signs with its active key (jose, Ed25519).
 *
 * @example
 * const keys = await NodeKeys.open(join(stateDir, 'identity-keys.json'), new Date());
 * const { token, kid } = await keys.sign(claims);
 * keys.jwks(new Date());
 */
import { readFile } from 'node:fs/promises';
import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  SignJWT,
  type CryptoKey,
} from 'jose';
import { BridgewardError } from '../errors.js';
import { writeFileAtomic } from './atomic-write.js';
import type { TokenClaims } from './claims.js';
import {
  activeKey,
  initialRing,
  KEY_ALG,
  parseKeyRing,
  pruneRing,
  publicJwks,
  rotateRing,
  type KeyRing,
  type OkpJwk,
  type PublishedJwk,
  type SigningKey,
} from './key-ring.js';

/** What a key rotation did. */
export interface KeyRotation {
  /** Id of the new active key. */
  readonly kid: string;
  /** Retired keys still published, with when each goes. */
  readonly retired: readonly { kid: string; keepUntil: string }[];
}

/** Creates a fresh Ed25519 signing key; its id is the RFC 7638 thumbprint of the public key. */
export async function generateSigningKey(now: Date): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair(KEY_ALG, { crv: 'Ed25519', extractable: true });
  const jwk = await exportJWK(privateKey);
  const privateJwk: OkpJwk = {
    kty: 'OKP',
    crv: 'Ed25519',
    x: jwk.x as string,
    d: jwk.d as string,
  };
  const kid = await calculateJwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: privateJwk.x });
  return { kid, privateJwk, createdAt: now.toISOString(), retiredAt: null, keepUntil: null };
}

/** The persisted key ring and a signer over its active key. */
export class NodeKeys {
  readonly #path: string;
  readonly #maxTtlSeconds: number;
  #ring: KeyRing;
  #signer: { kid: string; key: Promise<CryptoKey> };
  #rotating: Promise<unknown> = Promise.resolve();

  private constructor(path: string, ring: KeyRing, maxTtlSeconds: number) {
    this.#path = path;
    this.#ring = ring;
    this.#maxTtlSeconds = maxTtlSeconds;
    this.#signer = NodeKeys.#signerFor(activeKey(ring));
  }

  /**
   * Loads the ring from `path`, or creates it with a fresh key when the file does not exist.
   * Retired keys whose tokens have all expired are dropped. `maxTtlSeconds` is the longest
   * token lifetime, i.e. how long a retired key stays published.
   *
   * @throws BridgewardError INVALID_CONFIG when the file exists but is unusable.
   */
  static async open(path: string, now: Date, maxTtlSeconds: number): Promise<NodeKeys> {
    let text: string | null = null;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new BridgewardError(
          'INVALID_CONFIG',
          `cannot read signing key file ${path}: ${(e as Error).message}`,
        );
      }
    }
    const ring =
      text === null
        ? initialRing(await generateSigningKey(now))
        : pruneRing(parseKeyRing(text, path), now);
    if (text === null) await writeFileAtomic(path, JSON.stringify(ring, null, 2) + '\n');
    return new NodeKeys(path, ring, maxTtlSeconds);
  }

  /** Id of the active key. */
  get activeKid(): string {
    return this.#signer.kid;
  }

  /** Signs `claims` as a JWT (header: alg EdDSA, typ JWT, kid of the active key). */
  async sign(claims: TokenClaims): Promise<{ token: string; kid: string }> {
    const { kid, key } = this.#signer;
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: KEY_ALG, typ: 'JWT', kid })
      .sign(await key);
    return { token, kid };
  }

  /** The public JWKS at `now`. */
  jwks(now: Date): { keys: PublishedJwk[] } {
    return publicJwks(this.#ring, now);
  }

  /**
   * Makes a fresh key active and persists the ring before using it; the old key stays in the
   * JWKS until the last token it signed expires. Concurrent rotations run one after another.
   */
  rotate(now: Date): Promise<KeyRotation> {
    const next = this.#rotating.then(async () => {
      const ring = rotateRing(this.#ring, await generateSigningKey(now), now, this.#maxTtlSeconds);
      await writeFileAtomic(this.#path, JSON.stringify(ring, null, 2) + '\n');
      this.#ring = ring;
      this.#signer = NodeKeys.#signerFor(activeKey(ring));
      return {
        kid: activeKey(ring).kid,
        retired: ring.keys
          .filter((k) => k.keepUntil !== null)
          .map((k) => ({ kid: k.kid, keepUntil: k.keepUntil as string })),
      };
    });
    this.#rotating = next.catch(() => undefined);
    return next;
  }

  static #signerFor(k: SigningKey): { kid: string; key: Promise<CryptoKey> } {
    return { kid: k.kid, key: importJWK(k.privateJwk, KEY_ALG) as Promise<CryptoKey> };
  }
}
