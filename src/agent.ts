/**
 * The composition root: builds the agent's parts from a `Config` and wires them together. No
 * logic lives here; each part's behaviour is in its own module. The parts live as long as the
 * agent; what belongs to one bridge instance is bound and unbound by `bridge/session.ts`.
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
import { BridgewardError } from './errors.js';
import { BridgeLifecycle } from './bridge/lifecycle.js';
import { GatewayAddress } from './bridge/gateway.js';
import { BridgeSession } from './bridge/session.js';
import { startApi } from './api/server.js';
import { startMetricsServer } from './api/metrics-server.js';
import { statusRoutes, type AgentStatus } from './api/status-routes.js';
import { loadNative } from './native.js';
import { NodePorts } from './nodeport/node-ports.js';
import { NftMonitor } from './nodeport/nft-monitor.js';
import { TABLE_FAMILY, TABLE_NAME } from './nodeport/ruleset.js';
import { nftBinaryDriver, openNftDriver } from './nodeport/nft-driver.js';
import { openConntrack } from './nodeport/conntrack.js';
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
import { startGuard } from './guard/start.js';
import { VERSION } from './version.js';

/**
 * How often the node-port table is read back while `nft monitor` reports every foreign change:
 * a safety net, not the way drift is found (each read-back is an `nft` child process).
 */
const NFT_READBACK_SAFETY_MS = 300_000;

/** A running agent. */
export interface Agent {
  /** The current status report. */
  status(): AgentStatus;
  /** Stops every part; resolves when all is closed. */
  stop(): Promise<void>;
}

/**
 * Starts the agent: preflight, state dir, store, the bridge followed through its life, the
 * observers, IPAM, node ports, identity, API, metrics. Resolves once it serves (after logging
 * `ready`); when the bridge exists at start it is fully set up before that, when it does not the
 * agent serves meanwhile (allocation answers BRIDGE_ABSENT) and sets it up when it appears.
 *
 * @throws BridgewardError for missing privileges or busy sockets/ports.
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
    const bridge = await BridgeLifecycle.start({ rtnl, name: cfg.bridge, log, metrics });
    closers.push(() => bridge.close());
    const gateway = GatewayAddress.start({
      rtnl,
      ip: cfg.gateway,
      prefixLength: cfg.subnet.prefixLength,
      bridgeName: cfg.bridge,
      log,
      metrics,
    });
    closers.push(() => gateway.close());
    const detection = startDetection({ cfg, store, log, metrics });
    closers.push(() => detection.close());
    bridge.listen(detection.bridgeListener);
    const neighbours = NeighbourObserver.start({ rtnl, subnet: cfg.subnet, log, metrics });
    closers.push(() => neighbours.close());
    neighbours.onObservation((o) => detection.pipeline.submit(o));
    const bpf = native.addon
      ? await startBpfObserver({
          pinDir: cfg.bpfPinDir,
          log: log.child({ component: 'bpf' }),
          metrics,
          onObservation: (o) => detection.pipeline.submit(o),
          onPortActivity: (a) =>
            detection.pipeline.submitActivity({ ...a, stations: neighbours.macsOn(a.ifindex) }),
        }).catch((err: unknown) => {
          log.warn({ err }, 'eBPF observer unavailable; netlink observes alone');
          return null;
        })
      : null;
    if (bpf) closers.push(() => bpf.close());
    // The guard's maps are filled from the store before the program runs on any port.
    const guard = await startGuard({
      cfg,
      bpf,
      store,
      bridge,
      pipeline: detection.pipeline,
      log,
      metrics,
    });
    if (guard) {
      closers.push(() => guard.close());
      bridge.listen(guard.bridgeListener);
    }
    if (bpf) {
      // Attach to the ports first, so that only former ports lose an attachment.
      bridge.listen(bpf.bridgeListener);
      bpf.removeStale(await rtnl.links());
    }
    const ipam = new IpamService({
      store,
      pool: { subnet: cfg.subnet, gateway: cfg.gateway, cooldownMs: cfg.cooldownSeconds * 1000 },
      log,
      metrics,
      node: hostname(),
      bridge,
    });
    ipam.addLiveSource(neighbours);
    if (bpf) ipam.addLiveSource(bpf.source);
    const prober = native.addon
      ? new AddressProber({
          bridge,
          pipeline: detection.pipeline,
          detector: detection.detector,
          store,
          log,
          onMalformed: () => metrics.malformedFrames.inc({ source: 'probe' }),
        })
      : null;
    if (prober) {
      bridge.listen(prober.bridgeListener);
      closers.push(() => prober.close());
    }
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
    if (guard) ipam.setFollower(guard);
    const reconciler = new Reconciler({ ipam, store, bridge, log, metrics });
    if (guard) {
      guard.onLearned(
        (l) =>
          void reconciler
            .learned(l)
            .catch((err: unknown) => log.warn({ err, learned: l }, 'cannot bind a learned port')),
      );
      guard.startLoop(cfg.sweepSeconds * 1000);
    }
    // The boot reconcile compares the store with everything on the wire (the neighbour/FDB view
    // of a bridge that exists), before the detector's findings are written back.
    const present = bridge.current();
    if (present) await neighbours.setBridge(present.index);
    const boot = await reconciler.sweep('boot');
    log.info(boot, 'boot reconcile done');
    detection.pipeline.release();
    reconciler.start(cfg.sweepSeconds);
    candidates?.start();
    if (candidates) closers.push(() => candidates.stop());
    closers.push(() => reconciler.stop());
    const conntrack = openConntrack();
    closers.push(() => conntrack.close());
    const nodePorts = new NodePorts({
      store,
      nft: openNftDriver(),
      reader: nftBinaryDriver(),
      reserved: reservedPorts(cfg),
      table: { bridge: cfg.bridge, subnet: cfg.subnetText },
      metrics,
      log,
      clearConntrack: (change) => conntrack.clear(change),
      hairpin: new HairpinPorts({
        ports: () => bridge.ports(),
        portsOf: (mac) => neighbours.portsOf(mac),
        macOf: (ip) => neighbours.macOf(ip),
      }),
    });
    neighbours.onChange(() => {
      reconciler.kick();
      nodePorts.hairpinSoon();
    });
    // Watching starts before the first transaction, so the monitor sees this agent's own.
    const monitor = cfg.nftMonitor
      ? NftMonitor.start({
          family: TABLE_FAMILY,
          table: TABLE_NAME,
          ownPid: process.pid,
          log,
          onForeign: () => nodePorts.verifySoon(),
        })
      : null;
    if (monitor) closers.push(() => monitor.stop());
    await nodePorts.start();
    nodePorts.startLoop(
      cfg.sweepSeconds * 1000,
      monitor
        ? { watching: () => monitor.watching(), safetyMs: NFT_READBACK_SAFETY_MS }
        : undefined,
    );
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
    const session = BridgeSession.start({
      bridge,
      gateway,
      neighbours,
      nodePorts,
      reconciler,
      identity,
      sysctls: (name) => enableNodePortSysctls(name, cfg.sysctlDir),
      metrics,
      log,
    });
    closers.push(() => session.stop());
    await session.settled();
    if (signal.aborted) throw new BridgewardError('NOT_READY', 'stopped while starting');
    // Leased addresses answering from elsewhere since the last run; nothing to probe without a bridge.
    if (bridge.current())
      prober
        ?.probeLeased()
        .then((answered) => log.info({ answered }, 'boot probe of leased addresses done'))
        .catch((err: unknown) => log.warn({ err }, 'boot probe failed'));

    const status = (): AgentStatus => ({
      version: VERSION,
      bridge: session.status(),
      subnet: cfg.subnetText,
      gateway: cfg.gateway,
      store: cfg.store.kind,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      observers: { netlink: true, bpf: bpf !== null, probe: native.addon !== null },
      guard: guard ? guard.status() : { mode: 'off' },
      features: {
        nativeAddon: native.addon !== null,
        btf: features.btf,
        nftables: nodePorts.status().driver,
        identity: identity
          ? identity.listening()
            ? identity.tokenUrl
            : 'waiting for the bridge'
          : 'off',
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
        bridgeState: bridge.state().kind,
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
