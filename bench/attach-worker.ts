/**
 * The in-namespace half of `npm run bench -- dataplane` and `guard`: run with `ip netns exec NS
 * node dist/bench/attach-worker.js PIN_DIR OBJECT IFINDEX...`, it loads the ARP program (OBJECT,
 * the agent's by default) with its maps pinned in PIN_DIR and attaches it to, or detaches it
 * from, the given ports the way the agent does (`PortAttachments`). Reads one command per line on
 * stdin and answers each with one JSON line: `attach tcx`, `attach clsact`, `detach`, `stats`;
 * `guard off|monitor|enforce` (the guard's mode), `bind IFINDEX MAC IP` (a port's guard
 * binding, as the agent writes it); `testrun [IFINDEX]`: the program's own mean ns on a 60-byte
 * UDP frame from 02:00:00:00:00:02 / 10.8.64.2 to 02:00:00:00:00:03 / 10.8.64.3 arriving on
 * IFINDEX (default: the loopback), BPF_PROG_TEST_RUN, 1,000,000 runs, median of 5.
 *
 * @example
 * ip netns exec bw-1a2b3c-r node dist/bench/attach-worker.js /tmp/bpffs/bw - 7 9
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { createLogger } from '../src/log.js';
import { ArpProgram } from '../src/observe/arp-program.js';
import { PortAttachments, type AttachMode } from '../src/observe/port-attachments.js';
import { GuardMaps } from '../src/guard/guard-maps.js';
import { DEFAULT_SPOOF_EVENT_BUDGET } from '../src/guard/bridge-guard.js';
import type { GuardMode } from '../src/guard/guard-records.js';
import { median } from './benchmark.js';

/** A 60-byte IPv4/UDP frame (18-byte payload) between the two sandboxes: the non-ARP path. */
const UDP_FRAME = Buffer.from(
  '02000000000302000000000208004500002e000040004011000' +
    '00a0840020a084003a0a5a0a5001a0000' +
    '000000000000000000000000000000000000',
  'hex',
);

const [pinDir = '', object = '-', ...portArgs] = process.argv.slice(2);
const ports = portArgs.map(Number);
const log = createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));
const prog = object === '-' ? ArpProgram.load(pinDir) : ArpProgram.load(pinDir, object);
const guard = new GuardMaps(prog.maps());
const byMode = new Map<AttachMode, PortAttachments>();
const attachments = (mode: AttachMode) => {
  let a = byMode.get(mode);
  if (!a) byMode.set(mode, (a = new PortAttachments(prog, pinDir, mode, log)));
  return a;
};

const answer = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, arg, ...rest] = line.trim().split(/\s+/);
  try {
    if (cmd === 'attach') {
      const a = attachments(arg === 'clsact' ? 'clsact' : 'tcx');
      answer({ modes: ports.map((p) => a.attach(p)) });
    } else if (cmd === 'detach') {
      answer({ detached: ports.map((p) => attachments('tcx').detach(p)) });
    } else if (cmd === 'stats') {
      answer(prog.runStats());
    } else if (cmd === 'guard') {
      const mode = (arg ?? 'off') as GuardMode;
      guard.configure({ mode, dropIpv6: false, events: DEFAULT_SPOOF_EVENT_BUDGET });
      answer({ mode });
    } else if (cmd === 'bind') {
      const [mac = '', ip = ''] = rest;
      guard.putPort(Number(arg), { mac, ip });
      answer({ bound: Number(arg) });
    } else if (cmd === 'testrun') {
      const ifindex = Number(arg ?? 0);
      const runs = Array.from({ length: 5 }, () => prog.testRunNs(UDP_FRAME, 1_000_000, ifindex));
      answer({ ns: median(runs) });
    } else {
      answer({ error: `unknown command ${line}` });
    }
  } catch (e) {
    answer({ error: (e as Error).message });
  }
}
prog.close();
