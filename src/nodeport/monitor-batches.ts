/**
 * Groups the lines `nft monitor` prints into transactions. Every transaction that changed the
 * ruleset ends with `# new generation N by process PID (COMM)`; the lines before it are its
 * events (`add element ip bridgeward nodeports { ... }`, `delete rule ip bridgeward ...`). A
 * transaction touches the table when one of its lines names it, or when nft could not say what
 * an event belonged to (`W: Received event for an unknown set.`). Pure: lines in, batches out.
 *
 * @example
 * const b = new MonitorBatches('ip', 'bridgeward');
 * b.push('delete rule ip bridgeward prerouting handle 4'); // null
 * b.push('# new generation 9 by process 4242 (nft)'); // { generation: 9, pid: 4242, comm: 'nft', touchesTable: true }
 */

/** One transaction as `nft monitor` reports it. */
export interface MonitorBatch {
  /** The ruleset generation it produced. */
  readonly generation: number;
  /** The process that committed it, or null when nft did not say. */
  readonly pid: number | null;
  /** That process's command name, or null. */
  readonly comm: string | null;
  /** Whether it touched the watched table (or an object nft could not attribute). */
  readonly touchesTable: boolean;
}

const GENERATION = /^# new generation (\d+)(?: by process (\d+) \(([^)]*)\))?/;

/** Turns `nft monitor` lines into transactions, one generation line at a time. */
export class MonitorBatches {
  readonly #named: RegExp;
  #touches = false;

  /** Watches the table `family name` (e.g. `ip bridgeward`). */
  constructor(family: string, name: string) {
    this.#named = new RegExp(`(^|\\s)${family} ${name}(\\s|$)`);
  }

  /** Feeds one line; returns the transaction a generation line ends, else null. */
  push(line: string): MonitorBatch | null {
    const g = GENERATION.exec(line);
    if (!g) {
      if (this.#named.test(line) || line.startsWith('W: ')) this.#touches = true;
      return null;
    }
    const batch: MonitorBatch = {
      generation: Number(g[1]),
      pid: g[2] === undefined ? null : Number(g[2]),
      comm: g[3] ?? null,
      touchesTable: this.#touches,
    };
    this.#touches = false;
    return batch;
  }
}
