/**
 * The identity registry over the lease store: register, rotate, revoke and show. Every identity
 * lives in the store, bound to the sandbox's lease, so it survives restarts; the secret leaves
 * this module only in the one-time result and is stored as a SHA-256 hash. The store records
 * each change in its history (identity-registered, -updated, -removed).
 *
 * @example
 * const registry = new IdentityRegistry(store, 'http://10.8.64.1:7123/v1/token');
 * const { secret, env } = await registry.register({ sandbox: 'app-1', app: null, audiences: [] }, new Date());
 */
import { BridgewardError } from '../errors.js';
import type { Identity, Lease, LeaseStore } from '../store/types.js';
import { hashSecret, newSecret } from './secret.js';
import {
  boundTo,
  identityView,
  newIdentity,
  registrationResult,
  rotatedIdentity,
  type IdentityView,
  type RegisterRequest,
  type RegistrationResult,
} from './registration.js';

/** Register, rotate, revoke and show identities in a lease store. */
export class IdentityRegistry {
  readonly #store: LeaseStore;
  readonly #tokenUrl: string;
  #serial: Promise<unknown> = Promise.resolve();

  /** A registry over `store`; results point sandboxes at `tokenUrl`. */
  constructor(store: LeaseStore, tokenUrl: string) {
    this.#store = store;
    this.#tokenUrl = tokenUrl;
  }

  /**
   * Registers the sandbox's identity, bound to its current lease, with a fresh secret. An
   * identity left from an earlier lease of the same sandbox is replaced.
   *
   * @throws BridgewardError UNKNOWN_SANDBOX without an active lease; CONFLICT when this lease
   *   already has an identity (use rotate or revoke).
   */
  register(req: RegisterRequest, now: Date): Promise<RegistrationResult> {
    return this.#oneAtATime(() => this.#register(req, now));
  }

  async #register(req: RegisterRequest, now: Date): Promise<RegistrationResult> {
    const lease = await this.#lease(req.sandbox);
    const existing = await this.#store.identity(req.sandbox);
    if (existing && boundTo(existing, lease)) {
      throw new BridgewardError(
        'CONFLICT',
        `sandbox ${req.sandbox} already has an identity; use identity rotate or identity revoke`,
      );
    }
    const secret = newSecret();
    const identity = newIdentity(lease, req, hashSecret(secret), now);
    await this.#store.putIdentity(identity, now);
    return registrationResult(identity, secret, this.#tokenUrl);
  }

  /**
   * Replaces the sandbox's secret; the old one stops working at once.
   *
   * @throws BridgewardError UNKNOWN_SANDBOX without an active lease; UNKNOWN_IDENTITY when it
   *   has no identity for that lease.
   */
  rotate(sandbox: string, now: Date): Promise<RegistrationResult> {
    return this.#oneAtATime(() => this.#rotate(sandbox, now));
  }

  async #rotate(sandbox: string, now: Date): Promise<RegistrationResult> {
    const identity = await this.#current(sandbox);
    const secret = newSecret();
    const rotated = rotatedIdentity(identity, hashSecret(secret), now);
    await this.#store.putIdentity(rotated, now);
    return registrationResult(rotated, secret, this.#tokenUrl);
  }

  /**
   * Removes the sandbox's identity; its secret stops working at once.
   *
   * @throws BridgewardError UNKNOWN_IDENTITY when it has none.
   */
  revoke(sandbox: string, now: Date): Promise<IdentityView> {
    return this.#oneAtATime(() => this.#revoke(sandbox, now));
  }

  async #revoke(sandbox: string, now: Date): Promise<IdentityView> {
    const identity = await this.#store.identity(sandbox);
    if (!identity || !(await this.#store.removeIdentity(sandbox, now))) {
      throw new BridgewardError('UNKNOWN_IDENTITY', `sandbox ${sandbox} has no identity`);
    }
    return identityView(identity);
  }

  /**
   * The sandbox's identity, without the hash.
   *
   * @throws BridgewardError UNKNOWN_SANDBOX / UNKNOWN_IDENTITY as for rotate.
   */
  async show(sandbox: string): Promise<IdentityView> {
    return identityView(await this.#current(sandbox));
  }

  /** Runs mutations one after another, so a check and its write are never interleaved. */
  #oneAtATime<T>(f: () => Promise<T>): Promise<T> {
    const next = this.#serial.then(f);
    this.#serial = next.catch(() => undefined);
    return next;
  }

  async #lease(sandbox: string): Promise<Lease> {
    const lease = await this.#store.leaseBySandbox(sandbox);
    if (!lease) {
      throw new BridgewardError('UNKNOWN_SANDBOX', `sandbox ${sandbox} has no active lease`);
    }
    return lease;
  }

  async #current(sandbox: string): Promise<Identity> {
    const lease = await this.#lease(sandbox);
    const identity = await this.#store.identity(sandbox);
    if (!identity || !boundTo(identity, lease)) {
      throw new BridgewardError(
        'UNKNOWN_IDENTITY',
        `sandbox ${sandbox} has no identity for its lease on ${lease.ip}; use identity register`,
      );
    }
    return identity;
  }
}
