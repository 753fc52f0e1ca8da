/**
 * Which per-sandbox token files to write or remove, as a pure function of the registered
 * identities, the files on disk and what this process last wrote. A file is (re)written when it
 * is missing, belongs to an earlier lease, or has reached 80% of its lifetime; a file whose
 * sandbox has no identity any more (revoked, released) is removed.
 *
 * @example
 * const plan = planTokenFiles({ identities, onDisk: ['app-1'], written, nowSeconds });
 * for (const i of plan.write) await writeToken(i);
 * for (const s of plan.remove) await removeToken(s);
 */
import type { Identity } from '../store/types.js';

/** Fraction of a token's lifetime after which its file is refreshed. */
export const REFRESH_AT = 0.8;

/** What this process wrote for a sandbox. */
export interface WrittenToken {
  /** Lease generation the token was issued for. */
  readonly generation: number;
  /** `iat` of the token (seconds). */
  readonly iat: number;
  /** `exp` of the token (seconds). */
  readonly exp: number;
}

/** The work to do. */
export interface TokenFilePlan {
  /** Identities whose token file must be (re)written. */
  readonly write: readonly Identity[];
  /** Sandboxes whose token files must go. */
  readonly remove: readonly string[];
}

/** True once `nowSeconds` has reached 80% of the token's lifetime. */
export function refreshDue(w: WrittenToken, nowSeconds: number): boolean {
  return nowSeconds >= w.iat + REFRESH_AT * (w.exp - w.iat);
}

/** Plans one pass over the token directory. */
export function planTokenFiles(input: {
  identities: readonly Identity[];
  onDisk: readonly string[];
  written: ReadonlyMap<string, WrittenToken>;
  nowSeconds: number;
}): TokenFilePlan {
  const registered = new Set(input.identities.map((i) => i.sandbox));
  const onDisk = new Set(input.onDisk);
  return {
    write: input.identities.filter((i) => {
      const w = input.written.get(i.sandbox);
      return (
        !onDisk.has(i.sandbox) ||
        w === undefined ||
        w.generation !== i.generation ||
        refreshDue(w, input.nowSeconds)
      );
    }),
    remove: input.onDisk.filter((s) => !registered.has(s)),
  };
}
