/**
 * The agent's own listening ports, which no node port may take: DNAT on them would capture the
 * agent's traffic (sandboxes' identity token requests, metrics scrapes). Pure.
 *
 * @example
 * reservedPorts({ identityListen: { host: '10.8.64.1', port: 7123 }, metricsListen: null });
 * // Map { 'tcp . 7123' => 'the identity token server' }
 */
import type { Config } from '../config.js';
import { elementKey } from './element.js';

/** Keys of the agent's listening ports, with what listens there. */
export function reservedPorts(
  cfg: Pick<Config, 'identityListen' | 'metricsListen'>,
): Map<string, string> {
  const out = new Map<string, string>();
  if (cfg.identityListen) {
    out.set(
      elementKey({ proto: 'tcp', hostPort: cfg.identityListen.port }),
      'the identity token server',
    );
  }
  if (cfg.metricsListen) {
    out.set(elementKey({ proto: 'tcp', hostPort: cfg.metricsListen.port }), 'the metrics endpoint');
  }
  return out;
}
