/**
 * Makes sure a pin directory lives on a bpffs: when no bpffs covers it, mounts one on its parent
 * (`ip netns exec` remounts /sys, so /sys/fs/bpf inside it is not the host's bpffs), then
 * creates the directory.
 *
 * @example
 * await ensureBpffs('/sys/fs/bpf/bridgeward'); // mounts bpffs on /sys/fs/bpf if needed
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BridgewardError } from '../errors.js';
import { run } from '../exec.js';
import { coveringMount } from './mounts.js';

/**
 * Ensures `pinDir` is a directory on a bpffs. Returns true when it mounted one.
 *
 * @throws BridgewardError MISSING_FEATURE when no bpffs covers it and mounting one fails.
 */
export async function ensureBpffs(pinDir: string): Promise<boolean> {
  let mounted = false;
  const mount = coveringMount(await readFile('/proc/self/mounts', 'utf8'), pinDir);
  if (mount?.fsType !== 'bpf') {
    const parent = dirname(pinDir);
    await mkdir(parent, { recursive: true });
    const r = await run(['mount', '-t', 'bpf', 'bpf', parent], { check: false });
    if (r.code !== 0) {
      throw new BridgewardError(
        'MISSING_FEATURE',
        `no bpffs at ${parent} and mounting one failed: ${r.stderr.trim()}`,
      );
    }
    mounted = true;
  }
  await mkdir(pinDir, { recursive: true, mode: 0o700 });
  return mounted;
}
