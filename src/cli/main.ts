/**
 * The CLI entry point: finds the verb named by the leading words of argv and runs it. Errors are
 * printed as one line (`bridgeward: message`) with a non-zero exit code.
 *
 * Verb groups are imported only when a verb of theirs runs (the first word picks the group), so
 * a client verb loads its group and the API client, never the agent: `lease list` starts in
 * about the time of a bare `node`. `--help` imports every group (each is light).
 *
 * @example
 * await main(['status', '-o', 'json']);
 */
import { BridgewardError } from '../errors.js';
import { VERSION } from '../version.js';
import type { Verb } from './verb.js';

/** A verb group's module, imported on first use. */
type GroupLoader = () => Promise<readonly Verb[]>;

const daemon: GroupLoader = async () => (await import('./daemon.js')).daemonVerbs;
const status: GroupLoader = async () => (await import('./status.js')).statusVerbs;
const doctor: GroupLoader = async () => (await import('./doctor.js')).doctorVerbs;
const demo: GroupLoader = async () => (await import('./demo.js')).demoVerbs;
const lease: GroupLoader = async () => (await import('./lease.js')).leaseVerbs;
const conflicts: GroupLoader = async () => (await import('./conflicts.js')).conflictVerbs;
const identity: GroupLoader = async () => (await import('./identity.js')).identityVerbs;
const port: GroupLoader = async () => (await import('./port.js')).portVerbs;

/** The group of each first word, in the order `--help` lists the groups. */
const GROUPS: ReadonlyMap<string, GroupLoader> = new Map([
  ['run', daemon],
  ['status', status],
  ['doctor', doctor],
  ['demo', demo],
  ['lease', lease],
  ['quarantine', lease],
  ['sync', lease],
  ['conflicts', conflicts],
  ['watch', conflicts],
  ['probe', conflicts],
  ['identity', identity],
  ['port', port],
]);

/** Every verb, in the order `--help` lists them (imports every group). */
export async function allVerbs(): Promise<readonly Verb[]> {
  const groups = await Promise.all([...new Set(GROUPS.values())].map((load) => load()));
  return groups.flat();
}

/** Exit code for bad usage (flags, config). */
export const EXIT_USAGE = 2;

/** The text of `bridgeward --help`. */
export function helpText(verbs: readonly Verb[]): string {
  const width = Math.max(...verbs.map((v) => v.words.join(' ').length));
  return [
    `bridgeward ${VERSION}: node network agent for a runner's sandbox bridge`,
    '',
    'Usage: bridgeward <verb> [flags]     (bridgeward <verb> --help for its flags)',
    '',
    'Verbs:',
    ...verbs.map((v) => `  ${v.words.join(' ').padEnd(width)}  ${v.summary}`),
    '',
    'Client verbs talk to the agent on --socket (or BRIDGEWARD_SOCKET); -o json prints JSON.',
    '',
  ].join('\n');
}

/** Finds the verb whose words prefix argv (importing only its group), longest match first. */
export async function findVerb(
  argv: readonly string[],
): Promise<{ verb: Verb; rest: string[] } | null> {
  const load = argv[0] === undefined ? undefined : GROUPS.get(argv[0]);
  if (!load) return null;
  const sorted = [...(await load())].sort((a, b) => b.words.length - a.words.length);
  for (const verb of sorted) {
    if (verb.words.every((w, i) => argv[i] === w))
      return { verb, rest: argv.slice(verb.words.length) };
  }
  return null;
}

/** Runs the CLI and sets `process.exitCode`. */
export async function main(argv: string[]): Promise<void> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(helpText(await allVerbs()));
    return;
  }
  if (argv[0] === '--version') {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  const found = await findVerb(argv);
  if (!found) {
    process.stderr.write(
      `bridgeward: unknown verb ${JSON.stringify(argv.filter((a) => !a.startsWith('-')).join(' '))}; see bridgeward --help\n`,
    );
    process.exitCode = EXIT_USAGE;
    return;
  }
  if (found.rest.includes('--help') || found.rest.includes('-h')) {
    process.stdout.write(`${found.verb.summary}\n\nUsage: ${found.verb.usage}\n`);
    return;
  }
  try {
    process.exitCode = await found.verb.run(found.rest);
  } catch (e) {
    if (e instanceof BridgewardError) {
      process.stderr.write(`bridgeward: ${e.message}\n`);
      process.exitCode =
        e.code === 'INVALID_ARGUMENT' || e.code === 'INVALID_CONFIG' ? EXIT_USAGE : 1;
    } else {
      process.stderr.write(`bridgeward: internal error: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    }
  }
}
