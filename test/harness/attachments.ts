/**
 * What of bridgeward's is attached to a port, as the kernel shows it: the TCX link pinned for
 * the port in the pin dir (live on that port) and the clsact filter with bridgeward's handle.
 *
 * @example
 * const a = await portAttachments(bed, s1, pinDir); // { tcxProgId: 42, clsact: 0 }
 */
import { join } from 'node:path';
import { run } from '../../src/exec.js';
import type { Sandbox, Testbed } from '../../src/testbed/testbed.js';

/** A port's bridgeward attachments. */
export interface PortAttachmentState {
  /** Program id of the live TCX link pinned for the port, or null. */
  readonly tcxProgId: number | null;
  /** How many clsact ingress filters with bridgeward's handle the port has. */
  readonly clsact: number;
}

/** Reads a port's attachments (`pinDir`: the observer's pin dir; its links are in `links/`). */
export async function portAttachments(
  bed: Testbed,
  port: Pick<Sandbox, 'hostIf' | 'hostIfindex'>,
  pinDir: string,
): Promise<PortAttachmentState> {
  const pin = join(pinDir, 'links', `tcx-ingress-${port.hostIfindex}`);
  const link = await run(['bpftool', '-j', 'link', 'show', 'pinned', pin], { check: false });
  const info = link.code === 0 ? (JSON.parse(link.stdout) as { prog_id?: number }) : {};
  const filters = await run(['tc', 'filter', 'show', 'dev', port.hostIf, 'ingress'], {
    netns: bed.runnerNs,
    check: false,
  });
  return {
    tcxProgId: info.prog_id ?? null,
    clsact: filters.stdout.match(/handle 0xbd arp_observer/g)?.length ?? 0,
  };
}
