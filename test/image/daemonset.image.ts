// Issue 13: the image run exactly as deploy/daemonset.yaml runs it (podman, the pod spec
// translated field by field: the host network of a runner namespace standing in for the node,
// --cap-drop=all plus only the listed capabilities, not privileged, the node's bpffs and a state
// dir as hostPath volumes). Checks every feature, a SIGTERM stop and a restart keeping leases and
// pinned maps; then drops each listed capability in turn and records what breaks, which must be
// what the DaemonSet's comment says. Run by `npm run test:image` (builds the image first).
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../src/exec.js';
import { VERSION } from '../../src/version.js';
import type { AgentStatus } from '../../src/api/status-routes.js';
import type { Finding } from '../../src/detect/finding.js';
import type { Lease } from '../../src/store/types.js';
import { NameServer, askName } from '../../src/testbed/name-server.js';
import type { Sandbox } from '../../src/testbed/testbed.js';
import {
  DAEMONSET_FILE,
  addedCapabilities,
  readDeploy,
  type Deploy,
} from '../harness/daemonset-podman.js';
import { PodmanPod, podman, type PodOptions } from '../harness/podman-pod.js';

const IMAGE = `localhost/bridgeward:${VERSION}`;
const NODE = 'runner-1';
const HOST_PORT = 6667;

/** What the test checks in every run; the matrix records which of these break. */
const FEATURES = [
  'start',
  'status',
  'ebpf-observer',
  'sysctls',
  'lease',
  'node-port',
  'probe',
  'duplicate',
  'stop',
] as const;
type Feature = (typeof FEATURES)[number];

/** One run's outcome: why each broken feature broke (missing: it worked). */
type Outcome = Partial<Record<Feature, string>>;

/** The broken features of an outcome, in the order they are checked. */
const brokenFeatures = (o: Outcome): Feature[] => FEATURES.filter((f) => f in o);

const deploy: Deploy = readDeploy();

/** Polls `f` until it returns a value (not null) or the time runs out. */
async function poll<T>(f: () => Promise<T | null>, timeoutMs: number): Promise<T | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== null || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Runs the pod with the given overrides and checks every feature; `more` runs before teardown. */
async function measure(
  overrides: Pick<PodOptions, 'capabilities' | 'seccomp'>,
  more?: (pod: PodmanPod, sb: Sandbox & { ip: string }) => Promise<void>,
): Promise<Outcome> {
  const pod = await PodmanPod.start(deploy, { image: IMAGE, nodeName: NODE, ...overrides });
  try {
    const out = await checkFeatures(pod, more);
    if (Object.keys(out).length) {
      const tail = (await pod.logs()).slice(-8).map((l) => JSON.stringify(l).slice(0, 400));
      t.comment(`container log (last lines):\n${tail.join('\n')}`);
    }
    return out;
  } finally {
    await pod.destroy();
  }
}

async function checkFeatures(
  pod: PodmanPod,
  more?: (pod: PodmanPod, sb: Sandbox & { ip: string }) => Promise<void>,
): Promise<Outcome> {
  const out: Outcome = {};
  const check = async (f: Feature, body: () => Promise<string | null>) => {
    try {
      const why = await body();
      if (why !== null) out[f] = why;
    } catch (e) {
      out[f] = (e as Error).message;
    }
  };
  if (!(await pod.waitForLog((l) => l.msg === 'ready'))) {
    const logs = await pod.logs();
    const st = await pod.state();
    out.start = `no ready (exit ${st.exitCode}): ${logs.map((l) => l.msg).join(' | ')}`;
    return out;
  }
  const { bed, outside } = pod;
  let status: AgentStatus | null = null;
  await check('status', async () => {
    // The DaemonSet's readiness probe, in the container, with -o json.
    const probe = deploy.container.readinessProbe?.exec?.command ?? [];
    const r = await pod.exec([...probe, '-o', 'json']);
    if (r.code !== 0) return `readiness probe exited ${r.code}: ${r.stderr.trim()}`;
    status = JSON.parse(r.stdout) as AgentStatus;
    const s: AgentStatus = status;
    const ok =
      s.bridge.state === 'present' &&
      s.observers.netlink &&
      s.features.nativeAddon === true &&
      s.features.nftables === 'libnftables';
    return ok ? null : `status: ${JSON.stringify({ ...s.observers, ...s.features })}`;
  });
  await check('ebpf-observer', async () =>
    (status as AgentStatus | null)?.observers.bpf ? null : 'status shows observers.bpf false',
  );
  await check('sysctls', async () => {
    const values = await Promise.all(
      ['route_localnet', 'forwarding'].map(async (k) => {
        const r = await run(['sysctl', '-n', `net.ipv4.conf.${bed.bridge}.${k}`], {
          netns: bed.runnerNs,
        });
        return r.stdout.trim();
      }),
    );
    return values.every((v) => v === '1') ? null : `route_localnet, forwarding: ${values}`;
  });
  let sb: (Sandbox & { ip: string }) | null = null;
  await check('lease', async () => {
    const s = await bed.addSandbox();
    const lease = await pod.json<{ ip: string }>([
      'lease',
      'allocate',
      '--sandbox',
      's1',
      '--mac',
      s.mac,
    ]);
    await bed.setSandboxIp(s.netns, lease.ip);
    await bed.exec(s.netns, ['ping', '-c1', '-W1', bed.gateway], { check: false });
    sb = { ...s, ip: lease.ip };
    return null;
  });
  const leased = sb as (Sandbox & { ip: string }) | null;
  if (!leased) {
    for (const f of ['node-port', 'probe', 'duplicate'] as const) out[f] = 'no lease to test with';
  } else {
    await check('node-port', async () => {
      const srv = await NameServer.start(leased.netns, 'tcp', 8080, 's1');
      try {
        await pod.json([
          'port',
          'add',
          '--sandbox',
          's1',
          '--proto',
          'tcp',
          '--host-port',
          String(HOST_PORT),
          '--port',
          '8080',
        ]);
        const got = await askName(outside.netns, 'tcp', outside.runnerIp, HOST_PORT);
        return got === 's1' ? null : `outside client got ${JSON.stringify(got)}`;
      } finally {
        await srv.stop();
      }
    });
    await check('probe', async () => {
      const answers = await pod.json<{ mac: string }[]>(['probe', '--ip', leased.ip]);
      return answers.some((a) => a.mac === leased.mac)
        ? null
        : `answers ${JSON.stringify(answers)}`;
    });
    await check('duplicate', async () => {
      const rogue = await bed.addSandbox({ ip: leased.ip });
      await new Promise((r) => setTimeout(r, 1200)); // past the neighbour table's locktime
      await bed.exec(rogue.netns, ['ping', '-c2', '-i0.2', '-W1', bed.gateway], { check: false });
      const found = await poll(async () => {
        const all = await pod.json<Finding[]>(['conflicts']);
        return all.find((f) => f.kind === 'duplicate-ip' && f.ip === leased.ip) ?? null;
      }, 10_000);
      return found ? null : 'no duplicate-ip finding';
    });
    if (more) await more(pod, leased);
  }
  await check('stop', async () => {
    // From the agent's receipt of SIGTERM (its `stopping` line) to the container's exit.
    const stopping = await pod.terminate();
    const logs = await pod.logs();
    const asked = logs.filter((l) => l.msg === 'stopping').at(-1);
    const ms = stopping.finishedAt - Date.parse(String(asked?.time));
    t.comment(`SIGTERM to exit: ${ms} ms`);
    return stopping.exitCode === 0 && ms < 2000 ? null : `exit ${stopping.exitCode} after ${ms} ms`;
  });
  return out;
}

/** Ids of the maps pinned in the pod's bpffs, by pin name (the `links/` directory holds links). */
async function pinnedMaps(pod: PodmanPod): Promise<Record<string, number>> {
  const dir = join(pod.bpffs, 'bridgeward');
  const ids: Record<string, number> = {};
  const names = readdirSync(dir, { withFileTypes: true }).filter((e) => !e.isDirectory());
  for (const { name } of names) {
    const r = await run(['bpftool', '-j', 'map', 'show', 'pinned', join(dir, name)]);
    ids[name] = (JSON.parse(r.stdout) as { id: number }).id;
  }
  return ids;
}

/**
 * The DaemonSet comment's capability table: `-CAP: feature, ...` and `seccomp RuntimeDefault:
 * feature, ...` lines (text after the features, in parentheses, is for people).
 */
function documentedMatrix(): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of readFileSync(DAEMONSET_FILE, 'utf8').split('\n')) {
    const m = /^#\s+(-[A-Z_]+|seccomp RuntimeDefault):\s+([a-z-]+(?:, [a-z-]+)*)/.exec(line);
    if (m) rows.set(m[1] as string, (m[2] as string).split(', '));
  }
  return rows;
}

t.test('the image exists and its entry point is bridgeward', async (t) => {
  const r = await podman(['run', '--rm', '--network', 'none', IMAGE, '--version']);
  t.equal(r.stdout.trim(), VERSION, `podman run ${IMAGE} --version`);
  t.equal(deploy.container.image, `bridgeward:${VERSION}`, 'the DaemonSet runs this version');
  const status = await podman(['run', '--rm', '--network', 'none', IMAGE, 'status']);
  t.equal(status.code, 1, 'podman run IMAGE status: a client verb (no agent here)');
  t.match(status.stderr, /cannot reach the agent at \/run\/bridgeward\/api\.sock/);
});

/** Stops and restarts the container; says what did not survive. */
async function restartKeepsState(pod: PodmanPod, sb: Sandbox & { ip: string }): Promise<string[]> {
  const problems: string[] = [];
  const before = await pinnedMaps(pod);
  const leasesBefore = await pod.json<Lease[]>(['lease', 'list']);
  await pod.terminate();
  await pod.restart();
  if (!(await pod.waitForLog((l) => l.msg === 'ready', 2))) return ['not ready again'];
  const after = await pinnedMaps(pod);
  const leasesAfter = await pod.json<Lease[]>(['lease', 'list']);
  const mine = leasesAfter.find((l) => l.sandbox === 's1');
  if (mine?.ip !== sb.ip) problems.push(`lease of s1: ${JSON.stringify(mine)}`);
  if (leasesAfter.length !== leasesBefore.length) problems.push('lease count changed');
  if (Object.keys(before).length === 0) problems.push('no pinned maps');
  if (JSON.stringify(after) !== JSON.stringify(before)) {
    problems.push(`pinned maps ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
  }
  const ports = await pod.json<{ hostPort: number; addr: string }[]>(['port', 'list']);
  if (!ports.some((p) => p.hostPort === HOST_PORT && p.addr === sb.ip)) {
    problems.push(`node ports ${JSON.stringify(ports)}`);
  }
  return problems;
}

t.test(
  'with exactly the listed capabilities every feature works; restart keeps state',
  async (t) => {
    let restart: string[] = ['not run (no lease)'];
    const broken = await measure({}, async (pod, sb) => {
      restart = await restartKeepsState(pod, sb).catch((e: Error) => [e.message]);
    });
    t.same(
      broken,
      {},
      'ready, status, eBPF observer, sysctls, lease, node port, probe, duplicate, stop < 2 s',
    );
    t.same(restart, [], 'restarted container: ready, same lease and node port, same pinned maps');
  },
);

t.test(
  'each listed capability is needed: dropping it breaks what the DaemonSet says',
  async (t) => {
    const caps = addedCapabilities(deploy);
    const documented = documentedMatrix();
    const measured = new Map<string, string[]>();
    for (const cap of caps) {
      const broken = await measure({ capabilities: caps.filter((c) => c !== cap) });
      measured.set(`-${cap}`, brokenFeatures(broken));
      t.comment(`without ${cap}: ${JSON.stringify(broken)}`);
      t.not(brokenFeatures(broken).length, 0, `${cap} is needed`);
    }
    const seccomp = await measure({ seccomp: 'RuntimeDefault' });
    measured.set('seccomp RuntimeDefault', brokenFeatures(seccomp));
    t.comment(`with seccomp RuntimeDefault: ${JSON.stringify(seccomp)}`);
    t.same(
      Object.fromEntries(measured),
      Object.fromEntries(documented),
      'the DaemonSet comment is the measurement',
    );
  },
);
