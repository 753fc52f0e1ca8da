/**
 * Conflict findings over the API: `GET /v1/conflicts[?all=1]` lists them (active; with `all`
 * the cleared ones remembered since start too) and `GET /v1/events` streams every change as
 * server-sent events. A new stream first replays the active findings as `active` events, then
 * sends `raised`, `updated` and `cleared` as they happen, and a comment line every 15 s.
 * A consumer that falls more than 1 MiB behind is disconnected, so it never slows detection.
 *
 * @example
 * app.register(eventsRoutes({ findings: detector, stream }));
 */
import type { ServerResponse } from 'node:http';
import type { Finding } from '../detect/finding.js';
import type { FindingStream } from '../alerts/finding-stream.js';
import { formatSse } from './sse.js';
import type { ApiRoutes } from './server.js';

/** Where the routes read findings from (the detector). */
export interface FindingSource {
  /** Active findings. */
  active(): Finding[];
  /** Cleared findings remembered since start. */
  cleared(): Finding[];
}

/** Dependencies of the routes. */
export interface EventsDeps {
  /** Current and past findings. */
  readonly findings: FindingSource;
  /** Live finding changes. */
  readonly stream: FindingStream;
  /** Bytes a stream may lag behind before it is dropped (default 1 MiB). */
  readonly maxLagBytes?: number;
  /** Interval of keep-alive comments (default 15 s). */
  readonly heartbeatMs?: number;
}

/** Route plugin for `/v1/conflicts` and `/v1/events`. */
export function eventsRoutes(deps: EventsDeps): ApiRoutes {
  const maxLag = deps.maxLagBytes ?? 1 << 20;
  const heartbeatMs = deps.heartbeatMs ?? 15_000;
  const open = new Set<ServerResponse>();
  return (app) => {
    app.get(
      '/v1/conflicts',
      {
        schema: {
          querystring: {
            type: 'object',
            properties: { all: { type: 'string', enum: ['0', '1', 'true', 'false'] } },
            additionalProperties: false,
          },
        },
      },
      async (req) => {
        const all = (req.query as { all?: string }).all;
        const active = deps.findings.active();
        return all === '1' || all === 'true' ? [...deps.findings.cleared(), ...active] : active;
      },
    );

    app.get('/v1/events', (req, reply) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      res.flushHeaders();
      open.add(res);
      let seq = 0;
      let closed = false;
      const send = (event: string, data: string) => {
        if (closed) return;
        if (res.writableLength > maxLag) {
          req.log.warn({ lagBytes: res.writableLength }, 'event stream consumer too slow; closing');
          close();
          return;
        }
        res.write(formatSse({ event, data, id: ++seq }));
      };
      const unsubscribe = deps.stream.subscribe((c) => send(c.type, JSON.stringify(c.finding)));
      const heartbeat = setInterval(() => {
        if (!closed) res.write(': keep-alive\n\n');
      }, heartbeatMs);
      function close() {
        if (closed) return;
        closed = true;
        unsubscribe();
        clearInterval(heartbeat);
        open.delete(res);
        res.end();
      }
      res.on('close', close);
      for (const f of deps.findings.active()) send('active', JSON.stringify(f));
    });

    // Streams never end by themselves: end them before the server waits for its connections.
    app.addHook('preClose', (done) => {
      for (const res of open) res.end();
      done();
    });
  };
}
