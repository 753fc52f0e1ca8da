/**
 * Counts the frames a sandbox receives while something happens: tcpdump on its eth0 with a
 * filter, started before `during` and stopped shortly after it.
 *
 * @example
 * const seen = await capture(c, 'udp port 9999', () => sendFrames(bed, b, frames)); // 0
 */
import { spawn } from 'node:child_process';
import type { Sandbox } from '../../src/testbed/testbed.js';

/** Packets `s` received on eth0 matching `filter` (a pcap filter) while `during` ran. */
export async function capture(
  s: Pick<Sandbox, 'netns'>,
  filter: string,
  during: () => Promise<unknown>,
): Promise<number> {
  const dump = spawn(
    'ip',
    [
      'netns',
      'exec',
      s.netns,
      'tcpdump',
      '-n',
      '-l',
      '-Q',
      'in',
      '-i',
      'eth0',
      ...filter.split(' '),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let lines = 0;
  dump.stdout.on('data', (d: Buffer) => (lines += d.toString().split('\n').filter(Boolean).length));
  const exited = new Promise((r) => dump.once('exit', r));
  await new Promise<void>((resolve, reject) => {
    let err = '';
    dump.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening on')) resolve();
    });
    dump.once('exit', (code) => reject(new Error(`tcpdump exited ${code}: ${err}`)));
  });
  try {
    await during();
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    dump.kill('SIGINT');
    await exited;
  }
  return lines;
}
