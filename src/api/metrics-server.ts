/**
 * Serves the agent's Prometheus registry at `GET /metrics` on `--metrics-listen`.
 *
 * @example
 * const srv = await startMetricsServer(metrics.registry, { host: '127.0.0.1', port: 9464 });
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { BridgewardError } from '../errors.js';

/** Starts the metrics listener; resolves once it listens. */
export function startMetricsServer(
  registry: Registry,
  listen: { host: string; port: number },
): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; try /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${e.message}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new BridgewardError(
          'INVALID_ARGUMENT',
          `--metrics-listen ${listen.host}:${listen.port}: ${e.code ?? e.message}`,
        ),
      ),
    );
    server.listen(listen.port, listen.host, () => resolve(server));
  });
}
