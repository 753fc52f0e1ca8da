/**
 * The sandbox-id grammar: 1..128 characters, a letter or digit first, then letters, digits,
 * `_`, `.` or `-` (container ids, k8s-style names and ULIDs all fit).
 *
 * @example
 * parseSandboxId('meet-web-CZTwDFSB'); // 'meet-web-CZTwDFSB'
 * parseSandboxId('../etc');            // throws INVALID_ARGUMENT
 */
import { invalid } from '../errors.js';

/** The grammar as a JSON-schema / RegExp pattern source. */
export const SANDBOX_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$';

const RE = new RegExp(SANDBOX_ID_PATTERN);

/**
 * Returns `text` when it is a valid sandbox id.
 *
 * @throws BridgewardError INVALID_ARGUMENT naming the grammar.
 */
export function parseSandboxId(text: string): string {
  if (!RE.test(text)) {
    throw invalid(
      `invalid sandbox id ${JSON.stringify(text.length > 140 ? `${text.slice(0, 140)}...` : text)}: ` +
        'expected 1..128 characters of [A-Za-z0-9_.-] starting with a letter or digit',
    );
  }
  return text;
}
