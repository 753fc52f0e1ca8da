/**
 * Assertions on bridgeward error codes (tap's `rejects`/`throws` patterns match classes and
 * object shapes, not predicates).
 *
 * @example
 * await rejectsCode(t, store.release('nobody', new Date()), 'UNKNOWN_SANDBOX');
 */
import type { Test } from 'tap';
import { isBridgewardError, type ErrorCode } from '../../src/errors.js';

/** Asserts that `p` rejects with a BridgewardError of `code`; returns the error. */
export async function rejectsCode(
  t: Test,
  p: Promise<unknown>,
  code: ErrorCode,
  message?: string,
): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    t.ok(isBridgewardError(e, code), message ?? `rejects with ${code}`, { got: String(e) });
    return e;
  }
  t.fail(message ?? `expected a rejection with ${code}`);
  return undefined;
}

/** Asserts that `f` throws a BridgewardError of `code`; returns the error. */
export function throwsCode(t: Test, f: () => unknown, code: ErrorCode, message?: string): unknown {
  try {
    f();
  } catch (e) {
    t.ok(isBridgewardError(e, code), message ?? `throws ${code}`, { got: String(e) });
    return e;
  }
  t.fail(message ?? `expected a throw with ${code}`);
  return undefined;
}
