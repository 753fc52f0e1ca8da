/**
 * Builds the detection side of the agent: the detector for the bridge, the alert sinks
 * (log, metrics, optional webhook, event stream), the pipeline that feeds them and writes back to
 * the store, and the bridge-port watcher. Observers are connected by the caller with
 * `pipeline.submit`.
 *
 * @example
 * const detection = await startDetection({ cfg, rtnl, bridge, store, log, metrics });
 * neighbours.onObservation((o) => detection.pipeline.submit(o));
 * app.register(eventsRoutes({ findings: detection.detector, stream: detection.stream }));
 * await detection.close();
 */
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { LinkInfo, Rtnl } from '../observe/rtnl.js';
import type { LeaseStore } from '../store/types.js';
import { Alerts } from '../alerts/alerts.js';
import { FindingStream } from '../alerts/finding-stream.js';
import { WebhookSender } from '../alerts/webhook.js';
import { ConflictDetector } from './detector.js';
import { DetectionPipeline } from './pipeline.js';
import { watchBridgePorts } from './bridge-ports.js';

/** What detection needs from the agent. */
export interface DetectionDeps {
  /** The validated configuration (subnet, gateway, hold-down, webhook). */
  readonly cfg: Config;
  /** The rtnetlink adapter (link events). */
  readonly rtnl: Rtnl;
  /** The bridge. */
  readonly bridge: LinkInfo;
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
  /** The bridge's current MAC (a bridge without a fixed MAC takes its lowest port's). */
  bridgeMac(): string | null;
  /** Stops watching, drains and closes the webhook. */
  close(): Promise<void>;
}

/** Builds and starts detection for the bridge. */
export async function startDetection(deps: DetectionDeps): Promise<Detection> {
  const { cfg, rtnl, bridge, store, metrics } = deps;
  const log = deps.log.child({ component: 'detect' });
  const detector = new ConflictDetector({
    subnet: cfg.subnet,
    gateway: cfg.gateway,
    hostMacs: bridge.mac ? [bridge.mac] : [],
    bridgeIfindex: bridge.index,
    holdDownMs: cfg.holdDownSeconds * 1000,
  });
  const stream = new FindingStream();
  const webhook = cfg.webhook
    ? new WebhookSender({ url: cfg.webhook, log, deliveries: metrics.webhookDeliveries })
    : null;
  const alerts = new Alerts({ log, metrics, stream, webhook });
  const pipeline = new DetectionPipeline({ detector, alerts, store, log, metrics });
  let bridgeMac = bridge.mac;
  const unwatch = await watchBridgePorts(
    rtnl,
    bridge.index,
    {
      up: (ifindex, name) => pipeline.portUp(ifindex, name),
      gone: (ifindex) => pipeline.portGone(ifindex),
      bridgeMac: (mac) => {
        bridgeMac = mac;
        detector.addHostMac(mac);
      },
    },
    log,
  );
  pipeline.start();
  return {
    detector,
    pipeline,
    stream,
    bridgeMac: () => bridgeMac,
    async close() {
      unwatch();
      await pipeline.close();
      await webhook?.close();
    },
  };
}
