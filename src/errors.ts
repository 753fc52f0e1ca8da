/**
 * Every error bridgeward raises on purpose, with a stable `code`, defined in this one file.
 *
 * The API maps `httpStatus` to the response status and returns `{error: code, message}`; the CLI
 * prints `bridgeward: <message>` and exits non-zero. Add a code here, never ad hoc elsewhere.
 *
 * @example
 * throw new BridgewardError('POOL_EXHAUSTED', 'no free address in 10.8.64.0/24 (3 quarantined)');
 */

/** The stable error codes, with the HTTP status each maps to. */
export const ERROR_CODES = {
  /** A flag, config key or request field is malformed or out of range. */
  INVALID_ARGUMENT: 400,
  /** A config file could not be read or parsed. */
  INVALID_CONFIG: 400,
  /** The caller lacks a privilege the operation needs (CAP_NET_ADMIN, CAP_BPF, root). */
  MISSING_PRIVILEGE: 403,
  /** The kernel lacks a feature the agent needs. */
  MISSING_FEATURE: 500,
  /** The named sandbox has no active lease. */
  UNKNOWN_SANDBOX: 404,
  /** The address is not leased or quarantined (nothing to act on). */
  UNKNOWN_ADDRESS: 404,
  /** No allocatable address is left in the pool. */
  POOL_EXHAUSTED: 409,
  /** A concurrent writer won a compare-and-swap; the operation may be retried. */
  CONFLICT: 409,
  /** A host port is already mapped to another sandbox. */
  PORT_IN_USE: 409,
  /** The requested mapping does not exist. */
  UNKNOWN_PORT: 404,
  /** The lease store cannot be reached or failed. */
  STORE_UNAVAILABLE: 503,
  /** The agent has not finished its boot reconcile yet; retry shortly. */
  NOT_READY: 503,
  /** The sandbox bridge does not exist right now (the runtime is (re)creating it); retry shortly. */
  BRIDGE_ABSENT: 503,
  /** A kernel call (netlink, nftables, bpf, AF_PACKET) failed. */
  KERNEL_ERROR: 500,
  /** The agent's API socket could not be reached. */
  AGENT_UNREACHABLE: 503,
  /** An identity secret did not match. */
  INVALID_SECRET: 403,
  /** The identity is not registered (yet). */
  UNKNOWN_IDENTITY: 404,
  /** Too many failed attempts from one source. */
  RATE_LIMITED: 429,
  /** The caller's MAC or bridge port is not the one its lease is bound to. */
  BINDING_MISMATCH: 403,
  /** A CNI request names a spec version (or a command of a version) the plugin does not support. */
  INCOMPATIBLE_VERSION: 400,
  /** A network config field the plugin does not support (the message names key and value). */
  UNSUPPORTED_FIELD: 400,
  /** A CNI_* environment variable is missing or malformed (the message names it). */
  INVALID_ENVIRONMENT: 400,
  /** Reading the request (e.g. a CNI plugin's stdin) failed. */
  IO_FAILURE: 500,
  /** A sandbox's lease is not the one its runtime recorded (CNI CHECK). */
  LEASE_MISMATCH: 409,
  /** An unexpected internal failure. */
  INTERNAL: 500,
} as const;

/** One of the stable error codes. */
export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * The one error class bridgeward throws deliberately.
 *
 * @example
 * if (!lease) throw new BridgewardError('UNKNOWN_SANDBOX', `sandbox ${id} has no active lease`);
 */
export class BridgewardError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  /** Optional structured details (safe to log and return). */
  readonly details: Record<string, unknown> | undefined;

  /** Creates an error with a stable code, a one-line message and optional details. */
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'BridgewardError';
    this.code = code;
    this.details = details;
  }

  /** The HTTP status this error maps to. */
  get httpStatus(): number {
    return ERROR_CODES[this.code];
  }
}

/** True when `e` is a BridgewardError, optionally with the given code. */
export function isBridgewardError(e: unknown, code?: ErrorCode): e is BridgewardError {
  return e instanceof BridgewardError && (code === undefined || e.code === code);
}

/** Shorthand for `new BridgewardError('INVALID_ARGUMENT', message)`. */
export function invalid(message: string): BridgewardError {
  return new BridgewardError('INVALID_ARGUMENT', message);
}
