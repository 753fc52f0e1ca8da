/**
 * Fans finding changes out to live subscribers (the `GET /v1/events` streams). Publishing is
 * synchronous and never waits for a subscriber: each subscriber decides itself what to do with a
 * slow consumer (the SSE route drops it).
 *
 * @example
 * const stream = new FindingStream();
 * const off = stream.subscribe((c) => console.log(c.type, c.finding.ip));
 * stream.publish({ type: 'raised', finding });
 * off();
 */
import type { FindingChange } from '../detect/finding.js';

/** A subscriber callback. */
export type FindingListener = (change: FindingChange) => void;

/** The publish/subscribe hub for finding changes. */
export class FindingStream {
  readonly #listeners = new Set<FindingListener>();

  /** Number of live subscribers. */
  get subscribers(): number {
    return this.#listeners.size;
  }

  /** Adds a subscriber; returns the function that removes it. */
  subscribe(listener: FindingListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Delivers a change to every subscriber; a throwing subscriber is removed. */
  publish(change: FindingChange): void {
    for (const l of this.#listeners) {
      try {
        l(change);
      } catch {
        this.#listeners.delete(l);
      }
    }
  }
}
