/**
 * Runs nftables command buffers: in-process through libnftables (the addon's `nftRun`) when the
 * addon is available, otherwise by exec'ing the `nft` binary on the buffer. Either way
 * one buffer is one kernel transaction (all-or-nothing). Text commands are accepted in JSON mode
 * too (libnftables falls back to the text parser), so JSON mode only changes the output.
 *
 * @example
 * const nft = openNftDriver();
 * await nft.run('add element ip bridgeward nodeports { tcp . 80 : 10.8.64.2 . 80 }');
 * const listing = await nft.run('list table ip bridgeward', true);
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BridgewardError } from '../errors.js';
import { run } from '../exec.js';
import { loadNative, type NativeAddon } from '../native.js';

/** Which implementation runs the buffers (shown in `status`). */
export type NftDriverKind = 'libnftables' | 'nft-binary';

/** Runs nft command buffers. */
export interface NftDriver {
  /** The implementation in use. */
  readonly kind: NftDriverKind;
  /**
   * Runs one buffer as one transaction; resolves to its output (JSON text when `json`).
   *
   * @throws BridgewardError KERNEL_ERROR with nft's message when the buffer is rejected.
   */
  run(script: string, json?: boolean): Promise<string>;
}

/**
 * The in-process driver when the addon exports `nftRun`, else the `nft` binary. The process's
 * network namespace decides which tables either sees.
 */
export function openNftDriver(): NftDriver {
  const { addon } = loadNative();
  return addon && typeof addon.nftRun === 'function'
    ? libnftablesDriver(addon.nftRun.bind(addon))
    : nftBinaryDriver();
}

/** The in-process driver over the addon's `nftRun`. */
export function libnftablesDriver(nftRun: NativeAddon['nftRun']): NftDriver {
  return {
    kind: 'libnftables',
    run(script, json = false) {
      const r = nftRun(script, json);
      if (r.rc !== 0) return Promise.reject(nftError(r.error || r.output, script));
      return Promise.resolve(r.output);
    },
  };
}

/**
 * The driver that execs `nft [-j] -f FILE` per buffer (the buffer goes through a private temp
 * file: `-f -` opens /dev/stdin, which fails when stdin is a socket, as some process managers
 * give), optionally inside a network namespace (`ip netns exec`), e.g. for benchmarks that drive
 * a namespace from outside.
 */
export function nftBinaryDriver(netns?: string): NftDriver {
  return {
    kind: 'nft-binary',
    async run(script, json = false) {
      const dir = await mkdtemp(join(tmpdir(), 'bridgeward-nft-'));
      try {
        const file = join(dir, 'commands.nft');
        await writeFile(file, script, { mode: 0o600 });
        const argv = json ? ['nft', '-j', '-f', file] : ['nft', '-f', file];
        const r = await run(argv, { check: false, ...(netns ? { netns } : {}) });
        if (r.code !== 0) throw nftError(r.stderr || r.stdout, script);
        return r.stdout;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

function nftError(message: string, script: string): BridgewardError {
  const first = message.trim().split('\n')[0] ?? '';
  return new BridgewardError('KERNEL_ERROR', `nft: ${first || 'command failed'}`, {
    nft: message.trim().slice(0, 2000),
    command: script.slice(0, 200),
  });
}

/** True when an nft error says the object (e.g. the table) does not exist. */
export function isNoSuchObject(e: unknown): boolean {
  return e instanceof BridgewardError && /No such file or directory/.test(e.message);
}
