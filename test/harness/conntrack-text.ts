/**
 * Reads `conntrack -L` text (conntrack-tools) into flows: for test fixtures, and for tests that
 * check the kernel's table with the tool the agent no longer execs.
 *
 * @example
 * parseConntrack((await run(['conntrack', '-L'])).stdout).length;
 */
import type { Flow, Tuple } from '../../src/nodeport/conntrack-flows.js';

/**
 * Parses `conntrack -L` lines; lines of other protocols or shapes are skipped.
 *
 * @example
 * parseConntrack('udp 17 29 src=10.255.0.2 dst=10.255.0.1 sport=4100 dport=5300 [UNREPLIED] src=10.8.64.2 dst=10.255.0.2 sport=5353 dport=4100 mark=0 use=1');
 */
export function parseConntrack(text: string): Flow[] {
  const flows: Flow[] = [];
  for (const line of text.split('\n')) {
    const proto = line.split(/\s+/)[0];
    if (proto !== 'tcp' && proto !== 'udp') continue;
    const fields = [...line.matchAll(/\b(src|dst|sport|dport)=(\S+)/g)].map((m) => m[2] ?? '');
    if (fields.length < 8) continue;
    const tuple = (i: number): Tuple => ({
      src: fields[i] ?? '',
      dst: fields[i + 1] ?? '',
      sport: Number(fields[i + 2]),
      dport: Number(fields[i + 3]),
    });
    flows.push({ proto, orig: tuple(0), reply: tuple(4) });
  }
  return flows;
}
