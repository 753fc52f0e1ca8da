/**
 * The JSON objects the plugin prints, exactly as the CNI spec shapes them for each version: the
 * abbreviated IPAM success result, the VERSION answer and the error object (well-known codes,
 * and 100+ for bridgeward's own). Pure.
 *
 * @example
 * ipamResult('1.0.0', { ip: '10.8.64.5', prefixLength: 24, gateway: '10.8.64.1' });
 * // { cniVersion: '1.0.0', ips: [{ address: '10.8.64.5/24', gateway: '10.8.64.1' }],
 * //   routes: [{ dst: '0.0.0.0/0', gw: '10.8.64.1' }], dns: {} }
 */
import { ERROR_CODES, isBridgewardError, type ErrorCode } from '../errors.js';
import { SUPPORTED_VERSIONS, addressesCarryVersion, type SpecVersion } from './spec-version.js';

/** What the agent answered for an allocation (the fields the result needs). */
export interface Allocation {
  /** The address. */
  readonly ip: string;
  /** The subnet's prefix length. */
  readonly prefixLength: number;
  /** The gateway on the bridge. */
  readonly gateway: string;
}

/** A spec error object. */
export interface CniError {
  /** The request's spec version. */
  readonly cniVersion: string;
  /** Well-known code (1-99) or bridgeward's own (100+). */
  readonly code: number;
  /** A short message characterizing the error. */
  readonly msg: string;
  /** What exactly went wrong. */
  readonly details: string;
}

/** CNI error codes: the spec's well-known ones and bridgeward's own (100+). */
export const CNI_CODES = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodeFailure: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  notAvailable: 50,
  poolExhausted: 100,
  checkFailed: 101,
  agentFailed: 102,
} as const;

/** The spec's (or bridgeward's) short message for each code. */
const MESSAGES: Record<number, string> = {
  1: 'Incompatible CNI version',
  2: 'Unsupported field in network configuration',
  4: 'Invalid necessary environment variables',
  5: 'I/O failure',
  6: 'Failed to decode content',
  7: 'Invalid network config',
  11: 'Try again later',
  50: 'The plugin is not available',
  100: 'No free address in the pool',
  101: "The attachment's lease is missing or differs",
  102: 'The agent failed',
};

/** The CNI code of each BridgewardError code that has a specific one. */
const BY_ERROR: Partial<Record<ErrorCode, number>> = {
  INCOMPATIBLE_VERSION: CNI_CODES.incompatibleVersion,
  UNSUPPORTED_FIELD: CNI_CODES.unsupportedField,
  INVALID_ENVIRONMENT: CNI_CODES.invalidEnvironment,
  IO_FAILURE: CNI_CODES.ioFailure,
  INVALID_CONFIG: CNI_CODES.decodeFailure,
  INVALID_ARGUMENT: CNI_CODES.invalidConfig,
  CONFLICT: CNI_CODES.tryAgainLater,
  POOL_EXHAUSTED: CNI_CODES.poolExhausted,
  UNKNOWN_SANDBOX: CNI_CODES.checkFailed,
  LEASE_MISMATCH: CNI_CODES.checkFailed,
};

/**
 * The abbreviated success result of an IPAM plugin (no `interfaces`, no `interface` index): the
 * address with the gateway, and the default route via the gateway. Before 1.0.0 each address
 * carries `"version": "4"`.
 *
 * @example
 * ipamResult('0.3.1', a).ips[0].version; // '4'
 */
export function ipamResult(version: SpecVersion, a: Allocation): Record<string, unknown> {
  const address = { address: `${a.ip}/${a.prefixLength}`, gateway: a.gateway };
  return {
    cniVersion: version,
    ips: [addressesCarryVersion(version) ? { version: '4', ...address } : address],
    routes: [{ dst: '0.0.0.0/0', gw: a.gateway }],
    dns: {},
  };
}

/**
 * The VERSION answer.
 *
 * @example
 * versionResult('1.0.0'); // { cniVersion: '1.0.0', supportedVersions: ['0.3.0', ..., '1.1.0'] }
 */
export function versionResult(cniVersion: string): Record<string, unknown> {
  return { cniVersion, supportedVersions: [...SUPPORTED_VERSIONS] };
}

/**
 * The error object for a failure of `command`. The agent being unavailable for a moment (503:
 * unreachable, not ready, store down) or a lost race is 11, "try again later"; for STATUS it and
 * an exhausted pool are 50, "not available"; anything unexpected is 102.
 *
 * @example
 * errorResult('1.0.0', 'ADD', new BridgewardError('AGENT_UNREACHABLE', 'cannot reach ...')).code; // 11
 */
export function errorResult(cniVersion: string, command: string | undefined, e: unknown): CniError {
  const code = cniCodeOf(command, e);
  const details = isBridgewardError(e) ? e.message : `internal error: ${String(e)}`;
  return { cniVersion, code, msg: MESSAGES[code] ?? 'Error', details };
}

function cniCodeOf(command: string | undefined, e: unknown): number {
  if (!isBridgewardError(e)) return CNI_CODES.agentFailed;
  const unavailable = ERROR_CODES[e.code] === 503;
  if (command === 'STATUS' && (unavailable || e.code === 'POOL_EXHAUSTED')) {
    return CNI_CODES.notAvailable;
  }
  if (unavailable) return CNI_CODES.tryAgainLater;
  return BY_ERROR[e.code] ?? CNI_CODES.agentFailed;
}
