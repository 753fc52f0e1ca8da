// The detection pipeline against a real SQLite store: quarantine at once, history of raised and
// cleared findings, its own quarantine lifted after the hold-down, others' quarantine kept.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { ConflictDetector } from '../../src/detect/detector.js';
import { DetectionPipeline } from '../../src/detect/pipeline.js';
import { Alerts } from '../../src/alerts/alerts.js';
import { FindingStream } from '../../src/alerts/finding-stream.js';
import type { FindingChange } from '../../src/detect/finding.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { parseCidr } from '../../src/net/ipv4.js';
import type { Observation } from '../../src/observe/types.js';

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';

function setup(t: Test, extra: { held?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'bw-pipeline-'));
  const store = openSqliteStore(join(dir, 'leases.db'));
  let now = 1_000_000;
  const log = createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));
  const metrics = createMetrics();
  const stream = new FindingStream();
  const seen: FindingChange[] = [];
  stream.subscribe((c) => seen.push(c));
  const detector = new ConflictDetector({
    subnet: parseCidr('10.8.64.0/24'),
    gateway: '10.8.64.1',
    hostMacs: [],
    bridgeIfindex: 2,
    holdDownMs: 5000,
  });
  const alerts = new Alerts({ log, metrics, stream, webhook: null });
  const pipeline = new DetectionPipeline({
    detector,
    alerts,
    store,
    log,
    metrics,
    now: () => now,
    maxQueue: 4,
    ...extra,
  });
  t.teardown(async () => {
    await pipeline.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const arp = (ip: string, mac: string, ifindex: number): Observation => ({
    source: 'bpf',
    kind: 'arp-request',
    ip,
    mac,
    ifindex,
    at: now,
  });
  return { store, pipeline, detector, seen, metrics, arp, advance: (ms: number) => (now += ms) };
}

t.test('duplicate-ip: quarantined at once, recorded, lifted after the hold-down', async (t) => {
  const { store, pipeline, seen, arp, advance } = setup(t);
  await store.claim({ sandbox: 'app-a', ip: '10.8.64.2', mac: A, at: new Date() });
  pipeline.portUp(7, 'vetha');
  pipeline.portUp(9, 'vethb');
  pipeline.submit(arp('10.8.64.2', A, 7));
  pipeline.submit(arp('10.8.64.2', B, 9));
  await pipeline.idle();
  t.same(
    seen.map((c) => `${c.type} ${c.finding.kind}`),
    ['raised duplicate-ip', 'raised lease-mismatch'],
  );
  const q = (await store.snapshot()).quarantine.find((r) => r.ip === '10.8.64.2');
  t.equal(q?.reason, 'duplicate-ip');
  t.same(q?.evidence.ports, ['vetha', 'vethb']);

  pipeline.portGone(9);
  advance(4999);
  pipeline.tick();
  await pipeline.idle();
  t.equal(seen.length, 2, 'hold-down still running');
  advance(1);
  pipeline.tick();
  await pipeline.idle();
  t.same(
    seen.slice(2).map((c) => `${c.type} ${c.finding.kind}`),
    ['cleared duplicate-ip', 'cleared lease-mismatch'],
  );
  t.same((await store.snapshot()).quarantine, [], 'own quarantine lifted');
  const history = await store.history({ ip: '10.8.64.2' });
  const findings = history.filter((e) => e.kind === 'finding');
  t.same(
    findings.map((e) => `${e.detail.event} ${e.detail.finding}`),
    [
      'raised duplicate-ip',
      'raised lease-mismatch',
      'cleared duplicate-ip',
      'cleared lease-mismatch',
    ],
    'the history keeps them',
  );
  t.ok(history.some((e) => e.kind === 'quarantine-cleared'));
});

t.test(
  'a conflict finding takes over an automatic reservation; an unleased claim does not',
  async (t) => {
    const { store, pipeline, arp, advance } = setup(t);
    const at = new Date();
    for (const ip of ['10.8.64.5', '10.8.64.6']) {
      await store.quarantine(
        { ip, reason: 'live-unleased', evidence: {}, since: at.toISOString(), until: null },
        at,
      );
    }
    pipeline.portUp(7, 'vetha');
    pipeline.portUp(9, 'vethb');
    pipeline.submit(arp('10.8.64.5', A, 7));
    pipeline.submit(arp('10.8.64.5', B, 9));
    pipeline.submit(arp('10.8.64.6', B, 9));
    await pipeline.idle();
    const byIp = new Map((await store.snapshot()).quarantine.map((q) => [q.ip, q]));
    t.equal(byIp.get('10.8.64.5')?.reason, 'duplicate-ip', 'the conflict names the reason');
    t.same(byIp.get('10.8.64.5')?.evidence.macs, [A, B], 'with its evidence');
    t.equal(byIp.get('10.8.64.6')?.reason, 'live-unleased', 'an unleased claim leaves it');
    pipeline.portGone(7);
    pipeline.portGone(9);
    advance(6000);
    pipeline.tick();
    await pipeline.idle();
    t.same(
      (await store.snapshot()).quarantine.map((q) => [q.ip, q.reason]),
      [['10.8.64.6', 'live-unleased']],
      'the conflict lifted its own; the reservation stays for the reconciler to lift',
    );
  },
);

t.test('a quarantine for another reason is neither replaced nor lifted', async (t) => {
  const { store, pipeline, detector, arp, advance } = setup(t);
  const at = new Date();
  await store.quarantine(
    { ip: '10.8.64.5', reason: 'manual', evidence: {}, since: at.toISOString(), until: null },
    at,
  );
  pipeline.submit(arp('10.8.64.5', B, 9));
  await pipeline.idle();
  t.equal((await store.snapshot()).quarantine[0]?.reason, 'manual');
  pipeline.portGone(9);
  advance(6000);
  pipeline.tick();
  await pipeline.idle();
  t.same(detector.active(), [], 'the finding cleared');
  t.equal((await store.snapshot()).quarantine[0]?.reason, 'manual', 'still quarantined');
});

t.test('a full input queue drops and counts instead of waiting', async (t) => {
  const { pipeline, arp, metrics } = setup(t);
  for (let i = 0; i < 50; i++) pipeline.submit(arp(`10.8.64.${10 + i}`, A, 7));
  await pipeline.idle();
  const text = await metrics.registry.getSingleMetricAsString('bridgeward_resyncs_total');
  const dropped = Number(/source="detector"} (\d+)/.exec(text)?.[1]);
  t.ok(dropped > 0, `dropped ${dropped}`);
});

t.test('arp-storm: recorded in the history without an address, nothing quarantined', async (t) => {
  const { store, pipeline, seen, advance } = setup(t);
  await store.claim({ sandbox: 'app-a', ip: '10.8.64.2', mac: A, at: new Date() });
  pipeline.portUp(7, 'vetha');
  const reading = (limited: number) => ({
    source: 'bpf' as const,
    ifindex: 7,
    port: 'vetha',
    at: advance(1000),
    intervalMs: 1000,
    arpFrames: limited * 2,
    bindings: 100,
    limited,
  });
  pipeline.submitActivity(reading(20_000));
  await pipeline.idle();
  t.match(seen, [{ type: 'raised', finding: { kind: 'arp-storm', ip: null, ports: ['vetha'] } }]);
  pipeline.submitActivity(reading(0));
  advance(5000);
  pipeline.tick();
  await pipeline.idle();
  t.same(
    seen.map((c) => c.type),
    ['raised', 'cleared'],
  );
  const events = (await store.history({})).filter((e) => e.kind === 'finding');
  t.match(events, [
    { ip: null, detail: { finding: 'arp-storm', event: 'raised' } },
    { ip: null, detail: { finding: 'arp-storm', event: 'cleared' } },
  ]);
  t.same((await store.snapshot()).quarantine, []);
});

t.test('held: what arrives at start waits for release, then is processed in order', async (t) => {
  const { store, pipeline, seen, arp } = setup(t, { held: true });
  pipeline.portUp(7, 'vetha');
  pipeline.portUp(9, 'vethb');
  pipeline.submit(arp('10.8.64.5', A, 7));
  pipeline.submit(arp('10.8.64.5', B, 9));
  await pipeline.idle();
  t.same(seen, [], 'nothing processed while held');
  t.same((await store.snapshot()).quarantine, [], 'nothing written');
  pipeline.release();
  await pipeline.idle();
  t.same(
    seen.filter((c) => c.type === 'raised').map((c) => c.finding.kind),
    ['unleased-claim', 'duplicate-ip'],
    'the first claim, then the second: in the order they arrived',
  );
});
