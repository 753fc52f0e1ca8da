/**
 * `GET /v1/status`: what the agent runs on and which observers and features are active.
 *
 * @example
 * app.register(statusRoutes(() => agent.status()));
 */
import type { BridgeStatus } from '../bridge/session.js';
import type { GuardStatus } from '../guard/bridge-guard.js';
import type { ApiRoutes } from './server.js';

/** The status report. */
export interface AgentStatus {
  /** Agent version. */
  version: string;
  /** The bridge the agent follows: present, absent or not a bridge, and since when. */
  bridge: BridgeStatus;
  /** Sandbox subnet (CIDR). */
  subnet: string;
  /** Gateway address on the bridge. */
  gateway: string;
  /** Lease store backend. */
  store: 'sqlite' | 'etcd';
  /** Seconds since start. */
  uptimeSeconds: number;
  /** Which observers run. */
  observers: { netlink: boolean; bpf: boolean; probe: boolean };
  /** The bridge guard: its mode, ports by binding, pending leases, drop counts; or off. */
  guard: GuardStatus | { readonly mode: 'off' };
  /** Which optional features are available. */
  features: Record<string, boolean | string>;
}

/** Route plugin serving the status report from `status()`. */
export function statusRoutes(status: () => AgentStatus): ApiRoutes {
  return (app) => {
    app.get('/v1/status', async () => status());
  };
}
