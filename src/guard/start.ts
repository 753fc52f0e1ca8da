/**
 * Builds the bridge guard for the agent from its configuration: nothing with `--guard off`; with
 * `monitor` or `enforce`, a `BridgeGuard` over the eBPF program's guard maps, its reports fed to
 * detection. `enforce` without the eBPF program, or with maps the kernel refuses, refuses to
 * start (a guard that silently does not run is worse than none); `monitor` then runs without the
 * guard and says so.
 *
 * @example
 * const guard = await startGuard({ cfg, bpf, store, bridge, pipeline: detection.pipeline, log, metrics });
 * if (guard) bridge.listen(guard.bridgeListener); // before the program takes over any port
 */
import { hostname } from 'node:os';
import type { BridgeLifecycle } from '../bridge/lifecycle.js';
import type { Config } from '../config.js';
import type { DetectionPipeline } from '../detect/pipeline.js';
import { BridgewardError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { BpfObserver } from '../observe/bpf-observer.js';
import type { LeaseStore } from '../store/types.js';
import { BridgeGuard } from './bridge-guard.js';
import { GuardMaps } from './guard-maps.js';

/** What the guard needs from the agent. */
export interface GuardDeps {
  /** The validated configuration (guard, guardIpv6, store). */
  readonly cfg: Pick<Config, 'guard' | 'guardIpv6' | 'store'>;
  /** The eBPF observer, whose program carries the guard; null when it is unavailable. */
  readonly bpf: Pick<BpfObserver, 'maps'> | null;
  /** The lease store. */
  readonly store: LeaseStore;
  /** The followed bridge (its current ports). */
  readonly bridge: Pick<BridgeLifecycle, 'ports'>;
  /** Where spoof reports and counts go. */
  readonly pipeline: Pick<DetectionPipeline, 'submitSpoof' | 'submitGuardActivity'>;
  /** Logger. */
  readonly log: Logger;
  /** The agent's metrics. */
  readonly metrics: Metrics;
}

/**
 * Starts the guard (its maps filled from the store), or returns null when it is off or cannot
 * run in monitor mode.
 *
 * @throws BridgewardError MISSING_FEATURE for `--guard enforce` without the eBPF program;
 *   KERNEL_ERROR when its maps cannot be set up in enforce.
 */
export async function startGuard(deps: GuardDeps): Promise<BridgeGuard | null> {
  const { cfg, bpf, log } = deps;
  if (cfg.guard === 'off') return null;
  if (!bpf) {
    if (cfg.guard === 'enforce') {
      throw new BridgewardError(
        'MISSING_FEATURE',
        '--guard enforce needs the eBPF program on the bridge ports, which cannot run here (see `bridgeward doctor`)',
      );
    }
    log.warn('the bridge guard needs the eBPF program, which cannot run here; monitor is off');
    return null;
  }
  return BridgeGuard.start({
    mode: cfg.guard,
    dropIpv6: cfg.guardIpv6 === 'drop',
    maps: new GuardMaps(bpf.maps()),
    store: deps.store,
    ports: () => deps.bridge.ports(),
    node: cfg.store.kind === 'etcd' ? hostname() : null,
    log: log.child({ component: 'guard' }),
    metrics: deps.metrics,
    onSpoof: (o) => deps.pipeline.submitSpoof(o),
    onActivity: (a) => deps.pipeline.submitGuardActivity(a),
  }).catch((err: unknown) => {
    if (cfg.guard === 'enforce') throw err;
    log.warn({ err }, 'the bridge guard cannot run; monitor is off');
    return null;
  });
}
