/**
 * A runner for the bridge guard's tests: a test bed, a bpffs of its own for the agent's pins, the
 * agent with the guard in a given mode, and sandboxes that get a lease (with their MAC) before
 * they speak, as a runtime creates them. Everything is removed at the test's end.
 *
 * @example
 * const r = await guardedRunner(t, { guard: 'enforce' });
 * const a = await r.leased('app-a');
 * await r.waitBound(a);
 */
import type { Test } from 'tap';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { apiRequest } from '../../src/api/client.js';
import type { AgentStatus } from '../../src/api/status-routes.js';
import type { Finding } from '../../src/detect/finding.js';
import type { GuardStatus } from '../../src/guard/bridge-guard.js';
import { run } from '../../src/exec.js';
import { AgentProcess } from '../../src/testbed/agent-process.js';
import { Testbed, type Sandbox } from '../../src/testbed/testbed.js';
import type { Lease } from '../../src/store/types.js';

/** A sandbox with its lease. */
export interface LeasedSandbox extends Sandbox {
  /** Its sandbox id in the store. */
  readonly id: string;
  /** Its leased address. */
  readonly ip: string;
}

/** The runner, its agent and helpers. */
export interface GuardedRunner {
  /** The test bed. */
  readonly bed: Testbed;
  /** The agent (replaced by `restart`). */
  agent: AgentProcess;
  /** Leases an address (with the MAC the sandbox will have), then adds the sandbox with it. */
  leased(id: string): Promise<LeasedSandbox>;
  /** Makes `s` speak (a ping of the gateway) and waits until its lease is bound to its port. */
  waitBound(s: Pick<LeasedSandbox, 'id' | 'hostIfindex' | 'netns'>): Promise<void>;
  /** Active findings. */
  findings(): Promise<Finding[]>;
  /** Polls until a finding matches. */
  waitForFinding(pred: (f: Finding) => boolean): Promise<Finding>;
  /** The guard as status shows it. */
  guard(): Promise<GuardStatus>;
  /** A metric sample from the agent's /metrics (NaN when absent). */
  metric(name: string, labels?: string): Promise<number>;
  /** SIGKILLs the agent and starts a new one on the same state and pins; resolves when ready. */
  restart(): Promise<void>;
}

/** Where the agent's metrics listen, in the runner namespace. */
const METRICS = '127.0.0.1:9464';

/** Starts a runner with the agent's guard in `flags.guard` (and any other `run` flags). */
export async function guardedRunner(
  t: Test,
  flags: Record<string, string>,
  subnet = '10.61.0.0/24',
): Promise<GuardedRunner> {
  const bed = await Testbed.create({ subnet });
  const pinDir = join(tmpdir(), `bw-${bed.id}-bpffs`, 'bridgeward');
  mkdirSync(dirname(pinDir));
  await run(['mount', '-t', 'bpf', 'bpf', dirname(pinDir)]);
  const all = { subnet, 'metrics-listen': METRICS, 'bpf-pin-dir': pinDir, ...flags };
  const r: GuardedRunner = {
    bed,
    agent: AgentProcess.start(bed, all),
    async leased(id) {
      // The lease first, then the sandbox's link, as a runtime's CNI ADD does.
      const n = bed.sandboxes.length + 1;
      const mac = `0a:${bed.id.slice(0, 2)}:${bed.id.slice(2, 4)}:${bed.id.slice(4, 6)}:00:${n.toString(16).padStart(2, '0')}`;
      const lease = await apiRequest<Lease>(r.agent.socket, 'POST', '/v1/leases', {
        sandbox: id,
        mac,
      });
      const s = await bed.addSandbox({ mac, ip: lease.ip });
      return { ...s, id, ip: lease.ip };
    },
    async waitBound(s) {
      for (let i = 0; i < 100; i++) {
        await bed.exec(s.netns, ['ping', '-c', '1', '-W', '1', bed.gateway], { check: false });
        const leases = await apiRequest<Lease[]>(r.agent.socket, 'GET', '/v1/leases');
        if (leases.find((l) => l.sandbox === s.id)?.ifindex === s.hostIfindex) return;
        await new Promise((res) => setTimeout(res, 50));
      }
      throw new Error(`lease ${s.id} never bound to port ${s.hostIfindex}`);
    },
    findings: () => apiRequest<Finding[]>(r.agent.socket, 'GET', '/v1/conflicts'),
    async waitForFinding(pred) {
      for (let i = 0; i < 300; i++) {
        const hit = (await r.findings()).find(pred);
        if (hit) return hit;
        await new Promise((res) => setTimeout(res, 50));
      }
      throw new Error(`no matching finding; have ${JSON.stringify(await r.findings())}`);
    },
    async guard() {
      const status = await apiRequest<AgentStatus>(r.agent.socket, 'GET', '/v1/status');
      return status.guard as GuardStatus;
    },
    async metric(name, labels = '') {
      const out = await run(['curl', '-s', `http://${METRICS}/metrics`], { netns: bed.runnerNs });
      const line = out.stdout.split('\n').find((l) => l.startsWith(`${name}${labels} `));
      return line ? Number(line.split(' ')[1]) : NaN;
    },
    async restart() {
      await r.agent.stop('SIGKILL');
      r.agent = AgentProcess.start(bed, all, r.agent);
      await r.agent.ready();
    },
  };
  t.teardown(async () => {
    if (!t.passing()) {
      const worth = r.agent.logs.filter((l) => (l.level ?? 0) >= 40);
      t.comment(`agent warnings and errors:\n${worth.map((l) => JSON.stringify(l)).join('\n')}`);
    }
    await r.agent.cleanup();
    await bed.destroy();
    await run(['umount', dirname(pinDir)], { check: false });
    rmSync(dirname(pinDir), { recursive: true, force: true });
  });
  await r.agent.ready();
  return r;
}
