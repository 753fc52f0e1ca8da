/**
 * The composition root: builds the agent's parts from a `Config` and wires them together. No
 * logic lives here; each part's behaviour is in its own module.
 *
 * @example
 * const agent = await startAgent(cfg, log, abortSignal);
 * await agent.stop();
 */
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Server } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import { createMetrics } from './metrics.js';
import { assertCanRun, probeFeatures, readCapabilities } from './preflight.js';
import { openRtnl } from './observe/rtnl.js';
import { openStore } from './store/open.js';
import { waitForBridge } from './observe/bridge-wait.js';
import { startApi } from './api/server.js';
import { startMetricsServer } from './api/metrics-server.js';
import { statusRoutes, type AgentStatus } from './api/status-routes.js';
import { loadNative } from './native.js';
import { NodePorts } from './nodeport/node-ports.js';
import { NftMonitor } from './nodeport/nft-monitor.js';
import { TABLE_FAMILY, TABLE_NAME } from './nodeport/ruleset.js';
import { nftBinaryDriver, openNftDriver } from './nodeport/nft-driver.js';
import { clearConntrack } from './nodeport/conntrack.js';
import { enableNodePortSysctls } from './nodeport/sysctls.js';
import { HairpinPorts } from './nodeport/hairpin.js';
import { reservedPorts } from './nodeport/reserved.js';
import { portRoutes } from './api/port-routes.js';
import { startIdentity } from './identity/service.js';
import { identityOffRoutes, identityRoutes } from './api/identity-routes.js';
import { NeighbourObserver } from './observe/neighbours.js';
import { startBpfObserver } from './observe/bpf-observer.js';
import { IpamService } from './ipam/service.js';
import { Reconciler } from './ipam/reconciler.js';
import { leaseRoutes } from './api/lease-routes.js';
import { startDetection } from './detect/start.js';
import { eventsRoutes } from './api/events-routes.js';
import { probeRoutes } from './api/probe-routes.js';
import { AddressProber } from './detect/prober.js';
import { CandidateProber } from './ipam/candidate-prober.js';
import { VERSION } from './version.js';

/** A running agent. */
export interface Agent {
  /** The current status report. */
  status(): AgentStatus;
  /** Stops every part; resolves when all is closed. */
  stop(): Promise<void>;
}

/**
 * Starts the agent: preflight, state dir, wait for the bridge, gateway address, API, metrics.
 * Resolves once it serves (after logging `ready`).
 *
 * @throws BridgewardError for missing privileges, an unusable bridge or busy sockets/ports.
 */
export async function startAgent(cfg: Config, log: Logger, signal: AbortSignal): Promise<Agent> {
  assertCanRun(readCapabilities());
  const features = probeFeatures();
  const native = loadNative();
  if (native.error)
    log.warn(
      { error: native.error },
      'native addon unavailable; eBPF and in-process nftables disabled',
    );
  await mkdir(cfg.stateDir, { recursive: true, mode: 0o700 });
  const metrics = createMetrics();
  const startedAt = Date.now();
  const rtnl = openRtnl();
  const closers: (() => Promise<void> | void)[] = [() => rtnl.close()];
  const stop = async () => {
    for (const close of closers.reverse()) {
      try {
        await close();
      } catch (e) {
        log.warn({ err: e }, 'error while stopping');
      }
    }
  };
  try {
    const store = await openStore(cfg, log);
    closers.push(() => store.close());
    const bridge = await waitForBridge(rtnl, cfg.bridge, log, signal);
    log.info({ bridge: bridge.name, ifindex: bridge.index }, 'bridge found');
    await rtnl.ensureAddress(bridge.index, cfg.gateway, cfg.subnet.prefixLength);
    const detection = await startDetection({ cfg, rtnl, bridge, store, log, metrics });
    closers.push(() => detection.close());
    const neighbours = await NeighbourObserver.start({
      rtnl,
      bridge: bridge.index,
      subnet: cfg.subnet,
      log,
      metrics,
    });
    closers.push(() => neighbours.close());
    neighbours.onObservation((o) => detection.pipeline.submit(o));
    const bpf = native.addon
      ? await startBpfObserver({
          bridge: { ifindex: bridge.index },
          pinDir: cfg.bpfPinDir,
          rtnl,
          log: log.child({ component: 'bpf' }),
          metrics,
          onObservation: (o) => detection.pipeline.submit(o),
        }).catch((err: unknown) => {
          log.warn({ err }, 'eBPF observer unavailable; netlink observes alone');
          return null;
        })
      : null;
    if (bpf) closers.push(() => bpf.close());
    const ipam = new IpamService({
      store,
      pool: { subnet: cfg.subnet, gateway: cfg.gateway, cooldownMs: cfg.cooldownSeconds * 1000 },
      log,
      metrics,
      node: hostname(),
    });
    ipam.addLiveSource(neighbours);
    if (bpf) ipam.addLiveSource(bpf.source);
    const prober = native.addon
      ? new AddressProber({
          bridge: bridge.index,
          bridgeMac: detection.bridgeMac,
          pipeline: detection.pipeline,
          detector: detection.detector,
          store,
          log,
          onMalformed: () => metrics.malformedFrames.inc({ source: 'probe' }),
        })
      : null;
    const candidates = prober
      ? new CandidateProber({
          candidates: (k) => ipam.nextCandidates(k),
          probe: (ips) => prober.probeMany(ips),
          silentAt: (ip) => prober.silentAt(ip),
          probeNow: (ip) => prober.preHandoutCheck(ip),
          log,
          metrics,
        })
      : null;
    if (candidates) ipam.setPreHandoutCheck((ip) => candidates.check(ip));
    const reconciler = new Reconciler({ ipam, store, log, metrics });
    const boot = await reconciler.sweep('boot');
    log.info(boot, 'boot reconcile done');
    prober
      ?.probeLeased()
      .then((answered) => log.info({ answered }, 'boot probe of leased addresses done'))
      .catch((err: unknown) => log.warn({ err }, 'boot probe failed'));
    reconciler.start(cfg.sweepSeconds);
    candidates?.start();
    if (candidates) closers.push(() => candidates.stop());
    neighbours.onChange(() => reconciler.kick());
    closers.push(() => reconciler.stop());
    log.info({ sysctls: await enableNodePortSysctls(bridge.name) }, 'node-port sysctls set');
    const nodePorts = new NodePorts({
      store,
      nft: openNftDriver(),
      reader: nftBinaryDriver(),
      reserved: reservedPorts(cfg),
      table: { bridge: bridge.name, subnet: cfg.subnetText },
      metrics,
      log,
      clearConntrack,
      hairpin: new HairpinPorts(bridge.name),
    });
    // Watching starts before the first transaction, so the monitor sees this agent's own.
    if (cfg.nftMonitor) {
      const monitor = NftMonitor.start({
        family: TABLE_FAMILY,
        table: TABLE_NAME,
        ownPid: process.pid,
        log,
        onForeign: () => nodePorts.verifySoon(),
      });
      closers.push(() => monitor.stop());
    }
    await nodePorts.start();
    nodePorts.startLoop(cfg.sweepSeconds * 1000);
    ipam.onReleased(
      (lease) =>
        void nodePorts
          .released(lease.ip)
          .catch((err: unknown) => log.warn({ err }, 'node-port sync after release failed')),
    );
    closers.push(() => nodePorts.stop());
    const identity = cfg.identityListen
      ? await startIdentity({
          stateDir: cfg.stateDir,
          listen: cfg.identityListen,
          gateway: cfg.gateway,
          store,
          live: neighbours,
          log,
          requests: metrics.tokenRequests,
          tokenFiles: cfg.identityTokenDir
            ? { dir: cfg.identityTokenDir, intervalMs: cfg.sweepSeconds * 1000 }
            : null,
        })
      : null;
    if (identity) closers.push(() => identity.close());

    const status = (): AgentStatus => ({
      version: VERSION,
      bridge: { name: bridge.name, ifindex: bridge.index, mac: bridge.mac },
      subnet: cfg.subnetText,
      gateway: cfg.gateway,
      store: cfg.store.kind,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      observers: { netlink: true, bpf: bpf !== null, probe: native.addon !== null },
      features: {
        nativeAddon: native.addon !== null,
        btf: features.btf,
        nftables: nodePorts.status().driver,
        identity: identity?.tokenUrl ?? 'off',
      },
    });
    const api: FastifyInstance = await startApi({
      socket: cfg.socket,
      log,
      routes: [
        statusRoutes(status),
        eventsRoutes({ findings: detection.detector, stream: detection.stream }),
        ...(prober ? [probeRoutes((ip, ms) => prober.probe(ip, ms))] : []),
        leaseRoutes({ ipam, store, reconciler }),
        portRoutes(nodePorts),
        identity ? identityRoutes(identity) : identityOffRoutes(),
      ],
    });
    closers.push(() => api.close());
    if (cfg.metricsListen) {
      const srv: Server = await startMetricsServer(metrics.registry, cfg.metricsListen);
      closers.push(() => new Promise<void>((r) => srv.close(() => r())));
    }
    metrics.up.set({ version: VERSION }, 1);
    log.info(
      {
        bridge: cfg.bridge,
        subnet: cfg.subnetText,
        gateway: cfg.gateway,
        socket: cfg.socket,
        store: cfg.store.kind,
      },
      'ready',
    );
    return { status, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
