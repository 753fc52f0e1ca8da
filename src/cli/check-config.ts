/**
 * `bridgeward run --check-config`: the settings `run` would use, validated exactly as `run`
 * validates them (config file, then flags), printed instead of started. Touches nothing: no
 * state dir, no socket, no netlink. A bad setting is thrown by `resolveConfig` before this runs
 * (exit 2 with the precise message).
 *
 * @example
 * printConfigCheck(resolveConfig({ subnet: '10.8.64.0/24' }), 'table');
 * // bridgeward: config OK: bridge rt0, subnet 10.8.64.0/24, gateway 10.8.64.1, store sqlite, ...
 */
import type { Config } from '../config.js';
import type { OutputFormat } from './args.js';

/** Prints the outcome of a successful check (one line, or `{ ok, config }` as JSON); returns 0. */
export function printConfigCheck(cfg: Config, format: OutputFormat): number {
  const { subnetText, ...rest } = cfg;
  if (format === 'json') {
    const config = { ...rest, subnet: subnetText };
    process.stdout.write(JSON.stringify({ ok: true, config }, null, 2) + '\n');
    return 0;
  }
  const store = cfg.store.kind === 'etcd' ? `etcd ${cfg.store.endpoints.join(',')}` : 'sqlite';
  process.stdout.write(
    `bridgeward: config OK: bridge ${cfg.bridge}, subnet ${subnetText}, gateway ${cfg.gateway}, ` +
      `store ${store}, state dir ${cfg.stateDir}, socket ${cfg.socket}\n`,
  );
  return 0;
}
