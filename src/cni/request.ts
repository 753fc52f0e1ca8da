/**
 * Reads one CNI plugin invocation (the `CNI_*` environment and the network config on stdin) into
 * a typed request, or throws a BridgewardError whose code says which spec error it is. Pure:
 * nothing is asked of the agent before the whole request has been checked.
 *
 * @example
 * const req = parseCniRequest(
 *   { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0', CNI_NETNS: '/run/netns/c1' },
 *   '{"cniVersion":"1.0.0","name":"rt0","type":"bridge","ipam":{"type":"bridgeward"}}',
 * );
 * // { command: 'ADD', cniVersion: '1.0.0', ipam: { socket: null, timeoutMs: 5000 }, attachment: {...}, prevResult: null }
 */
import { BridgewardError, invalid } from '../errors.js';
import { parseMac } from '../net/ipv4.js';
import { attachmentProblem, type Attachment } from './attachment.js';
import {
  COMMANDS,
  NEWEST_VERSION,
  assertCommandAllowed,
  parseSpecVersion,
  type Command,
  type SpecVersion,
} from './spec-version.js';

/** The plugin's own settings, from the config's `ipam` object. */
export interface IpamConfig {
  /** The agent's API socket (`ipam.socket`), or null for the default. */
  readonly socket: string | null;
  /** How long one request to the agent may take (`ipam.timeoutMs`, default 5000). */
  readonly timeoutMs: number;
}

/** What the plugin uses of a `prevResult`. */
export interface PrevResult {
  /** Every address of its `ips`, in CIDR form as given. */
  readonly addresses: readonly string[];
  /** The MAC of the container's `CNI_IFNAME` interface, when listed. */
  readonly mac: string | null;
}

/** A request about one attachment. */
export interface AttachmentRequest {
  /** ADD, DEL or CHECK. */
  readonly command: 'ADD' | 'DEL' | 'CHECK';
  /** The config's spec version. */
  readonly cniVersion: SpecVersion;
  /** The plugin's settings. */
  readonly ipam: IpamConfig;
  /** Container id and interface name. */
  readonly attachment: Attachment;
  /** The previous result, when the runtime passed one (always for CHECK). */
  readonly prevResult: PrevResult | null;
}

/** A checked CNI request. */
export type CniRequest =
  | { readonly command: 'VERSION'; readonly cniVersion: string }
  | AttachmentRequest
  | {
      readonly command: 'GC';
      readonly cniVersion: SpecVersion;
      readonly ipam: IpamConfig;
      /** The runtime's valid attachments. */
      readonly valid: readonly Attachment[];
    }
  | { readonly command: 'STATUS'; readonly cniVersion: SpecVersion; readonly ipam: IpamConfig };

/** The environment as the plugin sees it. */
export type CniEnv = Readonly<Record<string, string | undefined>>;

/** Default of `ipam.timeoutMs`: long enough for an on-path probe and a queue of allocations. */
export const DEFAULT_TIMEOUT_MS = 5000;

/** The keys the `ipam` object may have. */
const IPAM_KEYS = new Set(['type', 'socket', 'timeoutMs']);

/** The variables each attachment command needs (DEL may come without a namespace). */
const REQUIRED_ENV: Record<AttachmentRequest['command'], readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_NETNS'],
  CHECK: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_NETNS'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
};

/**
 * Checks one invocation.
 *
 * @throws BridgewardError INVALID_ENVIRONMENT (CNI_* variables), INVALID_CONFIG (stdin is not a
 *   JSON object, or a part of it has the wrong type), INCOMPATIBLE_VERSION, UNSUPPORTED_FIELD
 *   (an `ipam` key the plugin does not take), INVALID_ARGUMENT (a value out of range).
 */
export function parseCniRequest(env: CniEnv, stdin: string): CniRequest {
  const command = parseCommand(env.CNI_COMMAND);
  if (command === 'VERSION') {
    const cniVersion = stdin.trim() === '' ? NEWEST_VERSION : decode(stdin).cniVersion;
    return { command, cniVersion: typeof cniVersion === 'string' ? cniVersion : NEWEST_VERSION };
  }
  const config = decode(stdin);
  const cniVersion = parseSpecVersion(config.cniVersion);
  assertCommandAllowed(command, cniVersion);
  if (typeof config.name !== 'string' || config.name === '') {
    throw invalid('the network config has no "name"');
  }
  const ipam = parseIpamConfig(config.ipam);
  if (command === 'STATUS') return { command, cniVersion, ipam };
  if (command === 'GC') return { command, cniVersion, ipam, valid: validAttachments(config) };
  const missing = REQUIRED_ENV[command].filter((k) => !env[k]);
  if (missing.length > 0) {
    throw new BridgewardError(
      'INVALID_ENVIRONMENT',
      `${missing.join(', ')} missing for ${command}`,
    );
  }
  const attachment = { containerId: env.CNI_CONTAINERID ?? '', ifname: env.CNI_IFNAME ?? '' };
  const problem = attachmentProblem(attachment);
  if (problem) throw new BridgewardError('INVALID_ENVIRONMENT', problem);
  const prevResult =
    config.prevResult === undefined ? null : parsePrevResult(config.prevResult, attachment.ifname);
  if (command === 'CHECK' && prevResult === null) {
    throw invalid('CHECK needs the "prevResult" of the ADD');
  }
  return { command, cniVersion, ipam, attachment, prevResult };
}

/**
 * The `cniVersion` an error object should carry: the request's when it names one, else the
 * newest supported.
 *
 * @example
 * errorVersion('{"cniVersion":"0.4.0"'); // '1.1.0' (not JSON)
 */
export function errorVersion(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown } | null)?.cniVersion;
    return typeof v === 'string' ? v : NEWEST_VERSION;
  } catch {
    return NEWEST_VERSION;
  }
}

function parseCommand(value: string | undefined): Command {
  if (value === undefined || value === '') {
    throw new BridgewardError('INVALID_ENVIRONMENT', 'CNI_COMMAND missing');
  }
  if (!(COMMANDS as readonly string[]).includes(value)) {
    throw new BridgewardError(
      'INVALID_ENVIRONMENT',
      `CNI_COMMAND ${JSON.stringify(value)} is not one of ${COMMANDS.join(', ')}`,
    );
  }
  return value as Command;
}

/** Parses stdin as a JSON object. */
function decode(stdin: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdin);
  } catch (e) {
    throw new BridgewardError(
      'INVALID_CONFIG',
      `the network config on stdin is not JSON: ${(e as Error).message}`,
    );
  }
  if (!isObject(parsed)) {
    throw new BridgewardError('INVALID_CONFIG', 'the network config on stdin is not a JSON object');
  }
  return parsed;
}

function parseIpamConfig(value: unknown): IpamConfig {
  if (!isObject(value)) throw invalid('the network config has no "ipam" object');
  for (const [key, v] of Object.entries(value)) {
    if (!IPAM_KEYS.has(key)) {
      throw new BridgewardError(
        'UNSUPPORTED_FIELD',
        `unsupported field ipam.${key}=${JSON.stringify(v)}: the agent decides the subnet, ` +
          'gateway and routes (bridgeward run --subnet); ipam takes only "type", "socket" and "timeoutMs"',
      );
    }
  }
  const { socket, timeoutMs } = value;
  if (socket !== undefined && (typeof socket !== 'string' || !socket.startsWith('/'))) {
    throw invalid(`ipam.socket ${JSON.stringify(socket)}: expected an absolute path`);
  }
  if (
    timeoutMs !== undefined &&
    !(
      Number.isInteger(timeoutMs) &&
      (timeoutMs as number) >= 100 &&
      (timeoutMs as number) <= 60_000
    )
  ) {
    throw invalid(
      `ipam.timeoutMs ${JSON.stringify(timeoutMs)}: expected a whole number 100..60000`,
    );
  }
  return {
    socket: socket ?? null,
    timeoutMs: (timeoutMs as number | undefined) ?? DEFAULT_TIMEOUT_MS,
  };
}

/** The GC list (`cni.dev/valid-attachments`, or the `cni.dev/attachments` libcni also sends). */
function validAttachments(config: Record<string, unknown>): Attachment[] {
  const list = config['cni.dev/valid-attachments'] ?? config['cni.dev/attachments'];
  if (!Array.isArray(list)) {
    throw invalid('GC needs "cni.dev/valid-attachments": a list of {containerID, ifname}');
  }
  return list.map((item: unknown, i) => {
    if (
      !isObject(item) ||
      typeof item.containerID !== 'string' ||
      typeof item.ifname !== 'string'
    ) {
      throw invalid(
        `cni.dev/valid-attachments[${i}]: expected {"containerID": "...", "ifname": "..."}`,
      );
    }
    return { containerId: item.containerID, ifname: item.ifname };
  });
}

function parsePrevResult(value: unknown, ifname: string): PrevResult {
  if (!isObject(value)) throw new BridgewardError('INVALID_CONFIG', 'prevResult is not an object');
  const ips = listOf(value.ips, 'prevResult.ips');
  const interfaces = listOf(value.interfaces, 'prevResult.interfaces');
  const addresses = ips.map((ip, i) => {
    if (!isObject(ip) || typeof ip.address !== 'string') {
      throw new BridgewardError('INVALID_CONFIG', `prevResult.ips[${i}] has no "address"`);
    }
    return ip.address;
  });
  const own = interfaces.find(
    (f) => isObject(f) && f.name === ifname && typeof f.sandbox === 'string' && f.sandbox !== '',
  );
  const mac = isObject(own) && typeof own.mac === 'string' ? parseMac(own.mac) : null;
  return { addresses, mac };
}

/** An optional list of a prevResult (absent is empty). */
function listOf(value: unknown, what: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new BridgewardError('INVALID_CONFIG', `${what} is not a list`);
  return value;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
