/**
 * The one way a client verb talks to the agent: an API request over the socket its `--socket`
 * flag (or `BRIDGEWARD_SOCKET`, or the default) names.
 *
 * @example
 * const leases = await callAgent<Lease[]>(values, 'GET', '/v1/leases');
 */
import { apiRequest } from '../api/client.js';
import { resolveSocket } from './args.js';

/**
 * Sends one request for a client verb and returns the parsed answer.
 *
 * @throws BridgewardError AGENT_UNREACHABLE, or the code the agent answered with.
 */
export function callAgent<T>(
  flags: { socket?: string | undefined },
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<T> {
  return apiRequest<T>(resolveSocket(flags.socket), method, path, body);
}
