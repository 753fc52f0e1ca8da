/**
 * Flag parsing shared by every verb (node's `util.parseArgs`), with the client flags `--socket`
 * and `-o/--output` and precise errors for unknown or malformed flags.
 *
 * @example
 * const { values } = parseVerbArgs(argv, { sandbox: { type: 'string' } });
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DEFAULT_SOCKET } from '../config.js';
import { invalid } from '../errors.js';

/** Options every client verb accepts. */
export const CLIENT_OPTIONS = {
  socket: { type: 'string' },
  output: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/** Output format of client verbs. */
export type OutputFormat = 'table' | 'json';

/** Parses argv against `options`; unknown flags and stray positionals are errors. */
export function parseVerbArgs<O extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: O,
) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (e) {
    throw invalid((e as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
}

/** Resolves the API socket: `--socket`, else `BRIDGEWARD_SOCKET`, else the default. */
export function resolveSocket(flag: string | undefined): string {
  return flag ?? process.env.BRIDGEWARD_SOCKET ?? DEFAULT_SOCKET;
}

/** Validates `-o`: `table` (default) or `json`. */
export function resolveOutput(flag: string | undefined): OutputFormat {
  if (flag === undefined || flag === 'table') return 'table';
  if (flag === 'json') return 'json';
  throw invalid(`-o ${JSON.stringify(flag)}: expected "table" or "json"`);
}

/** Parses a whole number flag within a range. */
export function intFlag(name: string, text: string | undefined, min: number, max: number): number {
  if (text === undefined) throw invalid(`--${name} is required`);
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw invalid(`--${name} ${JSON.stringify(text)}: expected a whole number ${min}..${max}`);
  }
  return Number(text);
}

/** Returns a required string flag or throws naming it. */
export function required(name: string, value: string | undefined): string {
  if (value === undefined || value === '') throw invalid(`--${name} is required`);
  return value;
}
