/**
 * The CLI entry point: finds the verb named by the leading words of argv and runs it. Errors are
 * printed as one line (`bridgeward: message`) with a non-zero exit code.
 *
 * @example
 * await main(['status', '-o', 'json']);
 */
import { BridgewardError } from '../errors.js';
import { VERSION } from '../version.js';
import { daemonVerbs } from './daemon.js';
import { statusVerbs } from './status.js';
import { doctorVerbs } from './doctor.js';
import { demoVerbs } from './demo.js';
import { leaseVerbs } from './lease.js';
import { portVerbs } from './port.js';
import { identityVerbs } from './identity.js';
import { conflictVerbs } from './conflicts.js';
import type { Verb } from './verb.js';

/** Every verb, in the order `--help` lists them. */
export const VERBS: readonly Verb[] = [
  ...daemonVerbs,
  ...statusVerbs,
  ...doctorVerbs,
  ...demoVerbs,
  ...leaseVerbs,
  ...conflictVerbs,
  ...identityVerbs,
  ...portVerbs,
];

/** Exit code for bad usage (flags, config). */
export const EXIT_USAGE = 2;

/** The text of `bridgeward --help`. */
export function helpText(): string {
  const width = Math.max(...VERBS.map((v) => v.words.join(' ').length));
  return [
    `bridgeward ${VERSION}: node network agent for a runner's sandbox bridge`,
    '',
    'Usage: bridgeward <verb> [flags]     (bridgeward <verb> --help for its flags)',
    '',
    'Verbs:',
    ...VERBS.map((v) => `  ${v.words.join(' ').padEnd(width)}  ${v.summary}`),
    '',
    'Client verbs talk to the agent on --socket (or BRIDGEWARD_SOCKET); -o json prints JSON.',
    '',
  ].join('\n');
}

/** Finds the verb whose words prefix argv, longest match first. */
export function findVerb(argv: readonly string[]): { verb: Verb; rest: string[] } | null {
  const sorted = [...VERBS].sort((a, b) => b.words.length - a.words.length);
  for (const verb of sorted) {
    if (verb.words.every((w, i) => argv[i] === w))
      return { verb, rest: argv.slice(verb.words.length) };
  }
  return null;
}

/** Runs the CLI and sets `process.exitCode`. */
export async function main(argv: string[]): Promise<void> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(helpText());
    return;
  }
  if (argv[0] === '--version') {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  const found = findVerb(argv);
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
