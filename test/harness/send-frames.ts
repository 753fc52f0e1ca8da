/**
 * Sends raw Ethernet frames out of a sandbox's eth0 with the addon's AF_PACKET socket (a child
 * process inside the sandbox's namespace).
 *
 * @example
 * await sendFrames(bed, sandbox, [buildArpFrame({ ... })]);
 */
import { join } from 'node:path';
import { REPO_ROOT } from '../../src/native.js';
import type { Sandbox, Testbed } from '../../src/testbed/testbed.js';

const NATIVE = join(REPO_ROOT, 'dist', 'src', 'native.js');

/** Sends `frames`, in order, from `s`'s eth0. */
export async function sendFrames(bed: Testbed, s: Sandbox, frames: Buffer[]): Promise<void> {
  const script = `
    import { readFileSync } from 'node:fs';
    const { loadNative } = await import(${JSON.stringify(NATIVE)});
    const { addon, error } = loadNative();
    if (!addon) throw new Error(error);
    const ifindex = Number(readFileSync('/sys/class/net/eth0/ifindex', 'utf8'));
    const sock = new addon.PacketSocket(ifindex, 0x0806, () => {});
    for (const hex of readFileSync(0, 'utf8').split('\\n').filter(Boolean)) sock.send(Buffer.from(hex, 'hex'));
    sock.close();`;
  await bed.exec(s.netns, [process.execPath, '--input-type=module', '-e', script], {
    input: frames.map((f) => f.toString('hex')).join('\n'),
  });
}
