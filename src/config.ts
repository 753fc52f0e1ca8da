/**
 * The daemon's configuration: defaults, an optional JSON config file and flags, merged and
 * validated up front into one immutable `Config`. Pure apart from reading the file.
 *
 * @example
 * const cfg = resolveConfig({ subnet: '10.8.64.0/24' });
 * cfg.gateway; // '10.8.64.1'
 */
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { BridgewardError, invalid } from './errors.js';
import {
  contains,
  formatCidr,
  formatIp,
  parseCidr,
  parseIp,
  broadcastOf,
  type Subnet,
} from './net/ipv4.js';

/** Where leases live: the embedded SQLite file in the state dir, or an etcd cluster. */
export type StoreSpec = { kind: 'sqlite' } | { kind: 'etcd'; endpoints: string[] };

/** The validated daemon configuration. */
export interface Config {
  /** Name of the sandbox bridge the agent owns. */
  readonly bridge: string;
  /** The sandbox subnet. */
  readonly subnet: Subnet;
  /** The subnet in CIDR text form. */
  readonly subnetText: string;
  /** The gateway address on the bridge (dotted quad). */
  readonly gateway: string;
  /** Directory for the SQLite store, keys and other durable state. */
  readonly stateDir: string;
  /** Lease store backend. */
  readonly store: StoreSpec;
  /** Path of the API's unix socket (mode 0600). */
  readonly socket: string;
  /** host:port for Prometheus `/metrics`, or null when disabled (`--metrics-listen off`). */
  readonly metricsListen: { host: string; port: number } | null;
  /** pino log level. */
  readonly logLevel: LogLevel;
  /** Seconds a released address cools down before it is preferred again. */
  readonly cooldownSeconds: number;
  /** Seconds between periodic reconcile sweeps. */
  readonly sweepSeconds: number;
  /** Seconds a conflict must stay gone before its finding clears (and its quarantine lifts). */
  readonly holdDownSeconds: number;
  /** Optional webhook URL that receives findings. */
  readonly webhook: string | null;
  /** bpffs directory where the agent pins its maps and programs. */
  readonly bpfPinDir: string;
  /** host:port of the identity token server (default `<gateway>:7123`), or null when off. */
  readonly identityListen: { host: string; port: number } | null;
  /** Directory of per-sandbox token files (`<dir>/<sandbox>/token`), or null when off. */
  readonly identityTokenDir: string | null;
  /** Whether `nft monitor` watches for other processes changing the node-port table. */
  readonly nftMonitor: boolean;
  /**
   * Where the bridge's sysctls are written (`<dir>/net/ipv4/conf/<bridge>/...`): /proc/sys, or in
   * a container, whose /proc/sys is read-only, a mount of the node's /proc/sys/net at `<dir>/net`.
   */
  readonly sysctlDir: string;
  /** The bridge guard: off, monitor (count and report spoof attempts) or enforce (also drop). */
  readonly guard: GuardMode;
  /** What the guard does with IPv6 from sandboxes: pass it, or treat it as a violation. */
  readonly guardIpv6: 'pass' | 'drop';
}

/** The bridge guard's modes. */
export const GUARD_MODES = ['off', 'monitor', 'enforce'] as const;
/** One of the bridge guard's modes. */
export type GuardMode = (typeof GUARD_MODES)[number];

/** The accepted log levels. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** One of the accepted log levels. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Raw, unvalidated settings as they come from flags or a config file (keys in camelCase). */
export interface RawConfig {
  bridge?: string;
  subnet?: string;
  gateway?: string;
  stateDir?: string;
  store?: string;
  socket?: string;
  metricsListen?: string;
  logLevel?: string;
  cooldownSeconds?: number | string;
  sweepSeconds?: number | string;
  holdDownSeconds?: number | string;
  webhook?: string;
  bpfPinDir?: string;
  identityListen?: string;
  identityTokenDir?: string;
  nftMonitor?: string;
  sysctlDir?: string;
  guard?: string;
  guardIpv6?: string;
}

/** The keys a config file may hold, which are also the `run` flags in kebab-case. */
export const CONFIG_KEYS: readonly (keyof RawConfig)[] = [
  'bridge',
  'subnet',
  'gateway',
  'stateDir',
  'store',
  'socket',
  'metricsListen',
  'logLevel',
  'cooldownSeconds',
  'sweepSeconds',
  'holdDownSeconds',
  'webhook',
  'bpfPinDir',
  'identityListen',
  'identityTokenDir',
  'nftMonitor',
  'sysctlDir',
  'guard',
  'guardIpv6',
];

/** Defaults applied when neither the file nor a flag sets a key. */
export const DEFAULTS = {
  bridge: 'rt0',
  stateDir: '/var/lib/bridgeward',
  store: 'sqlite',
  socket: '/run/bridgeward/api.sock',
  metricsListen: '127.0.0.1:9464',
  logLevel: 'info',
  cooldownSeconds: 1800,
  sweepSeconds: 10,
  holdDownSeconds: 60,
  bpfPinDir: '/sys/fs/bpf/bridgeward',
  nftMonitor: 'on',
  sysctlDir: '/proc/sys',
  guard: 'monitor',
  guardIpv6: 'pass',
} as const;

/** Default port of the identity token server, on the gateway address. */
export const IDENTITY_PORT = 7123;

/** Default socket path, also honoured by client verbs through `BRIDGEWARD_SOCKET`. */
export const DEFAULT_SOCKET = DEFAULTS.socket;

/**
 * Reads a JSON config file whose keys are those of `RawConfig`.
 *
 * @throws BridgewardError INVALID_CONFIG when the file is unreadable, not JSON, or has unknown keys.
 */
export function readConfigFile(path: string): RawConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new BridgewardError(
      'INVALID_CONFIG',
      `cannot read config file ${path}: ${(e as Error).message}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new BridgewardError(
      'INVALID_CONFIG',
      `config file ${path} is not valid JSON: ${(e as Error).message}`,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new BridgewardError('INVALID_CONFIG', `config file ${path} must hold a JSON object`);
  }
  for (const key of Object.keys(parsed)) {
    if (!(CONFIG_KEYS as readonly string[]).includes(key)) {
      throw new BridgewardError(
        'INVALID_CONFIG',
        `config file ${path}: unknown key ${JSON.stringify(key)} (known: ${CONFIG_KEYS.join(', ')})`,
      );
    }
  }
  return parsed as RawConfig;
}

/**
 * Validates and completes raw settings (flags override the file; both override defaults).
 *
 * @throws BridgewardError INVALID_ARGUMENT naming the offending key and value.
 */
export function resolveConfig(flags: RawConfig, file: RawConfig = {}): Config {
  const raw: RawConfig = { ...DEFAULTS, ...file, ...flags };
  const bridge = str(raw.bridge, 'bridge');
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(bridge)) {
    throw invalid(
      `--bridge ${JSON.stringify(bridge)}: an interface name is 1..15 characters of [A-Za-z0-9_.-]`,
    );
  }
  if (raw.subnet === undefined) throw invalid('--subnet is required (e.g. --subnet 10.8.64.0/24)');
  const subnet = withKey('subnet', () => parseCidr(str(raw.subnet, 'subnet')));
  const gatewayNum =
    raw.gateway === undefined
      ? subnet.network + 1
      : withKey('gateway', () => parseIp(str(raw.gateway, 'gateway')));
  if (
    !contains(subnet, gatewayNum) ||
    gatewayNum === subnet.network ||
    gatewayNum === broadcastOf(subnet)
  ) {
    throw invalid(
      `--gateway ${formatIp(gatewayNum)} is not a host address of ${formatCidr(subnet)}`,
    );
  }
  const stateDir = absPath(raw.stateDir, 'state-dir');
  const socket = absPath(raw.socket, 'socket');
  const logLevel = oneOf(raw.logLevel, 'log-level', LOG_LEVELS);
  const webhook =
    raw.webhook === undefined || raw.webhook === '' ? null : str(raw.webhook, 'webhook');
  if (webhook !== null && !/^https?:\/\/[^\s]+$/.test(webhook)) {
    throw invalid(`--webhook ${JSON.stringify(webhook)}: expected an http:// or https:// URL`);
  }
  return {
    bridge,
    subnet,
    subnetText: formatCidr(subnet),
    gateway: formatIp(gatewayNum),
    stateDir,
    store: parseStoreSpec(str(raw.store, 'store')),
    socket,
    metricsListen: parseListen(str(raw.metricsListen, 'metrics-listen')),
    logLevel,
    cooldownSeconds: seconds(raw.cooldownSeconds, 'cooldown-seconds', 0, 7 * 86400),
    sweepSeconds: seconds(raw.sweepSeconds, 'sweep-seconds', 1, 3600),
    holdDownSeconds: seconds(raw.holdDownSeconds, 'hold-down-seconds', 1, 86400),
    webhook,
    bpfPinDir: absPath(raw.bpfPinDir, 'bpf-pin-dir'),
    identityListen:
      raw.identityListen === undefined
        ? { host: formatIp(gatewayNum), port: IDENTITY_PORT }
        : withKey('identity-listen', () => parseListen(str(raw.identityListen, 'identity-listen'))),
    identityTokenDir:
      raw.identityTokenDir === undefined || raw.identityTokenDir === 'off'
        ? null
        : absPath(raw.identityTokenDir, 'identity-token-dir'),
    nftMonitor: onOff(raw.nftMonitor, 'nft-monitor'),
    sysctlDir: absPath(raw.sysctlDir, 'sysctl-dir'),
    guard: oneOf(raw.guard, 'guard', GUARD_MODES),
    guardIpv6: oneOf(raw.guardIpv6, 'guard-ipv6', ['pass', 'drop'] as const),
  };
}

/**
 * Parses `sqlite` or `etcd://host:port[,host:port]`.
 *
 * @example parseStoreSpec('etcd://127.0.0.1:2379') // { kind: 'etcd', endpoints: ['http://127.0.0.1:2379'] }
 */
export function parseStoreSpec(text: string): StoreSpec {
  if (text === 'sqlite') return { kind: 'sqlite' };
  const prefix = 'etcd://';
  if (!text.startsWith(prefix)) {
    throw invalid(
      `--store ${JSON.stringify(text)}: expected "sqlite" or "etcd://host:port[,host:port]"`,
    );
  }
  const endpoints = text
    .slice(prefix.length)
    .split(',')
    .map((hp) => {
      const l = withKey('store', () => parseListen(hp));
      if (l === null) throw invalid(`--store ${JSON.stringify(text)}: empty endpoint`);
      return `http://${l.host}:${l.port}`;
    });
  return { kind: 'etcd', endpoints };
}

/** Parses `host:port` (or `off` for disabled). */
export function parseListen(text: string): { host: string; port: number } | null {
  if (text === 'off' || text === '') return null;
  const colon = text.lastIndexOf(':');
  const host = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  const port = Number(portText);
  if (colon <= 0 || !/^\d{1,5}$/.test(portText) || port < 1 || port > 65535) {
    throw invalid(`${JSON.stringify(text)}: expected host:port with port 1..65535 (or "off")`);
  }
  return { host, port };
}

function str(v: unknown, key: string): string {
  if (typeof v !== 'string') throw invalid(`--${key}: expected a string, got ${JSON.stringify(v)}`);
  return v;
}

function absPath(v: unknown, key: string): string {
  const p = str(v, key);
  if (!isAbsolute(p)) throw invalid(`--${key} ${JSON.stringify(p)}: must be an absolute path`);
  return p;
}

function onOff(v: unknown, key: string): boolean {
  const s = str(v, key);
  if (s !== 'on' && s !== 'off') throw invalid(`--${key} ${JSON.stringify(s)}: expected on or off`);
  return s === 'on';
}

function oneOf<T extends string>(v: unknown, key: string, allowed: readonly T[]): T {
  const s = str(v, key);
  if (!(allowed as readonly string[]).includes(s)) {
    throw invalid(`--${key} ${JSON.stringify(s)}: expected one of ${allowed.join(', ')}`);
  }
  return s as T;
}

function seconds(v: unknown, key: string, min: number, max: number): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw invalid(`--${key} ${JSON.stringify(v)}: expected whole seconds ${min}..${max}`);
  }
  return n;
}

function withKey<T>(key: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof BridgewardError) throw invalid(`--${key}: ${e.message}`);
    throw e;
  }
}
