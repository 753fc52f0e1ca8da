/**
 * The CLI's side of `GET /v1/events`: opens the server-sent-event stream on the agent's unix
 * socket and hands each event to a callback until the stream ends or is closed.
 *
 * @example
 * const s = openEventStream('/run/bridgeward/api.sock', (e) => console.log(e.event, e.data));
 * await s.ended;
 */
import { request } from 'node:http';
import { BridgewardError } from '../errors.js';
import { SseParser, type SseEvent } from './sse.js';

/** An open event stream. */
export interface EventStream {
  /** Resolves when the agent ends the stream or `close()` is called; rejects when it cannot connect. */
  readonly ended: Promise<void>;
  /** Closes the stream. */
  close(): void;
}

/**
 * Opens the stream. `onEvent` runs for every event, in order.
 *
 * @throws (through `ended`) BridgewardError AGENT_UNREACHABLE when nothing listens on the socket.
 */
export function openEventStream(
  socket: string,
  onEvent: (e: SseEvent) => void,
  path = '/v1/events',
): EventStream {
  let close = () => {};
  const ended = new Promise<void>((resolve, reject) => {
    const req = request({ socketPath: socket, method: 'GET', path }, (res) => {
      if ((res.statusCode ?? 500) >= 400) {
        res.resume();
        reject(new BridgewardError('INTERNAL', `agent answered ${res.statusCode} on ${path}`));
        return;
      }
      const parser = new SseParser();
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        for (const e of parser.push(chunk)) onEvent(e);
      });
      res.on('end', () => resolve());
      res.on('close', () => resolve());
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (req.destroyed && e.code === 'ECONNRESET') return resolve();
      reject(
        new BridgewardError(
          'AGENT_UNREACHABLE',
          `cannot reach the agent at ${socket}: ${e.code ?? e.message} (is \`bridgeward run\` running? set --socket or BRIDGEWARD_SOCKET)`,
        ),
      );
    });
    close = () => {
      req.destroy();
      resolve();
    };
    req.end();
  });
  return { ended, close: () => close() };
}
