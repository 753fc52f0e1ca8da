// The eBPF observer and the RFC 5227 probe on a real bridge: ports joining and leaving, real
// arping traffic from sandbox namespaces, silent duplicates found by the probe, a stream of
// malformed frames, and a restart that keeps the pinned history. The observer runs in the test
// bed's runner namespace (test/harness/bpf-observer-child.ts) on a bpffs this test mounts.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from '../../src/native.js';
import { run } from '../../src/exec.js';
import { BROADCAST_MAC, ZERO_MAC, buildArpFrame, parseArpFrame } from '../../src/net/arp.js';
import type { LiveEvidence, Observation } from '../../src/observe/types.js';
import { Testbed, type Sandbox } from '../../src/testbed/testbed.js';
import { portAttachments } from '../harness/attachments.js';
import { sendFrames } from '../harness/send-frames.js';

const CHILD = join(REPO_ROOT, 'dist', 'test', 'harness', 'bpf-observer-child.js');

/** The observer child process and what it reported. */
class ObserverChild {
  readonly obs: Observation[] = [];
  stderr = '';
  bridgeMac = '';
  readonly #child: ChildProcess;
  readonly #replies = new Map<number, (r: { data?: unknown; error?: string }) => void>();
  #nextId = 1;
  #ready: Promise<void>;

  /** `budget`: new bindings per second per port (0: no limit); `attach`: how ports get the program. */
  constructor(bed: Testbed, pinDir: string, budget = 0, attach = 'tcx') {
    const args = [CHILD, bed.bridge, pinDir, String(budget), attach];
    this.#child = spawn('ip', ['netns', 'exec', bed.runnerNs, process.execPath, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.#ready = new Promise((resolve, reject) => {
      this.#child.on('exit', (code) => reject(new Error(`child exited ${code}: ${this.stderr}`)));
      createInterface({ input: this.#child.stdout! }).on('line', (line) => {
        const m = JSON.parse(line) as {
          type: string;
          obs?: Observation;
          id?: number;
          bridge?: { mac: string };
        };
        if (m.type === 'ready') {
          this.bridgeMac = m.bridge!.mac;
          resolve();
        } else if (m.type === 'obs') this.obs.push(m.obs!);
        else if (m.type === 'reply')
          this.#replies.get(m.id!)?.(m as { data?: unknown; error?: string });
      });
    });
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  async cmd<T>(cmd: string, extra: Record<string, unknown> = {}): Promise<T> {
    const id = this.#nextId++;
    const reply = new Promise<{ data?: unknown; error?: string }>((r) => this.#replies.set(id, r));
    this.#child.stdin!.write(`${JSON.stringify({ id, cmd, ...extra })}\n`);
    const r = await reply;
    if (r.error) throw new Error(r.error);
    return r.data as T;
  }

  /** Waits until an observation matching `pred` arrived. */
  async waitObs(pred: (o: Observation) => boolean, what: string): Promise<Observation> {
    for (let i = 0; i < 300; i++) {
      const o = this.obs.find(pred);
      if (o) return o;
      await sleep(10);
    }
    throw new Error(`no observation: ${what}; got ${JSON.stringify(this.obs)}`);
  }

  /** Waits until the attached ports are exactly `ifindexes`. */
  async waitPorts(ifindexes: number[]): Promise<void> {
    const want = [...ifindexes].sort().join(',');
    let got = '';
    for (let i = 0; i < 300; i++) {
      const ports = await this.cmd<[number, string][]>('ports');
      got = ports
        .map(([i]) => i)
        .sort()
        .join(',');
      if (got === want) return;
      await sleep(10);
    }
    throw new Error(`ports ${got}, expected ${want}`);
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const exited = new Promise((r) => this.#child.once('exit', r));
    await this.cmd('close');
    await exited;
  }

  /** Pauses (SIGSTOP) or resumes (SIGCONT) the observer process. */
  pause(paused: boolean): void {
    this.#child.kill(paused ? 'SIGSTOP' : 'SIGCONT');
  }

  kill(): void {
    if (this.#child.exitCode === null) this.#child.kill('SIGKILL');
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** arping from a sandbox; exit status ignored (no answer is fine). */
function arping(bed: Testbed, s: Sandbox, args: string[]): Promise<unknown> {
  return bed.exec(s.netns, ['arping', '-q', '-I', 'eth0', ...args], { check: false });
}

t.test('eBPF observer and ARP probe on a real bridge', async (t) => {
  const bed = await Testbed.create({ subnet: '10.8.64.0/24' });
  const bpffs = mkdtempSync(join(tmpdir(), `bw-${bed.id}-bpffs-`));
  await run(['mount', '-t', 'bpf', 'bpf', bpffs]);
  const pinDir = join(bpffs, 'bridgeward');
  const children: ObserverChild[] = [];
  t.teardown(async () => {
    for (const c of children) c.kill();
    await bed.destroy();
    await run(['umount', bpffs], { check: false });
    rmSync(bpffs, { recursive: true, force: true });
  });
  const start = async (attach = 'tcx') => {
    const c = new ObserverChild(bed, pinDir, 0, attach);
    children.push(c);
    await c.ready();
    return c;
  };

  const s1 = await bed.addSandbox({ ip: '10.8.64.2' });
  const s2 = await bed.addSandbox({ ip: '10.8.64.3' });
  let obs = await start();
  await obs.waitPorts([s1.hostIfindex, s2.hostIfindex]);

  await t.test('requests and replies become observations, once per binding', async (t) => {
    await arping(bed, s1, ['-c', '1', '-w', '1', '10.8.64.3']);
    t.match(await obs.waitObs((o) => o.ip === '10.8.64.2', 'request from s1'), {
      source: 'bpf',
      kind: 'arp-request',
      mac: s1.mac,
      ifindex: s1.hostIfindex,
    });
    t.match(await obs.waitObs((o) => o.ip === '10.8.64.3', 'reply from s2'), {
      source: 'bpf',
      kind: 'arp-reply',
      mac: s2.mac,
      ifindex: s2.hostIfindex,
    });
    const at = obs.obs.find((o) => o.ip === '10.8.64.2')!.at;
    t.ok(Math.abs(at - Date.now()) < 5000, 'timestamps are epoch ms');
    const before = obs.obs.length;
    await arping(bed, s1, ['-c', '3', '-i', '0.2', '-w', '1', '10.8.64.3']);
    await sleep(200);
    t.equal(obs.obs.length, before, 'unchanged bindings make no observations');
  });

  const s3 = await bed.addSandbox({ ip: '10.8.64.2' });
  await t.test('a port that joins later is attached; a duplicate claim is seen', async (t) => {
    await obs.waitPorts([s1.hostIfindex, s2.hostIfindex, s3.hostIfindex]);
    const tc = await bed.ip(['link', 'show', s3.hostIf]);
    t.match(tc.stdout, /master rt0/);
    await arping(bed, s3, ['-U', '-c', '1', '-w', '1', '10.8.64.2']);
    t.match(
      await obs.waitObs((o) => o.ip === '10.8.64.2' && o.mac === s3.mac, 'announce from s3'),
      { kind: 'arp-announce', ifindex: s3.hostIfindex },
    );
    const live = await obs.cmd<LiveEvidence[]>('live');
    t.match(
      live.find((l) => l.ip === '10.8.64.2'),
      { macs: [s3.mac], ifindexes: [s3.hostIfindex], sources: ['bpf'] },
    );
    t.match(
      await portAttachments(bed, s3, pinDir),
      { tcxProgId: Number, clsact: 0 },
      'one bridgeward attachment: a pinned TCX link',
    );
  });

  await t.test('a port that leaves is forgotten, and so are its bindings', async (t) => {
    await bed.removeSandbox(s3);
    await obs.waitPorts([s1.hostIfindex, s2.hostIfindex]);
    const live = await obs.cmd<LiveEvidence[]>('live');
    t.notOk(
      live.find((l) => l.ip === '10.8.64.2'),
      'binding on the removed port is not live',
    );
    t.match(
      live.find((l) => l.ip === '10.8.64.3'),
      { macs: [s2.mac] },
    );
  });

  await t.test('live() shows a new binding at once, though it answered just before', async (t) => {
    const fresh = await bed.addSandbox({ ip: '10.8.64.4' });
    await obs.waitPorts([s1.hostIfindex, s2.hostIfindex, fresh.hostIfindex]);
    const before = await obs.cmd<LiveEvidence[]>('live');
    t.notOk(
      before.find((l) => l.ip === '10.8.64.4'),
      'the new sandbox has said nothing yet',
    );
    await arping(bed, fresh, ['-U', '-c', '1', '-w', '1', '10.8.64.4']);
    const after = await obs.cmd<LiveEvidence[]>('live');
    t.match(
      after.find((l) => l.ip === '10.8.64.4'),
      { macs: [fresh.mac], ifindexes: [fresh.hostIfindex], sources: ['bpf'] },
      'its event dropped the earlier dump',
    );
    await bed.removeSandbox(fresh);
    await obs.waitPorts([s1.hostIfindex, s2.hostIfindex]);
  });

  await t.test('the probe finds silent duplicates and nothing where nobody is', async (t) => {
    const s4 = await bed.addSandbox({ ip: '10.8.64.9' });
    const s5 = await bed.addSandbox({ ip: '10.8.64.9' });
    await obs.waitPorts([s1.hostIfindex, s2.hostIfindex, s4.hostIfindex, s5.hostIfindex]);
    t.notOk(
      obs.obs.find((o) => o.ip === '10.8.64.9'),
      'silent sandboxes are invisible to the passive observer',
    );
    const t0 = Date.now();
    const r = await obs.cmd<{ replies: { mac: string; at: number }[] }>('probe', {
      ip: '10.8.64.9',
      timeoutMs: 300,
    });
    t.same(r.replies.map((x) => x.mac).sort(), [s4.mac, s5.mac].sort(), 'both MACs answered');
    t.ok(r.replies.every((x) => x.at >= t0 && x.at <= Date.now()));
    const none = await obs.cmd<{ replies: unknown[] }>('probe', {
      ip: '10.8.64.50',
      timeoutMs: 200,
    });
    t.same(none.replies, []);
    t.notOk(
      obs.obs.find((o) => o.kind === 'arp-probe' && o.mac === obs.bridgeMac),
      "the agent's own probes are not observed on the ports",
    );
  });

  await t.test('a stream of malformed and random frames is counted; nothing breaks', async (t) => {
    await obs.cmd('stats'); // baseline
    const frames: Buffer[] = [];
    const valid = buildArpFrame({
      ethDst: BROADCAST_MAC,
      ethSrc: s1.mac,
      vlan: null,
      op: 'request',
      senderMac: s1.mac,
      senderIp: '10.8.64.2',
      targetMac: ZERO_MAC,
      targetIp: '10.8.64.1',
    });
    for (let len = 14; len < 42; len++) frames.push(Buffer.from(valid.subarray(0, len)));
    for (let i = 0; i < 400; i++) {
      const f = Buffer.from(valid);
      for (let j = 0; j < 4; j++) f[14 + ((i * 7 + j * 13) % 28)] = (i * 31 + j * 17) & 255;
      frames.push(f);
    }
    const expected = frames.filter((f) => {
      const p = parseArpFrame(f);
      return !p.ok && p.reason !== 'not-arp';
    }).length;
    t.ok(expected > 300, `${expected} malformed frames`);
    await sendFrames(bed, s1, frames);
    await sleep(200);
    const stats = await obs.cmd<{
      malformed: { labels: { port: string }; value: number }[];
      malformedTotal: { labels: { source: string }; value: number }[];
    }>('stats');
    t.equal(stats.malformed.find((v) => v.labels.port === s1.hostIf)?.value, expected);
    t.equal(stats.malformedTotal.find((v) => v.labels.source === 'bpf')?.value, expected);
    const live = await obs.cmd<LiveEvidence[]>('live');
    t.ok(live.length >= 2, 'still serving');
  });

  await t.test('an observer that fell behind re-syncs from the map', async (t) => {
    const n = 6000; // more new bindings than the ring buffer holds
    const frames: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const ip = `10.9.${i >> 8}.${i & 255}`;
      frames.push(
        buildArpFrame({
          ethDst: BROADCAST_MAC,
          ethSrc: s1.mac,
          vlan: null,
          op: 'request',
          senderMac: s1.mac,
          senderIp: ip,
          targetMac: ZERO_MAC,
          targetIp: ip,
        }),
      );
    }
    obs.pause(true);
    try {
      await sendFrames(bed, s1, frames);
    } finally {
      obs.pause(false);
    }
    const stats = await obs.cmd<{ resyncs: { labels: { source: string }; value: number }[] }>(
      'stats',
    );
    t.ok(stats.resyncs.find((v) => v.labels.source === 'bpf')?.value, 'a re-sync was counted');
    const seen = new Set<string>();
    for (let i = 0; i < 300 && seen.size < n; i++) {
      for (const o of obs.obs) if (o.ip?.startsWith('10.9.')) seen.add(o.ip);
      await sleep(10);
    }
    t.equal(seen.size, n, 'every new binding was observed, from the ring buffer or the map');
  });

  await t.test('a restart keeps the pinned history and what happened meanwhile', async (t) => {
    const s6 = await bed.addSandbox({ ip: '10.8.64.6' });
    const before = (await obs.cmd<[number, string][]>('ports')).map(([i]) => i);
    await obs.waitPorts([...before.filter((i) => i !== s6.hostIfindex), s6.hostIfindex]);
    await obs.close();
    // An earlier version attached with clsact filters: both attachments are on the ports now.
    obs = await start('clsact');
    await obs.waitPorts([...before.filter((i) => i !== s6.hostIfindex), s6.hostIfindex]);
    t.match(await portAttachments(bed, s1, pinDir), { tcxProgId: Number, clsact: 1 });
    await obs.close();
    await bed.ip(['link', 'set', s6.hostIf, 'nomaster']);
    await bed.exec(s1.netns, ['ip', 'addr', 'add', '10.8.64.77/24', 'dev', 'eth0']);
    await arping(bed, s1, ['-U', '-c', '1', '-w', '1', '-s', '10.8.64.77', '10.8.64.77']);
    await bed.exec(s2.netns, ['ip', 'addr', 'add', '10.8.64.78/24', 'dev', 'eth0']);
    await arping(bed, s2, ['-U', '-c', '1', '-w', '1', '-s', '10.8.64.78', '10.8.64.78']);
    obs = await start();
    await obs.waitObs((o) => o.ip === '10.8.64.78' && o.mac === s2.mac, 'queued while down');
    t.ok(
      obs.obs.find((o) => o.ip === '10.8.64.77'),
      'the claim from while the agent was down arrives',
    );
    const live = await obs.cmd<LiveEvidence[]>('live');
    t.match(
      live.find((l) => l.ip === '10.8.64.3'),
      { macs: [s2.mac] },
      'history from before the restart',
    );
    const { run: progRun } = await obs.cmd<{ run: { id: number } }>('stats');
    t.same(
      await portAttachments(bed, s1, pinDir),
      { tcxProgId: progRun.id, clsact: 0 },
      "the link runs the new agent's program; the earlier clsact filter is gone",
    );
    t.same(
      await portAttachments(bed, s6, pinDir),
      { tcxProgId: null, clsact: 0 },
      'a port that left while down lost its link and its filter',
    );
    await obs.close();
  });
});
