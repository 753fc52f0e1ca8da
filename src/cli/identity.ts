/**
 * Workload-identity verbs: `identity register`, `identity show`, `identity rotate`,
 * `identity revoke` and `identity rotate-key`. Register and rotate print the secret once and can
 * write it to a file (0600, atomic rename) that a running sandbox re-reads.
 *
 * @example
 * bridgeward identity register --sandbox app-1 --app web --audience vault --secret-file /run/app-1/secret -o json
 */
import type { IdentityView, RegistrationResult } from '../identity/registration.js';
import type { KeyRotation } from '../identity/node-keys.js';
import { writeFileAtomic } from '../identity/atomic-write.js';
import { parseSandboxId } from '../ipam/sandbox-id.js';
import { CLIENT_OPTIONS, parseVerbArgs, required, resolveOutput } from './args.js';
import { callAgent } from './call.js';
import { printResult } from './output.js';
import type { Verb } from './verb.js';

const SANDBOX = { sandbox: { type: 'string' } } as const;
const SECRET_FILE = { 'secret-file': { type: 'string' } } as const;

function sandboxFlag(value: string | undefined): string {
  return parseSandboxId(required('sandbox', value));
}

/** Writes the secret to `--secret-file` when given and returns the result to print. */
async function withSecretFile(
  result: RegistrationResult,
  path: string | undefined,
): Promise<RegistrationResult & { secretFile?: string }> {
  if (path === undefined) return result;
  await writeFileAtomic(required('secret-file', path), result.secret, 0o600);
  return { ...result, secretFile: path };
}

/** The identity verbs. */
export const identityVerbs: Verb[] = [
  {
    words: ['identity', 'register'],
    summary: "register a leased sandbox's workload identity; prints its secret once",
    usage:
      'bridgeward identity register --sandbox ID [--app NAME] [--audience AUD]... [--secret-file PATH] [--socket PATH] [-o table|json]',
    async run(argv) {
      const { values } = parseVerbArgs(argv, {
        ...CLIENT_OPTIONS,
        ...SANDBOX,
        ...SECRET_FILE,
        app: { type: 'string' },
        audience: { type: 'string', multiple: true },
      });
      const output = resolveOutput(values.output);
      const body = {
        sandbox: sandboxFlag(values.sandbox),
        ...(values.app !== undefined ? { app: values.app } : {}),
        ...(values.audience !== undefined ? { audiences: values.audience } : {}),
      };
      const result = await callAgent<RegistrationResult>(values, 'POST', '/v1/identities', body);
      printResult(output, await withSecretFile(result, values['secret-file']));
      return 0;
    },
  },
  {
    words: ['identity', 'show'],
    summary: "show a sandbox's identity (never its secret)",
    usage: 'bridgeward identity show --sandbox ID [--socket PATH] [-o table|json]',
    async run(argv) {
      const { values } = parseVerbArgs(argv, { ...CLIENT_OPTIONS, ...SANDBOX });
      const output = resolveOutput(values.output);
      const id = sandboxFlag(values.sandbox);
      const view = await callAgent<IdentityView>(
        values,
        'GET',
        `/v1/identities/${encodeURIComponent(id)}`,
      );
      printResult(output, view);
      return 0;
    },
  },
  {
    words: ['identity', 'rotate'],
    summary: "replace a sandbox's secret (the old one stops working at once); prints it once",
    usage:
      'bridgeward identity rotate --sandbox ID [--secret-file PATH] [--socket PATH] [-o table|json]',
    async run(argv) {
      const { values } = parseVerbArgs(argv, { ...CLIENT_OPTIONS, ...SANDBOX, ...SECRET_FILE });
      const output = resolveOutput(values.output);
      const id = sandboxFlag(values.sandbox);
      const result = await callAgent<RegistrationResult>(
        values,
        'POST',
        `/v1/identities/${encodeURIComponent(id)}/rotate`,
      );
      printResult(output, await withSecretFile(result, values['secret-file']));
      return 0;
    },
  },
  {
    words: ['identity', 'revoke'],
    summary: "revoke a sandbox's identity (its secret stops working at once)",
    usage: 'bridgeward identity revoke --sandbox ID [--socket PATH] [-o table|json]',
    async run(argv) {
      const { values } = parseVerbArgs(argv, { ...CLIENT_OPTIONS, ...SANDBOX });
      const output = resolveOutput(values.output);
      const id = sandboxFlag(values.sandbox);
      const view = await callAgent<IdentityView>(
        values,
        'DELETE',
        `/v1/identities/${encodeURIComponent(id)}`,
      );
      printResult(output, view);
      return 0;
    },
  },
  {
    words: ['identity', 'rotate-key'],
    summary:
      'switch to a new token signing key; the old one stays in the JWKS until its tokens expire',
    usage: 'bridgeward identity rotate-key [--socket PATH] [-o table|json]',
    async run(argv) {
      const { values } = parseVerbArgs(argv, CLIENT_OPTIONS);
      const output = resolveOutput(values.output);
      const rotation = await callAgent<KeyRotation>(values, 'POST', '/v1/identity-keys/rotate');
      printResult(output, rotation);
      return 0;
    },
  },
];
