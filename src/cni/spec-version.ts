/**
 * CNI spec versions and commands: which versions the plugin speaks (0.3.0 to 1.1.0) and which
 * commands each allows (CHECK from 0.4.0, GC and STATUS from 1.1.0). Pure.
 *
 * @example
 * const v = parseSpecVersion('1.0.0'); // '1.0.0'
 * assertCommandAllowed('GC', v); // throws INCOMPATIBLE_VERSION: GC needs 1.1.0
 */
import { BridgewardError } from '../errors.js';

/** Every spec version the plugin supports, oldest first (its VERSION answer). */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;

/** A supported spec version. */
export type SpecVersion = (typeof SUPPORTED_VERSIONS)[number];

/** The newest supported version: used where the request names none we could read. */
export const NEWEST_VERSION: SpecVersion = '1.1.0';

/** The commands of the CNI protocol the plugin implements. */
export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'] as const;

/** One CNI command. */
export type Command = (typeof COMMANDS)[number];

/** The first version that has each command. */
const SINCE: Record<Command, SpecVersion> = {
  ADD: '0.3.0',
  DEL: '0.3.0',
  VERSION: '0.3.0',
  CHECK: '0.4.0',
  GC: '1.1.0',
  STATUS: '1.1.0',
};

/**
 * Checks a request's `cniVersion`. A missing one is 0.1.0, as libcni reads it.
 *
 * @example
 * parseSpecVersion('0.3.1'); // '0.3.1'
 * parseSpecVersion('0.2.0'); // throws INCOMPATIBLE_VERSION
 * @throws BridgewardError INCOMPATIBLE_VERSION for anything but a supported version.
 */
export function parseSpecVersion(value: unknown): SpecVersion {
  const text = value === undefined ? '0.1.0' : value;
  if (typeof text === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(text)) {
    return text as SpecVersion;
  }
  throw new BridgewardError(
    'INCOMPATIBLE_VERSION',
    `cniVersion ${JSON.stringify(text)} is not supported; supported: ${SUPPORTED_VERSIONS.join(', ')}`,
  );
}

/**
 * Checks that `version` has `command` (CHECK needs 0.4.0, GC and STATUS 1.1.0).
 *
 * @example
 * assertCommandAllowed('CHECK', '0.3.1'); // throws: CHECK needs cniVersion 0.4.0 or later
 * @throws BridgewardError INCOMPATIBLE_VERSION.
 */
export function assertCommandAllowed(command: Command, version: SpecVersion): void {
  if (SUPPORTED_VERSIONS.indexOf(version) >= SUPPORTED_VERSIONS.indexOf(SINCE[command])) return;
  throw new BridgewardError(
    'INCOMPATIBLE_VERSION',
    `${command} needs cniVersion ${SINCE[command]} or later; the config has ${version}`,
  );
}

/**
 * True for the versions whose results carry `"version": "4"` on each address (before 1.0.0).
 *
 * @example
 * addressesCarryVersion('0.4.0'); // true
 */
export function addressesCarryVersion(version: SpecVersion): boolean {
  return !version.startsWith('1.');
}
