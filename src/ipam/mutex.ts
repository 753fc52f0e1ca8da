/**
 * A first-come, first-served async mutex: callers run one at a time, in arrival order.
 *
 * @example
 * const m = new Mutex();
 * const ip = await m.run(async () => choose());
 */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();

  /** Runs `f` once every earlier caller has finished; resolves or rejects with `f`'s result. */
  run<T>(f: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(f, f);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}
