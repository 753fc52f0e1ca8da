/**
 * `bridgeward doctor`: checks this host for what the agent needs (kernel, BTF, bpffs, nftables,
 * tc/clsact, privileges, the bridge and its sysctls) and, when an agent answers on the socket,
 * whether it follows the bridge that is there now; says how to fix what is missing.
 * `systeminformation` is imported only when the checks run, so other verbs never load it.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { AgentStatus } from '../api/status-routes.js';
import { callAgent } from './call.js';
import { loadNative } from '../native.js';
import { readCapabilities, probeFeatures } from '../preflight.js';
import { run } from '../exec.js';
import { parseVerbArgs, resolveOutput, resolveSocket } from './args.js';
import { printResult } from './output.js';
import type { Verb } from './verb.js';

/** One doctor finding. */
export interface Check {
  /** What was checked. */
  readonly check: string;
  /** ok, warn (works, degraded) or fail (the agent cannot run). */
  readonly result: 'ok' | 'warn' | 'fail';
  /** What was found. */
  readonly detail: string;
  /** How to fix it, when not ok. */
  readonly fix: string | null;
}

/** Minimum kernel for BPF ring buffers (5.8). */
const MIN_KERNEL: readonly [number, number] = [5, 8];

/** Compares a kernel release like `6.1.0-18-amd64` with a minimum major.minor. */
export function kernelAtLeast(release: string, min: readonly [number, number]): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const [maj, minor] = [Number(m[1]), Number(m[2])];
  return maj > min[0] || (maj === min[0] && minor >= min[1]);
}

/** Recommended values of the bridge's IPv4 sysctls, with the reason shown when they differ. */
export const BRIDGE_SYSCTLS: readonly { key: string; want: string; why: string }[] = [
  {
    key: 'rp_filter',
    want: '1',
    why: 'strict reverse-path filtering drops spoofed sandbox sources',
  },
  { key: 'arp_ignore', want: '1', why: 'answer ARP only for addresses on the bridge itself' },
  { key: 'arp_notify', want: '1', why: 'announce gateway address changes with gratuitous ARP' },
  { key: 'log_martians', want: '1', why: 'log martian sources, a symptom of duplicate addresses' },
];

function sysctlPath(bridge: string, key: string): string {
  return `/proc/sys/net/ipv4/conf/${bridge}/${key}`;
}

/** What the link named `bridge` is on this host, read from sysfs. */
export function bridgeOnHost(bridge: string): {
  state: 'present' | 'absent' | 'not-a-bridge';
  ifindex: number | null;
} {
  const dir = `/sys/class/net/${bridge}`;
  if (!existsSync(dir)) return { state: 'absent', ifindex: null };
  const ifindex = Number(readFileSync(`${dir}/ifindex`, 'utf8').trim());
  return { state: existsSync(`${dir}/bridge`) ? 'present' : 'not-a-bridge', ifindex };
}

async function hasCommand(cmd: string, args: string[]): Promise<boolean> {
  try {
    return (await run([cmd, ...args], { check: false })).code === 0;
  } catch {
    return false;
  }
}

/** Runs every check for a bridge name; `agent` is the running agent's status when it answers. */
export async function runChecks(
  bridge: string,
  agent: AgentStatus | null = null,
): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (
    check: string,
    ok: boolean,
    detail: string,
    fix: string,
    severity: 'warn' | 'fail' = 'fail',
  ) => checks.push({ check, result: ok ? 'ok' : severity, detail, fix: ok ? null : fix });

  const { default: si } = await import('systeminformation');
  const os = await si.osInfo();
  add(
    'kernel',
    kernelAtLeast(os.kernel, MIN_KERNEL),
    `${os.distro} ${os.release}, kernel ${os.kernel}`,
    `upgrade to kernel >= ${MIN_KERNEL.join('.')} for BPF ring buffers`,
    'warn',
  );
  const caps = readCapabilities();
  add(
    'CAP_NET_ADMIN',
    caps.netAdmin,
    caps.netAdmin ? 'present' : 'missing',
    'run as root or grant CAP_NET_ADMIN',
  );
  add(
    'CAP_NET_RAW',
    caps.netRaw,
    caps.netRaw ? 'present' : 'missing',
    'grant CAP_NET_RAW for ARP probes',
    'warn',
  );
  add(
    'CAP_BPF',
    caps.bpf,
    caps.bpf ? 'present' : 'missing',
    'grant CAP_BPF (or CAP_SYS_ADMIN) for the eBPF observer',
    'warn',
  );
  const { btf } = probeFeatures();
  add(
    'BTF',
    btf,
    btf ? '/sys/kernel/btf/vmlinux present' : 'no /sys/kernel/btf/vmlinux',
    'use a kernel built with CONFIG_DEBUG_INFO_BTF=y; netlink observes alone meanwhile',
    'warn',
  );
  const mounts = readFileSync('/proc/mounts', 'utf8');
  const bpffs = /\sbpf\s/.test(mounts);
  add(
    'bpffs',
    bpffs,
    bpffs ? 'mounted' : 'not mounted',
    'mount -t bpf bpf /sys/fs/bpf (the agent mounts it itself when it can)',
    'warn',
  );
  const native = loadNative();
  add(
    'native addon',
    native.addon !== null,
    native.addon ? `libbpf ${native.addon.version().libbpf}` : (native.error ?? ''),
    'run npm run build (needs libbpf-dev, libnftables-dev)',
    'warn',
  );
  const nft = await hasCommand('nft', ['--version']);
  add(
    'nftables',
    nft || native.addon !== null,
    nft ? 'nft present' : 'nft binary missing',
    'apt-get install nftables',
  );
  const tc = await hasCommand('tc', ['-V']);
  add(
    'tc/clsact',
    tc && existsSync('/proc/net/psched'),
    tc ? 'tc present, qdisc scheduler available' : 'tc missing',
    'apt-get install iproute2',
  );
  const host = bridgeOnHost(bridge);
  const present = host.state === 'present';
  add(
    `bridge ${bridge}`,
    present,
    present
      ? `present (ifindex ${host.ifindex})`
      : host.state === 'absent'
        ? 'not found (the agent waits for it)'
        : `${bridge} exists but is not a bridge (the agent waits for a bridge of that name)`,
    host.state === 'absent'
      ? `create it: ip link add ${bridge} type bridge`
      : `free the name: ip link del ${bridge}; then ip link add ${bridge} type bridge`,
    'warn',
  );
  if (present) {
    for (const s of BRIDGE_SYSCTLS) {
      const value = readFileSync(sysctlPath(bridge, s.key), 'utf8').trim();
      add(
        `${bridge} ${s.key}`,
        value === s.want,
        `${value} (recommended ${s.want}: ${s.why})`,
        `sysctl -w net.ipv4.conf.${bridge}.${s.key}=${s.want}`,
        'warn',
      );
    }
  }
  if (agent) {
    const followed = agent.bridge.ifindex === host.ifindex && agent.bridge.state === host.state;
    add(
      'agent bridge view',
      followed && present,
      `the agent sees: ${agent.bridge.detail} since ${agent.bridge.since}`,
      followed
        ? `the agent waits for ${bridge}; nothing to do once the runtime creates it`
        : `the agent's view differs from the host's (${host.state}, ifindex ${host.ifindex}); see its log`,
      'warn',
    );
  }
  return checks;
}

/** The `doctor` verb. */
export const doctorVerbs: Verb[] = [
  {
    words: ['doctor'],
    summary: 'check this host for what the agent needs and say how to fix what is missing',
    usage: 'bridgeward doctor [--bridge NAME] [--socket PATH] [-o table|json]',
    async run(argv) {
      const { values } = parseVerbArgs(argv, {
        bridge: { type: 'string' },
        socket: { type: 'string' },
        output: { type: 'string', short: 'o' },
      });
      const output = resolveOutput(values.output);
      // An agent that answers says which bridge it follows; none answering is not a finding here.
      const agent = await callAgent<AgentStatus>(
        { socket: resolveSocket(values.socket) },
        'GET',
        '/v1/status',
      ).catch(() => null);
      const checks = await runChecks(values.bridge ?? agent?.bridge.name ?? 'rt0', agent);
      printResult(output, checks, [
        ['CHECK', (c) => c.check],
        ['RESULT', (c) => c.result],
        ['DETAIL', (c) => c.detail],
        ['FIX', (c) => c.fix],
      ]);
      return checks.some((c) => c.result === 'fail') ? 1 : 0;
    },
  },
];
