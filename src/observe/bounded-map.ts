/**
 * A Map that holds at most `limit` entries: setting a key moves it to the newest place, and
 * the oldest entry goes when the map would grow past the limit. For state that mirrors a bounded
 * kernel map (an LRU of bindings), so a flood of new keys cannot grow user space without end.
 *
 * @example
 * const m = new BoundedMap<string, number>(2);
 * m.set('a', 1).set('b', 2).set('c', 3);
 * [...m.keys()]; // ['b', 'c']
 */
export class BoundedMap<K, V> extends Map<K, V> {
  readonly #limit: number;

  /** An empty map holding at most `limit` (>= 1) entries. */
  constructor(limit: number) {
    super();
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`BoundedMap limit ${limit} is not an integer >= 1`);
    }
    this.#limit = limit;
  }

  /** Sets `key` as the newest entry; evicts the oldest when over the limit. */
  override set(key: K, value: V): this {
    super.delete(key);
    super.set(key, value);
    if (this.size > this.#limit) super.delete(this.keys().next().value as K);
    return this;
  }
}
