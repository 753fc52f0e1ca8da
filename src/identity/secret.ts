/**
 * Identity secrets: 256 random bits shown once, stored only as a SHA-256 hex digest, and
 * compared in constant time.
 *
 * @example
 * const secret = newSecret();          // 43 base64url characters, give it to the sandbox
 * const hash = hashSecret(secret);     // keep only this
 * secretMatches(secret, hash);         // true
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Bytes of randomness in a secret (256 bits). */
export const SECRET_BYTES = 32;

/** Creates a fresh secret: 32 random bytes, base64url without padding (43 characters). */
export function newSecret(): string {
  return randomBytes(SECRET_BYTES).toString('base64url');
}

/**
 * The lowercase hex SHA-256 of a secret, the only form the store keeps.
 *
 * @example hashSecret('abc') // 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/**
 * True when `secret` hashes to `storedHash`. The digests have a fixed length, so the comparison
 * takes the same time whatever the secret's length or how many leading characters match.
 *
 * @example secretMatches(s, hashSecret(s)) // true
 */
export function secretMatches(secret: string, storedHash: string): boolean {
  const presented = createHash('sha256').update(secret, 'utf8').digest();
  const stored = Buffer.from(storedHash, 'hex');
  return stored.length === presented.length && timingSafeEqual(presented, stored);
}
