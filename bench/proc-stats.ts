/**
 * What a process costs, read from /proc: on-CPU time of all its threads and its resident set.
 *
 * @example
 * const t0 = cpuSeconds(pid); ...; const used = cpuSeconds(pid) - t0;
 * rssMb(pid); // 61.2
 */
import { readdirSync, readFileSync } from 'node:fs';

/** On-CPU time of all threads of a process in seconds (/proc/PID/task/TID/schedstat, ns). */
export function cpuSeconds(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns / 1e9;
}

/** Resident set size of a process in MB (VmRSS). */
export function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
