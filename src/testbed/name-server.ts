/**
 * Tiny TCP/UDP servers and clients for traffic tests: a server in a namespace answers every
 * connection (TCP) or datagram (UDP) with its name; clients print what they got. They run as
 * `node -e` child processes under `ip netns exec`, so they use the namespace's network stack.
 *
 * @example
 * const srv = await NameServer.start(sandbox.netns, 'tcp', 8080, 's1');
 * await askName(clientNs, 'tcp', '10.255.0.1', 6667); // 's1'
 * await srv.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { run } from '../exec.js';

const SERVER = `
const [proto, port, name] = process.argv.slice(1);
if (proto === 'tcp') {
  require('net').createServer((s) => { s.on('error', () => {}); s.end(name); })
    .listen(Number(port), '0.0.0.0', () => console.log('listening'));
} else {
  const u = require('dgram').createSocket('udp4');
  u.on('message', (_m, r) => u.send(name, r.port, r.address));
  u.bind(Number(port), '0.0.0.0', () => console.log('listening'));
}`;

const CLIENT = `
const [proto, host, port, ms] = process.argv.slice(1);
const done = (t) => { process.stdout.write(t); process.exit(0); };
setTimeout(() => done(''), Number(ms));
if (proto === 'tcp') {
  let got = '';
  const s = require('net').connect(Number(port), host);
  s.on('data', (d) => (got += d)); s.on('end', () => done(got)); s.on('error', () => done(''));
} else {
  const u = require('dgram').createSocket('udp4');
  u.on('message', (m) => done(m.toString()));
  u.send('who', Number(port), host);
}`;

const PINGER = `
const [host, port, every] = process.argv.slice(1);
const u = require('dgram').createSocket('udp4');
u.on('message', (m) => console.log(m.toString()));
setInterval(() => u.send('who', Number(port), host), Number(every));`;

/** A name server running in a namespace. */
export class NameServer {
  readonly #child: ChildProcess;

  private constructor(child: ChildProcess) {
    this.#child = child;
  }

  /** Starts a server answering with `name` on `port` (all addresses); resolves once it listens. */
  static start(
    netns: string,
    proto: 'tcp' | 'udp',
    port: number,
    name: string,
  ): Promise<NameServer> {
    const child = spawn(
      'ip',
      ['netns', 'exec', netns, process.execPath, '-e', SERVER, proto, String(port), name],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    return new Promise((resolve, reject) => {
      let err = '';
      child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      child.stdout?.once('data', () => resolve(new NameServer(child)));
      child.once('exit', (code) => reject(new Error(`name server exited ${code}: ${err}`)));
    });
  }

  /** Stops the server. */
  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const gone = new Promise((r) => this.#child.once('exit', r));
    this.#child.kill('SIGKILL');
    await gone;
  }
}

/**
 * Connects (TCP) or sends one datagram (UDP) from a namespace and resolves to the answer, or ''
 * when nothing answered within `timeoutMs`.
 */
export async function askName(
  netns: string,
  proto: 'tcp' | 'udp',
  host: string,
  port: number,
  timeoutMs = 2000,
): Promise<string> {
  const r = await run(
    [process.execPath, '-e', CLIENT, proto, host, String(port), String(timeoutMs)],
    { netns, timeoutMs: timeoutMs + 5000 },
  );
  return r.stdout;
}

/** A UDP client that keeps sending from one source port and records every answer. */
export class UdpPinger {
  /** Answers so far, oldest first. */
  readonly answers: string[] = [];
  readonly #child: ChildProcess;

  private constructor(child: ChildProcess) {
    this.#child = child;
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      this.answers.push(...lines);
    });
  }

  /** Starts sending to host:port every `everyMs` from the namespace. */
  static start(netns: string, host: string, port: number, everyMs = 50): UdpPinger {
    return new UdpPinger(
      spawn(
        'ip',
        [
          'netns',
          'exec',
          netns,
          process.execPath,
          '-e',
          PINGER,
          host,
          String(port),
          String(everyMs),
        ],
        { stdio: ['ignore', 'pipe', 'ignore'] },
      ),
    );
  }

  /** Stops sending. */
  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const gone = new Promise((r) => this.#child.once('exit', r));
    this.#child.kill('SIGKILL');
    await gone;
  }
}
