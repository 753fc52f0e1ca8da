/**
 * Loads the N-API addon (`native/`) and describes its functions with TypeScript types. The addon
 * does syscalls only; everything it returns is raw data that TypeScript parses.
 *
 * @example
 * const n = loadNative();
 * if (n.addon) console.log(n.addon.version().libbpf);
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/** The functions the addon exports. */
export interface NativeAddon {
  /** Addon and libbpf versions. */
  version(): { addon: string; libbpf: string };
  /**
   * Runs one libnftables command buffer (one kernel transaction, all-or-nothing) in this
   * process's network namespace, with one context reused per process. `json` selects JSON
   * output (`list` commands). Never throws for nft failures: `rc` is non-zero and `error` holds
   * libnftables' message.
   *
   * @example
   * const r = addon.nftRun('list tables', false); // { rc: 0, output: 'table inet bridgeward\n', error: '' }
   */
  nftRun(cmd: string, json: boolean): NftResult;
}

/** What `nftRun` returns. */
export interface NftResult {
  /** 0 on success, non-zero when libnftables rejected or the kernel refused the buffer. */
  readonly rc: number;
  /** Buffered standard output (e.g. a listing; JSON text when asked for JSON). */
  readonly output: string;
  /** Buffered error output (parser or kernel errors), empty on success. */
  readonly error: string;
}

/** The addon, or why it could not be loaded. */
export type NativeLoad = { addon: NativeAddon; error: null } | { addon: null; error: string };

/** Repository root (two levels above dist/src/). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

let cached: NativeLoad | undefined;

/** Loads the addon once per process; never throws. */
export function loadNative(): NativeLoad {
  if (cached) return cached;
  const path = join(REPO_ROOT, 'native', 'build', 'Release', 'bridgeward_native.node');
  try {
    const require = createRequire(import.meta.url);
    cached = { addon: require(path) as NativeAddon, error: null };
  } catch (e) {
    cached = { addon: null, error: `cannot load ${path}: ${(e as Error).message}` };
  }
  return cached;
}
