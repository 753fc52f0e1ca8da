/**
 * What a process tree costs, read from /proc: CPU time (user + system, every thread) of a
 * process, of the children it has already reaped (short-lived `nft`, `ip`, `conntrack` runs) and
 * of its living descendants (e.g. the agent's `nft monitor` child), and resident memory.
 *
 * @example
 * const before = treeCpuMs(pid);
 * await sleep(30_000);
 * const msPerS = (treeCpuMs(pid) - before) / 30;
 * rssMb(pid); // 52.3
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

const TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/**
 * CPU milliseconds one process has used so far (all its threads), with the children it has
 * reaped when `reaped` is set.
 */
function cpuMs(pid: number, reaped: boolean): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name: utime, stime, cutime, cstime are fields 14-17.
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  const ticks = (f[11] ?? 0) + (f[12] ?? 0) + (reaped ? (f[13] ?? 0) + (f[14] ?? 0) : 0);
  return (ticks * 1000) / TICKS_PER_S;
}

/** The living children of a process (over all its threads). */
function children(pid: number): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
    if (text) out.push(...text.split(' ').map(Number));
  }
  return out;
}

/** CPU milliseconds used so far by `pid`, the children it reaped and its living descendants. */
export function treeCpuMs(pid: number): number {
  let total = 0;
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop() as number;
    try {
      total += cpuMs(p, p === pid);
      todo.push(...children(p));
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

/** Resident set size of a process in MB. */
export function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}
