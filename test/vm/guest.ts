/**
 * What the VM test's driver asks of the guest: systemd's view of a unit, the agent's journal,
 * a process's capabilities, the runtime script, and TCP and token requests from the guest. Few
 * child processes: under QEMU's TCG fork+exec costs ~60x what it costs on the host.
 *
 * @example
 * const unit = await unitState('bridgeward'); // { ActiveState: 'active', NRestarts: '0', ... }
 */
import { connect } from 'node:net';
import { readFile } from 'node:fs/promises';
import { run } from '../../src/exec.js';
import type { LogLine } from '../../src/testbed/agent-process.js';

/** Path of the runtime script in the guest (vagrant/runtime.sh). */
export const RUNTIME = '/usr/local/sbin/bw-runtime';

/** Properties of a systemd unit (`systemctl show`), as strings. */
export async function unitState(unit: string): Promise<Record<string, string>> {
  const r = await run(['systemctl', 'show', unit, '-p', 'ActiveState,SubState,NRestarts,MainPID']);
  return Object.fromEntries(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/** The agent's JSON log lines of this boot (`journalctl -b -u UNIT`); other lines are skipped. */
export async function journalLines(unit: string, boot = '0'): Promise<LogLine[]> {
  const r = await run(['journalctl', '-b', boot, '-u', unit, '-o', 'cat', '--no-pager']);
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

/** systemd's own lines about a unit in a boot (`Deactivated successfully.`, ...). */
export async function systemdLines(unit: string, boot: string): Promise<string[]> {
  const r = await run(['journalctl', '-b', boot, '-u', unit, '-o', 'cat', '--no-pager'], {
    check: false,
  });
  return r.stdout.split('\n').filter((l) => l.startsWith(`${unit}.service: `));
}

const CAP_NAMES: Record<number, string> = {
  12: 'CAP_NET_ADMIN',
  13: 'CAP_NET_RAW',
  21: 'CAP_SYS_ADMIN',
  38: 'CAP_PERFMON',
  39: 'CAP_BPF',
};

/** The effective capabilities of a process, by name (`cap_N` for ones without a name here). */
export async function effectiveCaps(pid: number): Promise<string[]> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? '0';
  const bits = BigInt(`0x${hex}`);
  const names: string[] = [];
  for (let b = 0; b < 64; b++) if ((bits >> BigInt(b)) & 1n) names.push(CAP_NAMES[b] ?? `cap_${b}`);
  return names.sort();
}

/** The capability names of a unit file's `CapabilityBoundingSet=`. */
export async function unitCaps(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8');
  return (/^CapabilityBoundingSet=(.*)$/m.exec(text)?.[1] ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .sort();
}

/** Runs the runtime script; its stdout, trimmed. */
export async function runtime(args: readonly string[]): Promise<string> {
  return (await run([RUNTIME, ...args], { timeoutMs: 120_000 })).stdout.trim();
}

/** Connects to host:port and resolves to what it answered before closing ('' on error or timeout). */
export function askTcp(host: string, port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const s = connect(port, host);
    const done = () => {
      s.destroy();
      resolve(got);
    };
    s.setTimeout(timeoutMs, done);
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('end', done);
    s.on('error', done);
  });
}

/** A token request from inside a sandbox's namespace with a secret: HTTP status and JWT claims. */
export async function tokenFrom(
  netns: string,
  url: string,
  secret: string,
): Promise<{ status: number; claims: Record<string, unknown> | null }> {
  const r = await run(
    [
      'curl',
      '-s',
      '--max-time',
      '10',
      '-w',
      '\n%{http_code}',
      '-H',
      `authorization: Bearer ${secret}`,
      url,
    ],
    { netns, check: false, timeoutMs: 20_000 },
  );
  const lines = r.stdout.trim().split('\n');
  const status = Number(lines.pop());
  const token = status === 200 ? (JSON.parse(lines.join('\n')) as { token: string }).token : null;
  const payload = token?.split('.')[1];
  return {
    status,
    claims: payload
      ? (JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>)
      : null,
  };
}

/** Polls `f` every `everyMs` until it returns a value other than null; null on timeout. */
export async function poll<T>(
  f: () => Promise<T | null>,
  timeoutMs: number,
  everyMs = 500,
): Promise<T | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== null || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
