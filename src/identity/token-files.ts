/**
 * Per-sandbox token files for apps that read a file instead of calling the token server:
 * `<dir>/<sandbox>/token` holds a JWT for the sandbox's identity (first audience, default
 * lifetime), rewritten by atomic rename at 80% of its lifetime and removed when the identity
 * goes. The runtime bind-mounts the sandbox's directory (not the file: a file mount would pin
 * the replaced inode). Derived from the store on every pass, so a restart just rewrites them.
 *
 * @example
 * const files = new TokenFiles({ dir: '/run/bridgeward/tokens', store, keys, issuer, log, intervalMs: 10_000 });
 * await files.start();
 * await files.stop();
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Counter } from 'prom-client';
import type { Logger } from '../log.js';
import type { Identity, LeaseStore } from '../store/types.js';
import { SANDBOX_ID_PATTERN } from '../ipam/sandbox-id.js';
import { writeFileAtomic } from './atomic-write.js';
import { TOKEN_TTL, tokenClaims, tokenParams } from './claims.js';
import type { NodeKeys } from './node-keys.js';
import { boundTo } from './registration.js';
import { planTokenFiles, type WrittenToken } from './token-file-plan.js';

/** Name of the token file inside each sandbox's directory. */
export const TOKEN_FILE = 'token';

const SANDBOX_RE = new RegExp(SANDBOX_ID_PATTERN);

/** What the token files need. */
export interface TokenFilesOptions {
  /** Base directory (created 0700; each sandbox directory 0755, each file 0644). */
  readonly dir: string;
  /** The lease store, read on every pass. */
  readonly store: Pick<LeaseStore, 'snapshot' | 'identity'>;
  /** Signing keys. */
  readonly keys: NodeKeys;
  /** The `iss` claim. */
  readonly issuer: string;
  /** Logger. */
  readonly log: Logger;
  /** Milliseconds between passes. */
  readonly intervalMs: number;
  /** Counter of issued tokens by result, if metrics are on (`file` for these). */
  readonly requests?: Counter<'result'>;
}

/** Keeps the token files in step with the registered identities. */
export class TokenFiles {
  readonly #opts: TokenFilesOptions;
  readonly #written = new Map<string, WrittenToken>();
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;

  /** Creates the writer; nothing happens before `start()`. */
  constructor(opts: TokenFilesOptions) {
    this.#opts = opts;
  }

  /** Creates the directory, runs a first pass, then one pass every `intervalMs`. */
  async start(): Promise<void> {
    await mkdir(this.#opts.dir, { recursive: true, mode: 0o700 });
    await this.sync();
    this.#timer = setInterval(() => void this.#tick(), this.#opts.intervalMs);
    this.#timer.unref();
  }

  /** One pass: write what is missing or due, remove what has no identity. */
  async sync(): Promise<void> {
    const { dir, store } = this.#opts;
    const leases = (await store.snapshot()).leases;
    const identities: Identity[] = [];
    for (const lease of leases) {
      const identity = await store.identity(lease.sandbox);
      if (identity && boundTo(identity, lease)) identities.push(identity);
    }
    const onDisk = (await readdir(dir, { withFileTypes: true }))
      .filter((e) => e.isDirectory() && SANDBOX_RE.test(e.name))
      .map((e) => e.name);
    const now = new Date();
    const plan = planTokenFiles({
      identities,
      onDisk,
      written: this.#written,
      nowSeconds: Math.floor(now.getTime() / 1000),
    });
    for (const identity of plan.write) await this.#write(identity, now);
    for (const sandbox of plan.remove) {
      await rm(join(dir, sandbox), { recursive: true, force: true });
      this.#written.delete(sandbox);
      this.#opts.log.info({ sandbox }, 'token file removed');
    }
  }

  /** Stops the passes; resolves once a pass in progress has finished. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  async #write(identity: Identity, now: Date): Promise<void> {
    const claims = tokenClaims({
      issuer: this.#opts.issuer,
      identity,
      ...tokenParams({ ttl: String(TOKEN_TTL.default) }, identity.audiences),
      now,
      jti: randomUUID(),
    });
    const sandboxDir = join(this.#opts.dir, identity.sandbox);
    await mkdir(sandboxDir, { recursive: true, mode: 0o755 });
    await writeFileAtomic(
      join(sandboxDir, TOKEN_FILE),
      (await this.#opts.keys.sign(claims)).token,
      0o644,
    );
    this.#written.set(identity.sandbox, {
      generation: identity.generation,
      iat: claims.iat,
      exp: claims.exp,
    });
    this.#opts.requests?.inc({ result: 'file' });
    this.#opts.log.debug(
      { sandbox: identity.sandbox, jti: claims.jti, exp: claims.exp },
      'token file written',
    );
  }

  async #tick(): Promise<void> {
    if (this.#running) {
      this.#opts.log.warn({ dir: this.#opts.dir }, 'token file pass still running; skipping one');
      return;
    }
    const started = Date.now();
    this.#running = this.sync()
      .catch((e: unknown) => this.#opts.log.warn({ err: e }, 'token file pass failed'))
      .finally(() => {
        this.#running = null;
        const ms = Date.now() - started;
        if (ms > this.#opts.intervalMs) this.#opts.log.warn({ ms }, 'token file pass fell behind');
      });
    await this.#running;
  }
}
