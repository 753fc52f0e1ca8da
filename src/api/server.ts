/**
 * The agent's HTTP/JSON API (fastify) on a unix socket with mode 0600, versioned under `/v1`.
 * Each domain contributes a route plugin; this file owns listening, error mapping and shutdown.
 *
 * @example
 * const api = await startApi({ socket: '/run/bridgeward/api.sock', log, routes: [statusRoutes(deps)] });
 * await api.close();
 */
import { chmod, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { connect } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import { BridgewardError } from '../errors.js';
import type { Logger } from '../log.js';

/** A route plugin: registers its routes (paths start with `/v1/`). */
export type ApiRoutes = (app: FastifyInstance) => void;

/** Builds the fastify app with bridgeward's error mapping (no listening). */
export function buildApi(log: Logger, routes: readonly ApiRoutes[]): FastifyInstance {
  const app: FastifyInstance = Fastify({
    // Request logs are noise on a local control socket: the API logs warnings and errors only.
    loggerInstance: log.child({ component: 'api' }, { level: 'warn' }) as FastifyBaseLogger,
    bodyLimit: 1 << 20,
    // Unknown fields are an error, not silently dropped (fastify's default strips them).
    ajv: { customOptions: { removeAdditional: false } },
  });
  app.setErrorHandler((err: FastifyError | BridgewardError, req, reply) => {
    if (err instanceof BridgewardError) {
      return reply.status(err.httpStatus).send({
        error: err.code,
        message: err.message,
        ...(err.details ? { details: err.details } : {}),
      });
    }
    if (err.validation || (err.statusCode && err.statusCode >= 400 && err.statusCode < 500)) {
      return reply
        .status(err.statusCode ?? 400)
        .send({ error: 'INVALID_ARGUMENT', message: err.message });
    }
    req.log.error({ err }, 'request failed');
    return reply.status(500).send({ error: 'INTERNAL', message: err.message });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send({ error: 'NOT_FOUND', message: `no route ${req.method} ${req.url}` }),
  );
  for (const r of routes) r(app);
  return app;
}

/**
 * Listens on the unix socket (replacing a stale socket file nobody answers on) and restricts it
 * to mode 0600.
 *
 * @throws BridgewardError INVALID_ARGUMENT when another agent already serves on the socket.
 */
export async function startApi(opts: {
  socket: string;
  log: Logger;
  routes: readonly ApiRoutes[];
}): Promise<FastifyInstance> {
  await mkdir(dirname(opts.socket), { recursive: true, mode: 0o755 });
  if (await socketAnswers(opts.socket)) {
    throw new BridgewardError('INVALID_ARGUMENT', `another agent already serves on ${opts.socket}`);
  }
  await rm(opts.socket, { force: true });
  const app = buildApi(opts.log, opts.routes);
  await app.listen({ path: opts.socket });
  await chmod(opts.socket, 0o600);
  return app;
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
