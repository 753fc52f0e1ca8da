/**
 * Turns finding changes into alerts: one pino line per change with all the evidence (error for
 * conflicts that break traffic, warn for bookkeeping mismatches, info when a finding clears),
 * the Prometheus conflict metrics, the optional webhook and the live event stream.
 *
 * @example
 * const alerts = new Alerts({ log, metrics, stream, webhook: null });
 * alerts.publish(detector.observe(obs, leases));
 */
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import {
  describeFinding,
  FINDING_KINDS,
  type Finding,
  type FindingChange,
} from '../detect/finding.js';
import type { FindingStream } from './finding-stream.js';
import type { WebhookSender } from './webhook.js';

/** What alerts are sent through. */
export interface AlertSinks {
  /** The agent's logger. */
  readonly log: Logger;
  /** The agent's metrics (conflictsActive, conflictsTotal). */
  readonly metrics: Pick<Metrics, 'conflictsActive' | 'conflictsTotal'>;
  /** The live event stream. */
  readonly stream: FindingStream;
  /** The webhook, when configured. */
  readonly webhook: WebhookSender | null;
}

/** Publishes finding changes to every sink. */
export class Alerts {
  readonly #sinks: AlertSinks;

  /** Creates the publisher and zeroes the per-kind metrics so every kind has a series. */
  constructor(sinks: AlertSinks) {
    this.#sinks = sinks;
    for (const kind of FINDING_KINDS) {
      sinks.metrics.conflictsActive.set({ kind }, 0);
      sinks.metrics.conflictsTotal.inc({ kind }, 0);
    }
  }

  /** Logs, counts, streams and forwards each change; `active` is the detector's active set after them. */
  publish(changes: readonly FindingChange[], active: readonly Finding[]): void {
    if (changes.length === 0) return;
    const { log, metrics, stream, webhook } = this.#sinks;
    for (const change of changes) {
      const f = change.finding;
      const fields = { finding: f, event: change.type };
      if (change.type === 'cleared') log.info(fields, `conflict cleared: ${describeFinding(f)}`);
      else if (f.severity === 'error')
        log.error(fields, `conflict ${change.type}: ${describeFinding(f)}`);
      else log.warn(fields, `conflict ${change.type}: ${describeFinding(f)}`);
      if (change.type === 'raised') metrics.conflictsTotal.inc({ kind: f.kind });
      stream.publish(change);
      webhook?.send(change);
    }
    for (const kind of FINDING_KINDS) {
      metrics.conflictsActive.set({ kind }, active.filter((f) => f.kind === kind).length);
    }
  }
}
