/**
 * The token server sandboxes call on the gateway address (default `<gateway>:7123`):
 * `GET /v1/token` with `Authorization: Bearer <secret>` and optional `?audience=`/`?ttl=`
 * returns a JWT for the identity of the lease on the request's SOURCE address, read from the
 * lease store at request time (so a restart loses nothing), checks the secret and, once the
 * lease knows them, that the bridge sees the address at the lease's MAC and port;
 * `GET /.well-known/jwks.json` serves
 * the public keys. Refusals are JSON `{error, message, retryable}`, with `Retry-After` when
 * retrying helps. The secret is never logged.
 *
 * @example
 * const srv = await startTokenServer({ store, keys, issuer, limiter, log }, { host: '10.8.64.1', port: 7123 });
 * await srv.close();
 */
import { randomUUID } from 'node:crypto';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
} from 'fastify';
import type { Counter } from 'prom-client';
import { BridgewardError } from '../errors.js';
import type { Logger } from '../log.js';
import type { LeaseStore } from '../store/types.js';
import type { LiveSource } from '../observe/types.js';
import { authorizeTokenRequest } from './authorize.js';
import { tokenClaims, tokenParams } from './claims.js';
import type { FailureLimiter } from './failure-limiter.js';
import type { NodeKeys } from './node-keys.js';
import { JWKS_PATH, TOKEN_PATH } from './registration.js';

/** What the token server reads and uses. */
export interface TokenServerDeps {
  /** The lease store, read at every request. */
  readonly store: Pick<LeaseStore, 'leaseByIp' | 'identity'>;
  /** Signing keys. */
  readonly keys: NodeKeys;
  /** What the bridge sees live (MAC, port per address), checked against a bound lease. */
  readonly live?: LiveSource;
  /** The `iss` claim (the server's origin, e.g. `http://10.8.64.1:7123`). */
  readonly issuer: string;
  /** Per-source limit on failed requests. */
  readonly limiter: FailureLimiter;
  /** Logger; the server logs each issue and refusal without the secret. */
  readonly log: Logger;
  /** Counter of requests by result (`ok` or the error code), if metrics are on. */
  readonly requests?: Counter<'result'>;
  /** Clock (tests pass a fixed one). */
  readonly now?: () => Date;
}

/** The body of a successful `GET /v1/token`. */
export interface TokenResponse {
  /** The signed JWT. */
  readonly token: string;
  /** ISO time it expires. */
  readonly expiresAt: string;
  /** Its lifetime in seconds. */
  readonly ttlSeconds: number;
}

/** The JSON body of a refusal. */
export interface TokenErrorBody {
  /** Stable error code. */
  readonly error: string;
  /** One-line reason. */
  readonly message: string;
  /** Whether retrying (after `Retry-After` seconds) may succeed. */
  readonly retryable: boolean;
}

/** The caller's IPv4 address, without an IPv4-mapped IPv6 prefix. */
function sourceAddress(remote: string | undefined): string {
  return (remote ?? '').replace(/^::ffff:/, '');
}

/** Builds the token server app (no listening). */
export function buildTokenServer(deps: TokenServerDeps): FastifyInstance {
  const now = deps.now ?? (() => new Date());
  const log = deps.log.child({ component: 'token-server' });
  const app: FastifyInstance = Fastify({
    loggerInstance: log.child({}, { level: 'warn' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024,
  });

  app.setErrorHandler((err: FastifyError | BridgewardError, req, reply) => {
    const source = sourceAddress(req.socket.remoteAddress);
    let body: TokenErrorBody;
    if (err instanceof BridgewardError) {
      const retryAfter = err.details?.retryAfterSeconds;
      if (typeof retryAfter === 'number') void reply.header('retry-after', String(retryAfter));
      body = { error: err.code, message: err.message, retryable: err.details?.retryable === true };
      reply.status(err.httpStatus);
    } else if (err.validation || (err.statusCode && err.statusCode < 500)) {
      body = { error: 'INVALID_ARGUMENT', message: err.message, retryable: false };
      reply.status(400);
    } else {
      log.error({ err, source }, 'token request failed');
      body = { error: 'INTERNAL', message: 'internal error', retryable: true };
      reply.status(500);
    }
    deps.requests?.inc({ result: body.error });
    // Final refusals count towards the failure limit, so at most a few per source and minute
    // reach warn; retryable ones (polling before registration, rate-limited) stay at debug.
    log[body.retryable ? 'debug' : 'warn'](
      { source, error: body.error, reason: body.message },
      'token refused',
    );
    return reply.send(body);
  });
  app.setNotFoundHandler((req, reply) =>
    reply
      .status(404)
      .send({ error: 'NOT_FOUND', message: `no route ${req.method} ${req.url}`, retryable: false }),
  );

  app.get<{ Querystring: { audience?: string; ttl?: string } }>(
    TOKEN_PATH,
    {
      schema: {
        querystring: {
          type: 'object',
          properties: {
            audience: { type: 'string', minLength: 1, maxLength: 256 },
            ttl: { type: 'string', maxLength: 10 },
          },
          additionalProperties: false,
        },
      },
    },
    async (req): Promise<TokenResponse> => {
      const source = sourceAddress(req.socket.remoteAddress);
      const at = now();
      const wait = deps.limiter.retryAfterSeconds(source, at.getTime());
      if (wait > 0) {
        throw new BridgewardError('RATE_LIMITED', `too many failed requests from ${source}`, {
          retryable: true,
          retryAfterSeconds: wait,
        });
      }
      const lease = await deps.store.leaseByIp(source);
      const identity = lease && (await deps.store.identity(lease.sandbox));
      const bound = lease !== null && (lease.mac !== null || lease.ifindex !== null);
      const seen = bound && deps.live ? ((await deps.live.live()).get(source) ?? null) : null;
      const decision = authorizeTokenRequest({
        sourceIp: source,
        headers: req.headers,
        lease,
        identity,
        seen,
      });
      if (!decision.ok) {
        if (decision.error.details?.retryable !== true)
          deps.limiter.recordFailure(source, at.getTime());
        throw decision.error;
      }
      const params = tokenParams(req.query, decision.identity.audiences);
      const claims = tokenClaims({
        issuer: deps.issuer,
        identity: decision.identity,
        ...params,
        now: at,
        jti: randomUUID(),
      });
      const { token, kid } = await deps.keys.sign(claims);
      deps.requests?.inc({ result: 'ok' });
      log.info(
        {
          source,
          sandbox: claims.sandbox,
          generation: claims.generation,
          aud: claims.aud,
          ttl: params.ttlSeconds,
          jti: claims.jti,
          kid,
        },
        'token issued',
      );
      return {
        token,
        expiresAt: new Date(claims.exp * 1000).toISOString(),
        ttlSeconds: params.ttlSeconds,
      };
    },
  );

  app.get(JWKS_PATH, async (_req, reply) => {
    void reply.header('cache-control', 'max-age=60');
    return deps.keys.jwks(now());
  });
  return app;
}

/**
 * Starts a built token server listening on `listen`.
 *
 * @throws BridgewardError INVALID_ARGUMENT naming `--identity-listen` when the address is busy
 *   or not local.
 */
export async function listenTokenServer(
  app: FastifyInstance,
  listen: { host: string; port: number },
): Promise<void> {
  try {
    await app.listen({ host: listen.host, port: listen.port });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new BridgewardError(
      'INVALID_ARGUMENT',
      `--identity-listen ${listen.host}:${listen.port}: ${code}`,
    );
  }
}

/**
 * Builds the token server and listens on `listen`.
 *
 * @throws BridgewardError INVALID_ARGUMENT naming `--identity-listen` when the address is busy
 *   or not local.
 */
export async function startTokenServer(
  deps: TokenServerDeps,
  listen: { host: string; port: number },
): Promise<FastifyInstance> {
  const app = buildTokenServer(deps);
  try {
    await listenTokenServer(app, listen);
  } catch (e) {
    await app.close();
    throw e;
  }
  return app;
}
