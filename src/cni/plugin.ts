/**
 * The CNI IPAM plugin's shell: checks the invocation, asks the agent over its socket (a short
 * timeout per request) and renders the spec's result or error object. It never allocates on its
 * own and never touches the store.
 *
 * - ADD: `POST /v1/leases` for the attachment's sandbox id (idempotent: a repeated ADD gets the
 *   same address), with the MAC of `CNI_IFNAME` from `prevResult` when there is one.
 * - DEL: `DELETE /v1/leases/:sandbox`; an unknown attachment is already released.
 * - CHECK: `GET /v1/leases/:sandbox`, which must hold an address of `prevResult`.
 * - GC: the valid attachments become the runtime's declared set (`POST /v1/sync`).
 * - STATUS: `GET /v1/pool`: the agent answers and the pool has an address left.
 *
 * @example
 * const { stdout, exitCode } = await runPlugin(process.env, stdinText);
 */
import { apiRequest } from '../api/client.js';
import type { AllocationView, PoolView, SyncView } from '../api/lease-routes.js';
import { DEFAULT_SOCKET } from '../config.js';
import { isBridgewardError } from '../errors.js';
import type { Lease } from '../store/types.js';
import { attachmentProblem, sandboxIdOf } from './attachment.js';
import { checkLease } from './check.js';
import { errorVersion, parseCniRequest, type CniEnv, type CniRequest } from './request.js';
import { errorResult, ipamResult, versionResult } from './result.js';
import { assertAvailable } from './status.js';

/** What the plugin prints on stdout and its exit code. */
export interface PluginOutput {
  /** A JSON object and a newline, or nothing. */
  readonly stdout: string;
  /** 0 on success, 1 with an error object. */
  readonly exitCode: number;
}

/** A request to the agent, bound to the socket and timeout of the config. */
type AgentCall = <T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown) => Promise<T>;

/**
 * Runs one invocation. Every failure, from a missing variable to an unreachable agent, becomes
 * the spec's error object with exit code 1; nothing is asked of the agent for a bad request.
 */
export async function runPlugin(env: CniEnv, stdin: string): Promise<PluginOutput> {
  try {
    const result = await execute(parseCniRequest(env, stdin));
    return { stdout: result ? `${JSON.stringify(result)}\n` : '', exitCode: 0 };
  } catch (e) {
    return failure(errorVersion(stdin), env.CNI_COMMAND, e);
  }
}

/**
 * The output for a failure (also for one before the request could be read).
 *
 * @example
 * failure('1.1.0', 'ADD', new BridgewardError('IO_FAILURE', 'reading stdin: EIO'));
 */
export function failure(cniVersion: string, command: string | undefined, e: unknown): PluginOutput {
  return { stdout: `${JSON.stringify(errorResult(cniVersion, command, e))}\n`, exitCode: 1 };
}

async function execute(req: CniRequest): Promise<Record<string, unknown> | null> {
  if (req.command === 'VERSION') return versionResult(req.cniVersion);
  const socket = req.ipam.socket ?? DEFAULT_SOCKET;
  const call: AgentCall = (method, path, body) =>
    apiRequest(socket, method, path, body, req.ipam.timeoutMs);
  switch (req.command) {
    case 'STATUS':
      assertAvailable(await call<PoolView>('GET', '/v1/pool'));
      return null;
    case 'GC': {
      const sandboxes = req.valid.filter((a) => attachmentProblem(a) === null).map(sandboxIdOf);
      const r = await call<SyncView>('POST', '/v1/sync', { sandboxes });
      process.stderr.write(
        `bridgeward: GC declared ${r.declared} attachments; ${r.undeclared.length} other leases are reaped once quiet on the wire\n`,
      );
      return null;
    }
    case 'ADD': {
      const mac = req.prevResult?.mac;
      const a = await call<AllocationView>('POST', '/v1/leases', {
        sandbox: sandboxIdOf(req.attachment),
        ...(mac ? { mac } : {}),
      });
      return ipamResult(req.cniVersion, a);
    }
    case 'DEL':
      try {
        await call('DELETE', `/v1/leases/${encodeURIComponent(sandboxIdOf(req.attachment))}`);
      } catch (e) {
        if (!isBridgewardError(e, 'UNKNOWN_SANDBOX')) throw e;
      }
      return null;
    case 'CHECK': {
      const sandbox = sandboxIdOf(req.attachment);
      const lease = await call<Lease>('GET', `/v1/leases/${encodeURIComponent(sandbox)}`);
      checkLease(lease, req.prevResult ?? { addresses: [], mac: null });
      return null;
    }
  }
}
