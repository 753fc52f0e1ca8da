/**
 * Findings kept by key that resolve when their condition stops and clear once they stayed
 * resolved for a hold-down: the part the storm watch and the spoof watch share. Pure: time is
 * passed in.
 *
 * @example
 * const held = new HeldFindings<number, Storm>(60_000, (s, clearedAt) => toFinding(s, clearedAt));
 * held.set(7, storm);
 * held.tick(Date.now()); // [{ type: 'cleared', finding }] once storm.resolvedAt is 60 s old
 */
import type { Finding, FindingChange } from './finding.js';

/** What a held finding needs: when it began, and when it was last seen resolved (or null). */
export interface Held {
  /** When the condition began (ms). */
  readonly firstSeen: number;
  /** When the condition was last seen gone (ms), or null while it holds. */
  resolvedAt: number | null;
}

/** Held findings by key. */
export class HeldFindings<K, T extends Held> {
  readonly #holdDownMs: number;
  readonly #toFinding: (item: T, clearedAt: number | null) => Finding;
  readonly #items = new Map<K, T>();

  /** `toFinding` renders an item as a finding (cleared at `clearedAt`, or active when null). */
  constructor(holdDownMs: number, toFinding: (item: T, clearedAt: number | null) => Finding) {
    this.#holdDownMs = holdDownMs;
    this.#toFinding = toFinding;
  }

  /** The item under `key`, if any. */
  get(key: K): T | undefined {
    return this.#items.get(key);
  }

  /** Keeps `item` under `key`. */
  set(key: K, item: T): void {
    this.#items.set(key, item);
  }

  /** How many are held. */
  get size(): number {
    return this.#items.size;
  }

  /** Every held item. */
  values(): IterableIterator<T> {
    return this.#items.values();
  }

  /** Drops the items that stayed resolved for the hold-down by `now`; returns them as cleared. */
  tick(now: number): FindingChange[] {
    const changes: FindingChange[] = [];
    for (const [key, item] of this.#items) {
      if (item.resolvedAt !== null && now - item.resolvedAt >= this.#holdDownMs) {
        this.#items.delete(key);
        changes.push({ type: 'cleared', finding: this.#toFinding(item, now) });
      }
    }
    return changes;
  }

  /** True while nothing is held (nothing for `tick` to clear). */
  idle(): boolean {
    return this.#items.size === 0;
  }

  /** The held findings (resolving ones included), oldest first. */
  active(): Finding[] {
    return [...this.#items.values()]
      .sort((a, b) => a.firstSeen - b.firstSeen)
      .map((item) => this.#toFinding(item, null));
  }
}
