/**
 * Measures, in the VM, what each capability of the systemd unit is for: restarts the agent with
 * one capability fewer (a runtime drop-in resetting CapabilityBoundingSet and
 * AmbientCapabilities), records what breaks, and puts the unit back as installed.
 *
 * @example
 * const broken = await withoutEach(['CAP_BPF', 'CAP_NET_ADMIN'], '/run/bridgeward/api.sock');
 * // { CAP_BPF: ['ebpf-observer'], CAP_NET_ADMIN: ['start'] }
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { apiRequest } from '../../src/api/client.js';
import type { AgentStatus } from '../../src/api/status-routes.js';
import { run } from '../../src/exec.js';
import { poll, unitState } from './guest.js';

const DROP_IN_DIR = '/run/systemd/system/bridgeward.service.d';

/** What stops working without a capability, in the order it is checked. */
export type Feature = 'start' | 'ebpf-observer' | 'lease';

/** Restarts the agent (after a daemon-reload) and waits until it serves with rt0 up, or fails. */
export async function restartAgent(socket: string): Promise<AgentStatus | null> {
  const restarts = Number((await unitState('bridgeward')).NRestarts);
  await run(['systemctl', 'daemon-reload']);
  await run(['systemctl', 'restart', 'bridgeward']);
  const up = await poll(async () => {
    const s = await apiRequest<AgentStatus>(socket, 'GET', '/v1/status').catch(() => null);
    if (s?.bridge.state === 'present') return s;
    // A start that fails again and again (Restart=always) will not serve.
    return Number((await unitState('bridgeward')).NRestarts) >= restarts + 2 ? false : null;
  }, 120_000);
  return up || null;
}

/** The features that break with the agent started without `cap`. */
async function brokenWithout(
  cap: string,
  caps: readonly string[],
  socket: string,
): Promise<Feature[]> {
  const rest = caps.filter((c) => c !== cap).join(' ');
  await writeFile(
    `${DROP_IN_DIR}/caps.conf`,
    `[Service]\nCapabilityBoundingSet=\nCapabilityBoundingSet=${rest}\nAmbientCapabilities=\nAmbientCapabilities=${rest}\n`,
  );
  const s = await restartAgent(socket);
  if (!s) return ['start'];
  const broken: Feature[] = s.observers.bpf ? [] : ['ebpf-observer'];
  const sandbox = `cap-${cap.toLowerCase().replace(/_/g, '-')}`;
  const lease = await apiRequest(socket, 'POST', '/v1/leases', { sandbox }).catch(() => null);
  if (lease) await apiRequest(socket, 'DELETE', `/v1/leases/${sandbox}`);
  else broken.push('lease');
  return broken;
}

/**
 * For each capability, what breaks without it; then the unit as installed again (the agent
 * restarted and serving). Throws when the agent does not come back as installed.
 */
export async function withoutEach(
  caps: readonly string[],
  socket: string,
): Promise<Record<string, Feature[]>> {
  await mkdir(DROP_IN_DIR, { recursive: true });
  const broken: Record<string, Feature[]> = {};
  let back: AgentStatus | null;
  try {
    for (const cap of caps) broken[cap] = await brokenWithout(cap, caps, socket);
  } finally {
    await rm(DROP_IN_DIR, { recursive: true, force: true });
    back = await restartAgent(socket);
  }
  if (!back) throw new Error('the agent did not come back as installed');
  return broken;
}
