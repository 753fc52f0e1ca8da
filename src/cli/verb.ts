/**
 * The shape of a CLI verb. Each verb group lives in its own file and exports a list of these;
 * `main.ts` only dispatches.
 */

/** One CLI verb (`status`, `lease allocate`, ...). */
export interface Verb {
  /** Words that select it, e.g. `['lease', 'allocate']`. */
  readonly words: readonly string[];
  /** One-line summary for `--help`. */
  readonly summary: string;
  /** Usage line(s) shown by `bridgeward <verb> --help`. */
  readonly usage: string;
  /** Runs the verb with the remaining argv; resolves to the exit code. */
  run(argv: string[]): Promise<number>;
}
