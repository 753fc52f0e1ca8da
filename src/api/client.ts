/**
 * The CLI's side of the API: JSON requests over the agent's unix socket.
 *
 * @example
 * const status = await apiRequest<StatusReport>('/run/bridgeward/api.sock', 'GET', '/v1/status');
 */
import { request } from 'node:http';
import { BridgewardError, ERROR_CODES, type ErrorCode } from '../errors.js';

/**
 * Sends one request and parses the JSON answer. With `timeoutMs`, a request the agent has not
 * answered by then is abandoned (the agent may still complete it).
 *
 * @throws BridgewardError AGENT_UNREACHABLE when nothing listens on the socket or the answer
 *   did not come in time; otherwise the error code and message the agent answered with.
 */
export function apiRequest<T>(
  socket: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
  timeoutMs?: number,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      {
        socketPath: socket,
        method,
        path,
        headers: payload
          ? { 'content-type': 'application/json', 'content-length': payload.length }
          : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text === '' ? null : JSON.parse(text);
          } catch {
            reject(
              new BridgewardError(
                'INTERNAL',
                `agent answered ${res.statusCode} with non-JSON: ${text.slice(0, 200)}`,
              ),
            );
            return;
          }
          if ((res.statusCode ?? 500) >= 400) {
            const e = parsed as { error?: string; message?: string } | null;
            const code = (e?.error && e.error in ERROR_CODES ? e.error : 'INTERNAL') as ErrorCode;
            reject(new BridgewardError(code, e?.message ?? `agent answered ${res.statusCode}`));
            return;
          }
          resolve(parsed as T);
        });
      },
    );
    if (timeoutMs !== undefined) {
      req.setTimeout(timeoutMs, () => {
        req.destroy();
        reject(
          new BridgewardError(
            'AGENT_UNREACHABLE',
            `the agent at ${socket} did not answer ${method} ${path} within ${timeoutMs} ms`,
          ),
        );
      });
    }
    req.on('error', (e: NodeJS.ErrnoException) => {
      reject(
        new BridgewardError(
          'AGENT_UNREACHABLE',
          `cannot reach the agent at ${socket}: ${e.code ?? e.message} (is \`bridgeward run\` running? set --socket or BRIDGEWARD_SOCKET)`,
        ),
      );
    });
    if (payload) req.write(payload);
    req.end();
  });
}
