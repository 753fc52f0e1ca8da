/**
 * JSON requests to the agent's API over kept-alive unix-socket connections, as a runtime talking
 * to it all day would make them (no connection set-up per request).
 *
 * @example
 * const leases = await api<Lease[]>(agent.socket, 'GET', '/v1/leases');
 */
import { Agent, request } from 'node:http';

const keepAlive = new Agent({ keepAlive: true, maxSockets: 64 });

/**
 * One request; resolves to the parsed JSON answer (null for an empty body).
 *
 * @throws Error naming the method, path and status for an answer >= 400.
 */
export function api<T = unknown>(
  socket: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath: socket,
        agent: keepAlive,
        method,
        path,
        headers: payload
          ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
          : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          if ((res.statusCode ?? 500) >= 400)
            reject(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 200)}`));
          else resolve((text ? JSON.parse(text) : null) as T);
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
