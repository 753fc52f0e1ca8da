/**
 * The identity part of the agent, assembled: the node keys from the state dir, the registry over
 * the lease store, the token server on the gateway and, when asked for, the per-sandbox token
 * files. It lives as long as the agent; the token server starts listening once the gateway
 * address is on the bridge (`listen()`, on every bridge instance: idempotent) and keeps its
 * socket while the bridge is recreated (the socket is bound to the address, not the device).
 *
 * @example
 * const identity = await startIdentity({ stateDir, listen, gateway, store, log });
 * await identity.listen(); // once the gateway address is on the bridge
 * identity.tokenUrl; // 'http://10.8.64.1:7123/v1/token'
 * await identity.close();
 */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Counter } from 'prom-client';
import type { Logger } from '../log.js';
import type { LeaseStore } from '../store/types.js';
import type { LiveSource } from '../observe/types.js';
import { TOKEN_TTL } from './claims.js';
import { FailureLimiter } from './failure-limiter.js';
import { NodeKeys } from './node-keys.js';
import { TOKEN_PATH, tokenOrigin } from './registration.js';
import { IdentityRegistry } from './registry.js';
import { buildTokenServer, listenTokenServer } from './token-server.js';
import { TokenFiles } from './token-files.js';

/** File in the state dir holding the signing keys (mode 0600). */
export const KEY_FILE = 'identity-keys.json';

/** Failed token requests allowed per source per minute before it is refused for the rest of it. */
export const FAILURE_LIMIT = { maxFailures: 10, windowMs: 60_000, maxSources: 4096 } as const;

/** The running identity part. */
export interface IdentityService {
  /** Register, rotate, revoke, show. */
  readonly registry: IdentityRegistry;
  /** Signing keys (rotate-key). */
  readonly keys: NodeKeys;
  /** The URL sandboxes fetch tokens from. */
  readonly tokenUrl: string;
  /** Whether the token server listens yet. */
  listening(): boolean;
  /**
   * Starts the token server listening unless it already does.
   *
   * @throws BridgewardError INVALID_ARGUMENT naming `--identity-listen` when the address is busy
   *   or not local (yet).
   */
  listen(): Promise<void>;
  /** Stops the token server and the token files. */
  close(): Promise<void>;
}

/**
 * Opens (or creates) the node keys, builds the token server for `listen` (listening waits for
 * `listen()`) and, with `tokenFiles`, keeps a token file per registered sandbox in
 * `tokenFiles.dir`.
 *
 * @throws BridgewardError INVALID_CONFIG for an unusable key file.
 */
export async function startIdentity(opts: {
  stateDir: string;
  listen: { host: string; port: number };
  gateway: string;
  store: LeaseStore;
  live?: LiveSource;
  log: Logger;
  requests?: Counter<'result'>;
  tokenFiles?: { dir: string; intervalMs: number } | null;
}): Promise<IdentityService> {
  const keys = await NodeKeys.open(join(opts.stateDir, KEY_FILE), new Date(), TOKEN_TTL.max);
  const issuer = tokenOrigin(opts.listen, opts.gateway);
  const tokenUrl = issuer + TOKEN_PATH;
  const server: FastifyInstance = buildTokenServer({
    store: opts.store,
    keys,
    issuer,
    live: opts.live,
    limiter: new FailureLimiter(FAILURE_LIMIT),
    log: opts.log,
    requests: opts.requests,
  });
  let listening: Promise<void> | null = null;
  const files = opts.tokenFiles
    ? new TokenFiles({
        ...opts.tokenFiles,
        store: opts.store,
        keys,
        issuer,
        log: opts.log,
        requests: opts.requests,
      })
    : null;
  try {
    await files?.start();
  } catch (e) {
    await server.close();
    throw e;
  }
  return {
    registry: new IdentityRegistry(opts.store, tokenUrl),
    keys,
    tokenUrl,
    listening: () => server.server.listening,
    listen() {
      listening ??= listenTokenServer(server, opts.listen).then(
        () => opts.log.info({ tokenUrl, kid: keys.activeKid }, 'token server listening'),
        (e: unknown) => {
          listening = null; // try again on the next bridge instance
          throw e;
        },
      );
      return listening;
    },
    close: async () => {
      await files?.stop();
      await server.close();
    },
  };
}
