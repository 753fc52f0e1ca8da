/**
 * Delivers finding changes to an operator's webhook: HTTP POST of one JSON object per change, in
 * order, retried with exponential backoff. `send` only enqueues, so detection never waits for
 * the network; the queue is bounded and drops the oldest entry when full.
 *
 * @example
 * const hook = new WebhookSender({ url: 'http://127.0.0.1:9000/hook', log, metrics });
 * hook.send({ type: 'raised', finding });
 * await hook.close();
 */
import type { Logger } from '../log.js';
import type { FindingChange } from '../detect/finding.js';
import { backoffMs, type Backoff } from './backoff.js';

/** Outcome counter the sender reports into (`bridgeward_webhook_deliveries_total{result}`). */
export interface DeliveryCounter {
  /** Adds one delivery outcome: delivered, retry, failed (gave up) or dropped (queue full). */
  inc(labels: { result: 'delivered' | 'retry' | 'failed' | 'dropped' }): void;
}

/** Options of a webhook sender. */
export interface WebhookOptions {
  /** The http(s) URL to POST to. */
  readonly url: string;
  /** Logger for delivery failures. */
  readonly log: Logger;
  /** Outcome counter. */
  readonly deliveries: DeliveryCounter;
  /** Most changes kept waiting (default 1000). */
  readonly maxQueue?: number;
  /** Attempts per change before giving up (default 8). */
  readonly maxAttempts?: number;
  /** Retry backoff (default 500 ms doubling up to 30 s). */
  readonly backoff?: Backoff;
  /** Timeout of one POST (default 5 s). */
  readonly timeoutMs?: number;
}

/** The JSON body POSTed for each change. */
export interface WebhookPayload {
  /** `raised`, `updated` or `cleared`. */
  readonly event: FindingChange['type'];
  /** The finding after the change. */
  readonly finding: FindingChange['finding'];
}

/** A bounded, ordered, retrying webhook queue. */
export class WebhookSender {
  readonly #opts: Required<WebhookOptions>;
  readonly #queue: FindingChange[] = [];
  #draining: Promise<void> | null = null;
  #closed = false;
  readonly #abort = new AbortController();

  /** Creates an idle sender. */
  constructor(opts: WebhookOptions) {
    this.#opts = {
      maxQueue: 1000,
      maxAttempts: 8,
      backoff: { baseMs: 500, maxMs: 30_000 },
      timeoutMs: 5000,
      ...opts,
    };
  }

  /** Changes waiting for delivery (including the one in flight). */
  get pending(): number {
    return this.#queue.length;
  }

  /** Enqueues a change and returns at once; drops the oldest queued change when full. */
  send(change: FindingChange): void {
    if (this.#closed) return;
    if (this.#queue.length >= this.#opts.maxQueue) {
      // Index 0 may be in flight; drop the oldest one that is not.
      const dropped = this.#queue.splice(this.#draining ? 1 : 0, 1)[0];
      this.#opts.deliveries.inc({ result: 'dropped' });
      this.#opts.log.warn(
        { webhook: this.#opts.url, findingId: dropped?.finding.id, maxQueue: this.#opts.maxQueue },
        'webhook queue full; dropped the oldest change',
      );
    }
    this.#queue.push(change);
    this.#draining ??= this.#drain().finally(() => (this.#draining = null));
  }

  /** Resolves once the queue is empty (for tests and orderly shutdown). */
  async idle(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  /** Stops retrying and abandons what is queued. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#abort.abort();
    this.#queue.length = 0;
    await this.#draining;
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0 && !this.#closed) {
      const change = this.#queue[0] as FindingChange;
      await this.#deliver(change);
      if (this.#queue[0] === change) this.#queue.shift();
    }
  }

  async #deliver(change: FindingChange): Promise<void> {
    const body = JSON.stringify({
      event: change.type,
      finding: change.finding,
    } satisfies WebhookPayload);
    for (let attempt = 1; !this.#closed; attempt++) {
      const error = await this.#post(body);
      if (error === null) {
        this.#opts.deliveries.inc({ result: 'delivered' });
        return;
      }
      if (attempt >= this.#opts.maxAttempts) {
        this.#opts.deliveries.inc({ result: 'failed' });
        this.#opts.log.error(
          { webhook: this.#opts.url, findingId: change.finding.id, attempts: attempt, error },
          'webhook delivery failed; giving up on this change',
        );
        return;
      }
      const delay = backoffMs(attempt, this.#opts.backoff);
      this.#opts.deliveries.inc({ result: 'retry' });
      this.#opts.log.warn(
        { webhook: this.#opts.url, findingId: change.finding.id, attempt, retryInMs: delay, error },
        'webhook delivery failed; retrying',
      );
      await sleep(delay, this.#abort.signal);
    }
  }

  /** One POST; null on a 2xx answer, else what went wrong. */
  async #post(body: string): Promise<string | null> {
    try {
      const res = await fetch(this.#opts.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#opts.timeoutMs)]),
      });
      await res.arrayBuffer();
      return res.ok ? null : `HTTP ${res.status}`;
    } catch (e) {
      const err = e as Error & { cause?: { code?: string } };
      return err.cause?.code ?? err.message;
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
