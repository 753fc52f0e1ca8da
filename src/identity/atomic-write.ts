/**
 * Writes a file atomically: the content goes to a temporary file in the same directory (created
 * with the final mode, so it is never readable by others), is flushed to disk, then renamed over
 * the target. Readers see the old content or the new, never a mix.
 *
 * @example
 * await writeFileAtomic('/run/sandbox/app-1/secret', secret + '\n', 0o600);
 */
import { open, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

/** Replaces `path` with `data` atomically; the file gets `mode` (default 0600). */
export async function writeFileAtomic(path: string, data: string, mode = 0o600): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.chmod(mode); // the umask may have narrowed or the caller widened it
    await fh.writeFile(data, 'utf8');
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
}
