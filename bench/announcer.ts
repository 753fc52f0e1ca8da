/**
 * Sends single gratuitous ARPs from inside a sandbox (a python AF_PACKET sender in its
 * namespace), each stamped with its CLOCK_MONOTONIC send time: the start of a detection latency
 * (`detect`, `guard`).
 *
 * @example
 * const a = new Announcer(sandbox);
 * const sentMs = await a.announce('10.8.64.2'); // compare with nowMs() when the finding arrives
 * a.close();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Sandbox } from '../src/testbed/testbed.js';

/**
 * The sender: one gratuitous ARP per line read, then its send time in ns, read right before the
 * send (a latency measured from it includes the send itself: an upper bound).
 */
const ANNOUNCER = `
import socket, struct, sys, time
mac = bytes.fromhex(sys.argv[1].replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
for line in sys.stdin:
    ip = socket.inet_aton(line.split()[1])
    frame = (b"\\xff" * 6 + mac + b"\\x08\\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
             + mac + ip + b"\\x00" * 6 + ip).ljust(60, b"\\x00")
    sent = time.monotonic_ns()
    s.send(frame)
    print(sent, flush=True)
`;

/** Sends single gratuitous ARPs from inside a sandbox; each resolves with the send time. */
export class Announcer {
  readonly #proc: ChildProcess;
  readonly #lines: AsyncIterator<string>;

  /** Starts the sender in `sandbox` (frames from its MAC). */
  constructor(sandbox: Sandbox) {
    this.#proc = spawn(
      'ip',
      ['netns', 'exec', sandbox.netns, 'python3', '-u', '-c', ANNOUNCER, sandbox.mac],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    this.#lines = createInterface({ input: this.#proc.stdout! })[Symbol.asyncIterator]();
  }

  /** Sends one gratuitous ARP for `ip`; resolves with the send time (CLOCK_MONOTONIC, ms). */
  async announce(ip: string): Promise<number> {
    this.#proc.stdin!.write(`announce ${ip}\n`);
    const r = await this.#lines.next();
    if (r.done) throw new Error('announcer exited');
    return Number(BigInt(r.value) / 1000n) / 1000;
  }

  /** Stops the sender. */
  close(): void {
    this.#proc.kill();
  }
}
