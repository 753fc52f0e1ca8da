/**
 * The entry point of `bin/bridgeward-cni` (installed in the CNI bin dir as `bridgeward`): reads
 * the network config from stdin, runs the plugin with the process environment and prints the
 * result or error object on stdout. It imports only the plugin, the API client and their pure
 * helpers, so it starts in about the time of a bare `node`.
 *
 * @example
 * CNI_COMMAND=VERSION bridgeward-cni </dev/null
 * // {"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}
 */
import { BridgewardError } from '../errors.js';
import { failure, runPlugin, type PluginOutput } from './plugin.js';
import { NEWEST_VERSION } from './spec-version.js';

/** Runs the plugin for this process and sets its exit code. */
export async function main(): Promise<void> {
  let out: PluginOutput;
  try {
    out = await runPlugin(process.env, await readStdin());
  } catch (e) {
    out = failure(
      NEWEST_VERSION,
      process.env.CNI_COMMAND,
      new BridgewardError('IO_FAILURE', `reading the network config from stdin: ${String(e)}`),
    );
  }
  process.stdout.write(out.stdout);
  process.exitCode = out.exitCode;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
