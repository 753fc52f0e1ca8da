// The VM test's driver, run as root inside the guest by scripts/vm-test.sh over one ssh session
// per phase (one long-lived process: fork+exec is ~60x slower under TCG than on the host).
//
//   node dist/test/vm/driver.js before   # a runner at work, then the replay is set up
//   node dist/test/vm/driver.js after    # after the reboot: every check of the replay
//
// Progress goes to stderr; the last stdout line is one JSON object: { phase, ok, checks, ... }.
// `before` saves what `after` needs in /var/lib/bw-vm-test/before.json (survives the reboot).
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { apiRequest } from '../../src/api/client.js';
import type { AgentStatus } from '../../src/api/status-routes.js';
import type { Finding } from '../../src/detect/finding.js';
import type { Lease, LeaseEvent, Quarantine } from '../../src/store/types.js';
import { run } from '../../src/exec.js';
import {
  askTcp,
  effectiveCaps,
  journalLines,
  poll,
  runtime,
  systemdLines,
  tokenFrom,
  unitCaps,
  unitState,
} from './guest.js';
import { withoutEach } from './capabilities.js';

const SOCKET = '/run/bridgeward/api.sock';
const STATE_DIR = '/var/lib/bridgeward';
const UNIT_FILE = '/etc/systemd/system/bridgeward.service';
const SAVED = '/var/lib/bw-vm-test/before.json';
const RUNTIME_STATE = '/var/lib/bw-runtime/sandboxes';
const GATEWAY = '10.8.64.1';
const TOKEN_URL = `http://${GATEWAY}:7123/v1/token`;
const NODE_PORT = 6667;
const SANDBOXES = ['app-1', 'app-2', 'app-3', 'app-4', 'app-5', 'app-6'];
/** The node port's sandbox (its workload answers its name on 8080). */
const SERVED = 'app-1';
/** Comes back after the reboot with the address of `STOLEN`'s lease. */
const DUPLICATE = 'app-5';
const STOLEN = 'app-2';
/** Never comes back. */
const GONE = 'app-6';
/** Come back with their own addresses. */
const RESTORED = ['app-1', 'app-2', 'app-3', 'app-4'];

/** What `before` leaves for `after`. */
interface Saved {
  readonly bootId: string;
  readonly at: string;
  readonly leases: Lease[];
  readonly secret: string;
}

const checks: { name: string; ok: boolean; detail?: unknown }[] = [];
const t0 = Date.now();

function check(name: string, ok: boolean, detail?: unknown): boolean {
  checks.push({ name, ok, ...(detail === undefined ? {} : { detail }) });
  note(
    `${ok ? 'ok  ' : 'FAIL'} ${name}${detail === undefined ? '' : ` ${JSON.stringify(detail)}`}`,
  );
  return ok;
}

function note(text: string): void {
  process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${text}\n`);
}

function api<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  return apiRequest<T>(SOCKET, method, path, body);
}

/** A client verb as an operator types it; parsed `-o json` output. */
async function cli<T>(args: readonly string[]): Promise<T> {
  const r = await run(['bridgeward', ...args, '-o', 'json'], { timeoutMs: 60_000 });
  return JSON.parse(r.stdout) as T;
}

async function bootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
}

/** Waits until the agent answers with the bridge present. */
function bridgePresent(timeoutMs: number): Promise<AgentStatus | null> {
  return poll(async () => {
    const s = await api<AgentStatus>('GET', '/v1/status').catch(() => null);
    return s?.bridge.state === 'present' ? s : null;
  }, timeoutMs);
}

/** Every sandbox says hello to its gateway (its first traffic), so the bridge sees it. */
async function speak(names: readonly string[]): Promise<void> {
  for (const n of names)
    await run(['ping', '-c1', '-W2', GATEWAY], { netns: n, check: false, timeoutMs: 10_000 });
}

async function before(): Promise<void> {
  const up = await bridgePresent(300_000);
  if (!check('agent serving, rt0 created by the runtime', up !== null, up?.bridge)) return;
  const ips: string[] = [];
  for (const n of SANDBOXES) ips.push(await runtime(['add', n, ...(n === SERVED ? ['8080'] : [])]));
  await speak(SANDBOXES);
  check('six sandboxes, six distinct addresses', new Set(ips).size === 6, ips);
  const leases = await poll(async () => {
    const all = await api<Lease[]>('GET', '/v1/leases');
    return all.every((l) => l.ifindex !== null) ? all : null;
  }, 60_000);
  check('every lease bound to its port', leases !== null);
  await cli([
    'port',
    'add',
    '--sandbox',
    SERVED,
    '--proto',
    'tcp',
    '--host-port',
    `${NODE_PORT}`,
    '--port',
    '8080',
  ]);
  const reg = await cli<{ secret: string }>([
    'identity',
    'register',
    '--sandbox',
    SERVED,
    '--app',
    'web',
  ]);
  const answer = await poll(async () => (await askTcp('127.0.0.1', NODE_PORT)) || null, 60_000);
  check(`node port ${NODE_PORT} from localhost`, answer === SERVED, answer);
  const token = await tokenFrom(SERVED, TOKEN_URL, reg.secret);
  check('a token with the secret', token.status === 200, token.status);

  // The replay's script, in the runtime's own record: after the reboot DUPLICATE comes back with
  // STOLEN's address (a runtime whose record went wrong) and GONE does not come back.
  const ipOf = (n: string) => ips[SANDBOXES.indexOf(n)] as string;
  const lines = (await readFile(RUNTIME_STATE, 'utf8')).trim().split('\n');
  const replay = lines
    .filter((l) => !l.startsWith(`${GONE} `))
    .map((l) => (l.startsWith(`${DUPLICATE} `) ? l.replace(ipOf(DUPLICATE), ipOf(STOLEN)) : l));
  await writeFile(RUNTIME_STATE, `${replay.join('\n')}\n`);
  const saved: Saved = {
    bootId: await bootId(),
    at: new Date().toISOString(),
    leases: await api<Lease[]>('GET', '/v1/leases'),
    secret: reg.secret,
  };
  await mkdir('/var/lib/bw-vm-test', { recursive: true });
  await writeFile(SAVED, JSON.stringify(saved), { mode: 0o600 });
}

async function after(): Promise<Record<string, unknown>> {
  const saved = JSON.parse(await readFile(SAVED, 'utf8')) as Saved;
  const leaseOf = (n: string) => saved.leases.find((l) => l.sandbox === n) as Lease;
  check('a real reboot (new boot id)', (await bootId()) !== saved.bootId);
  const restored = await poll(async () => {
    const u = await unitState('bw-runtime');
    return u.ActiveState === 'active' || u.ActiveState === 'failed' ? u : null;
  }, 600_000);
  check('the runtime restored its sandboxes at boot', restored?.ActiveState === 'active', restored);
  const unit0 = await unitState('bridgeward');
  check(
    'agent active under systemd, no restart',
    unit0.ActiveState === 'active' && unit0.NRestarts === '0',
    unit0,
  );

  const logs = await journalLines('bridgeward');
  const ready = logs.filter((l) => l.msg === 'ready');
  const s = await bridgePresent(60_000);
  const upLine = logs.find((l) => l.msg === 'bridge up' && l.ifindex === s?.bridge.ifindex);
  check(
    'started before rt0: waited',
    logs.some((l) => l.msg === 'waiting for bridge rt0 to appear'),
  );
  check(
    'ready once, with rt0 absent',
    ready.length === 1 && ready[0]?.bridgeState === 'absent',
    ready,
  );
  check(
    'then `bridge up` for the new rt0, no step failed',
    upLine !== undefined && (upLine.failed as unknown[]).length === 0,
    upLine,
  );
  const bpfError = logs.find((l) => l.msg === 'eBPF observer unavailable; netlink observes alone');
  check('the eBPF observer runs on the guest kernel', s?.observers.bpf === true, bpfError?.err);

  const back = SANDBOXES.filter((n) => n !== GONE);
  await speak(back);
  const stolenIp = leaseOf(STOLEN).ip;
  const dup = await poll(async () => {
    const all = await api<Finding[]>('GET', '/v1/conflicts');
    return all.find((f) => f.kind === 'duplicate-ip' && f.ip === stolenIp) ?? null;
  }, 60_000);
  const macs = [leaseOf(STOLEN).mac, leaseOf(DUPLICATE).mac];
  check(
    'the duplicate is found',
    dup !== null && macs.every((m) => dup.macs.includes(m as string)),
    dup && { ip: dup.ip, macs: dup.macs, ports: dup.ports },
  );
  const quarantine = await api<Quarantine[]>('GET', '/v1/quarantine');
  const q = quarantine.find((x) => x.ip === stolenIp);
  check('and quarantined', q?.reason === 'duplicate-ip', q);

  const fresh = [await runtime(['add', 'new-1']), await runtime(['add', 'new-2'])];
  const old = new Set(saved.leases.map((l) => l.ip));
  const leases = await api<Lease[]>('GET', '/v1/leases');
  check(
    'no address handed out twice',
    fresh.every((ip) => !old.has(ip)) &&
      new Set(fresh).size === 2 &&
      new Set(leases.map((l) => l.ip)).size === leases.length,
    { fresh, leases: leases.length },
  );

  const answer = await poll(async () => (await askTcp('127.0.0.1', NODE_PORT)) || null, 120_000);
  check(`node port ${NODE_PORT} from localhost`, answer === SERVED, answer);
  const token = await tokenFrom(SERVED, TOKEN_URL, saved.secret);
  check(
    'the old identity secret still gets a token',
    token.status === 200 && token.claims?.sub === `sandbox:${SERVED}`,
    token,
  );

  const history = await cli<LeaseEvent[]>(['lease', 'history', '--limit', '10000']);
  const bootAt = new Date(
    Date.now() - Number((await readFile('/proc/uptime', 'utf8')).split(' ')[0]) * 1000,
  ).toISOString();
  const allocated = history
    .filter((e) => e.kind === 'allocated' && e.at < saved.at)
    .map((e) => e.sandbox);
  const since = history.filter((e) => e.at > bootAt);
  const ports = await Promise.all(
    RESTORED.map(async (n) => Number(await readFile(`/sys/class/net/v-${n}/ifindex`, 'utf8'))),
  );
  check(
    'lease history: the allocations before the reboot',
    SANDBOXES.every((n) => allocated.includes(n)),
    allocated,
  );
  check(
    'lease history: the sandboxes back bound to their new ports, the finding, the quarantine',
    RESTORED.every((n, i) =>
      since.some((e) => e.kind === 'bound' && e.sandbox === n && e.detail.ifindex === ports[i]),
    ) &&
      since.some((e) => e.kind === 'finding' && e.ip === stolenIp) &&
      since.some((e) => e.kind === 'quarantined' && e.ip === stolenIp),
    since.map((e) => `${e.kind} ${e.sandbox ?? e.ip ?? ''} ${e.detail.ifindex ?? ''}`.trim()),
  );

  await cli(['sync', '--sandboxes', [...back, 'new-1', 'new-2'].join(',')]);
  const t = Date.now();
  const reaped = await poll(
    async () =>
      (await api<Lease[]>('GET', '/v1/leases')).some((l) => l.sandbox === GONE) ? null : true,
    180_000,
  );
  check(`sync reaps ${GONE}, which never came back`, reaped === true, {
    seconds: Math.round((Date.now() - t) / 1000),
  });

  const unit1 = await unitState('bridgeward');
  check(
    'still the same process, no restart',
    unit1.MainPID === unit0.MainPID && unit1.NRestarts === '0' && unit1.ActiveState === 'active',
    unit1,
  );
  const caps = await effectiveCaps(Number(unit1.MainPID));
  const wanted = await unitCaps(UNIT_FILE);
  check("the agent's capabilities are the unit's", caps.join() === wanted.join(), caps);
  const stateDir = await stat(STATE_DIR);
  const db = await stat(`${STATE_DIR}/leases.db`).catch(() => null);
  check(
    'state directory 0700 with the store',
    (stateDir.mode & 0o777) === 0o700 && db !== null,
    (stateDir.mode & 0o777).toString(8),
  );
  const sock = await stat(SOCKET);
  check('socket in the runtime directory, 0600', sock.isSocket() && (sock.mode & 0o777) === 0o600);
  const shutdown = await systemdLines('bridgeward', '-1');
  check(
    'stopped cleanly at the reboot',
    shutdown.some((l) => l.includes('Deactivated successfully')) &&
      !shutdown.some((l) => /timed out|SIGKILL|Failed/.test(l)),
    shutdown,
  );

  // Restart=always: a crash is a rebuild from the store.
  await run(['kill', '-KILL', unit1.MainPID as string]);
  const k = Date.now();
  const unit2 = await poll(async () => {
    const u = await unitState('bridgeward');
    const st = await api<AgentStatus>('GET', '/v1/status').catch(() => null);
    return u.NRestarts === '1' && st?.bridge.state === 'present' ? u : null;
  }, 180_000);
  const restartSeconds = Math.round((Date.now() - k) / 1000);
  const afterCrash = await api<Lease[]>('GET', '/v1/leases');
  check(
    'killed: restarted by systemd, leases kept',
    unit2 !== null && unit2.MainPID !== unit1.MainPID && afterCrash.length === leases.length - 1,
    { unit2, restartSeconds },
  );
  const answer2 = await poll(async () => (await askTcp('127.0.0.1', NODE_PORT)) || null, 60_000);
  check(`node port ${NODE_PORT} after the restart`, answer2 === SERVED, answer2);
  const capabilities = await withoutEach(wanted, SOCKET);
  check(
    "each of the unit's capabilities is needed",
    Object.values(capabilities).every((broken) => broken.length > 0),
    capabilities,
  );
  return {
    ebpf: {
      observer: s?.observers.bpf ?? null,
      btf: s?.features.btf ?? null,
      error: bpfError?.err ?? null,
    },
    nftables: s?.features.nftables ?? null,
    restartSeconds,
    capabilities,
  };
}

async function main(phase: string | undefined): Promise<void> {
  let extra: Record<string, unknown> = {};
  try {
    if (phase === 'before') await before();
    else if (phase === 'after') extra = await after();
    else throw new Error('usage: driver.js before|after');
  } catch (err) {
    check('driver ran to the end', false, err instanceof Error ? err.message : String(err));
  }
  const ok = checks.every((c) => c.ok);
  const seconds = Math.round((Date.now() - t0) / 1000);
  process.stdout.write(`${JSON.stringify({ phase, ok, seconds, checks, ...extra })}\n`);
  process.exitCode = ok ? 0 : 1;
}

await main(process.argv[2]);
