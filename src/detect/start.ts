/**
 * Builds the detection side of the agent: the detector, the alert sinks (log, metrics, optional
 * webhook, event stream) and the pipeline that feeds them and writes back to the store. It
 * lives as long as the agent; the bridge comes and goes under it (`bridgeListener`: a new
 * instance's ifindex and MAC, its ports joining and leaving). Observers are connected by the
 * caller with `pipeline.submit`.
 *
 * @example
 * const detection = startDetection({ cfg, store, log, metrics });
 * bridge.listen(detection.bridgeListener);
 * neighbours.onObservation((o) => detection.pipeline.submit(o));
 * app.register(eventsRoutes({ findings: detection.detector, stream: detection.stream }));
 * await detection.close();
 */
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { BridgeListener } from '../bridge/lifecycle.js';
import type { LeaseStore } from '../store/types.js';
import { Alerts } from '../alerts/alerts.js';
import { FindingStream } from '../alerts/finding-stream.js';
import { WebhookSender } from '../alerts/webhook.js';
import { ConflictDetector } from './detector.js';
import { DetectionPipeline } from './pipeline.js';

/** What detection needs from the agent. */
export interface DetectionDeps {
  /** The validated configuration (subnet, gateway, hold-down, webhook). */
  readonly cfg: Config;
  /** The lease store. */
  readonly store: LeaseStore;
  /** Logger. */
  readonly log: Logger;
  /** The agent's metrics. */
  readonly metrics: Metrics;
}

/** The running detection parts. */
export interface Detection {
  /** The pure detector (also the source of `GET /v1/conflicts`). */
  readonly detector: ConflictDetector;
  /** Where observers submit. */
  readonly pipeline: DetectionPipeline;
  /** Live finding changes (`GET /v1/events`). */
  readonly stream: FindingStream;
  /** Follows the bridge: each instance's ifindex and MAC, its ports joining and leaving. */
  readonly bridgeListener: BridgeListener;
  /** Drains and closes the webhook. */
  close(): Promise<void>;
}

/** Builds and starts detection. */
export function startDetection(deps: DetectionDeps): Detection {
  const { cfg, store, metrics } = deps;
  const log = deps.log.child({ component: 'detect' });
  const detector = new ConflictDetector({
    subnet: cfg.subnet,
    gateway: cfg.gateway,
    hostMacs: [],
    bridgeIfindex: null,
    holdDownMs: cfg.holdDownSeconds * 1000,
  });
  const stream = new FindingStream();
  const webhook = cfg.webhook
    ? new WebhookSender({ url: cfg.webhook, log, deliveries: metrics.webhookDeliveries })
    : null;
  const alerts = new Alerts({ log, metrics, stream, webhook });
  // Held until the agent's boot reconcile has run (`pipeline.release()`).
  const pipeline = new DetectionPipeline({ detector, alerts, store, log, metrics, held: true });
  pipeline.start();
  return {
    detector,
    pipeline,
    stream,
    bridgeListener: {
      bridgeUp: (bridge) => detector.setBridge(bridge.index, bridge.mac),
      bridgeChanged: (bridge) => {
        if (bridge.mac) detector.addHostMac(bridge.mac);
      },
      portUp: (port) => pipeline.portUp(port.index, port.name),
      portGone: (ifindex) => pipeline.portGone(ifindex),
    },
    async close() {
      await pipeline.close();
      await webhook?.close();
    },
  };
}
