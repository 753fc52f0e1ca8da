/**
 * Checks the process may do what the agent does before it touches anything: capabilities from
 * `/proc/self/status` and the kernel features the observers need.
 *
 * @example
 * const caps = readCapabilities(); // { netAdmin: true, bpf: true, sysAdmin: true, netRaw: true }
 */
import { existsSync, readFileSync } from 'node:fs';
import { BridgewardError } from './errors.js';

/** The capabilities the agent uses. */
export interface Capabilities {
  /** CAP_NET_ADMIN: netlink changes, nftables, tc. */
  readonly netAdmin: boolean;
  /** CAP_NET_RAW: AF_PACKET probes. */
  readonly netRaw: boolean;
  /** CAP_BPF (or CAP_SYS_ADMIN): loading eBPF programs. */
  readonly bpf: boolean;
  /** CAP_SYS_ADMIN: bpffs mounts, older kernels' bpf. */
  readonly sysAdmin: boolean;
}

const CAP_NET_ADMIN = 12n;
const CAP_NET_RAW = 13n;
const CAP_SYS_ADMIN = 21n;
const CAP_BPF = 39n;

/** Reads the effective capability set of this process. */
export function readCapabilities(
  statusText: string = readFileSync('/proc/self/status', 'utf8'),
): Capabilities {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(statusText);
  const eff = m ? BigInt(`0x${m[1]}`) : 0n;
  const has = (bit: bigint) => (eff & (1n << bit)) !== 0n;
  return {
    netAdmin: has(CAP_NET_ADMIN),
    netRaw: has(CAP_NET_RAW),
    bpf: has(CAP_BPF) || has(CAP_SYS_ADMIN),
    sysAdmin: has(CAP_SYS_ADMIN),
  };
}

/** Kernel features the agent can use, probed from the filesystem. */
export interface KernelFeatures {
  /** BTF for CO-RE eBPF (`/sys/kernel/btf/vmlinux`). */
  readonly btf: boolean;
}

/** Probes kernel features. */
export function probeFeatures(): KernelFeatures {
  return { btf: existsSync('/sys/kernel/btf/vmlinux') };
}

/**
 * Fails fast when the agent cannot work at all.
 *
 * @throws BridgewardError MISSING_PRIVILEGE naming the missing capability.
 */
export function assertCanRun(caps: Capabilities = readCapabilities()): void {
  if (!caps.netAdmin) {
    throw new BridgewardError(
      'MISSING_PRIVILEGE',
      'bridgeward run needs CAP_NET_ADMIN (run as root or grant the capability)',
    );
  }
}
