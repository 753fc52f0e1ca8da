// Alerts: backoff, the webhook against a real local HTTP server (retries, order, bounded queue,
// never blocking), log lines and Prometheus metrics per finding change.
import t from 'tap';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { backoffMs } from '../../src/alerts/backoff.js';
import { WebhookSender, type WebhookPayload } from '../../src/alerts/webhook.js';
import { Alerts } from '../../src/alerts/alerts.js';
import { FindingStream } from '../../src/alerts/finding-stream.js';
import type { Finding, FindingChange } from '../../src/detect/finding.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';

function finding(ip: string, kind: Finding['kind'] = 'duplicate-ip'): Finding {
  return {
    id: `${kind}/${ip}/0`,
    kind,
    ip,
    macs: ['02:00:00:00:00:0a', '02:00:00:00:00:0b'],
    ports: ['vetha', 'vethb'],
    ifindexes: [7, 9],
    sandboxes: ['app-a'],
    sources: ['bpf'],
    severity: kind === 'lease-mismatch' ? 'warn' : 'error',
    state: 'active',
    firstSeen: '2026-01-01T00:00:00.000Z',
    lastSeen: '2026-01-01T00:00:01.000Z',
    resolvedAt: null,
    clearedAt: null,
    quarantine: kind !== 'lease-mismatch',
    rates: null,
    spoof: null,
  };
}

function capture(): { lines: Record<string, unknown>[]; stream: Writable } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, stream };
}

async function listen(
  handler: (body: WebhookPayload, req: IncomingMessage) => number,
): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.statusCode = handler(JSON.parse(Buffer.concat(chunks).toString()), req);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, server };
}

t.test('backoff doubles up to the cap', async (t) => {
  const b = { baseMs: 100, maxMs: 1000 };
  t.same(
    [1, 2, 3, 4, 5, 6].map((a) => backoffMs(a, b)),
    [100, 200, 400, 800, 1000, 1000],
  );
});

t.test('webhook: retries with backoff until the server accepts, in order', async (t) => {
  const received: WebhookPayload[] = [];
  let calls = 0;
  const { url, server } = await listen((body, req) => {
    t.equal(req.headers['content-type'], 'application/json');
    calls++;
    if (calls <= 2) return 503;
    received.push(body);
    return 204;
  });
  t.teardown(() => server.close());
  const metrics = createMetrics();
  const { lines, stream } = capture();
  const hook = new WebhookSender({
    url,
    log: createLogger('info', stream),
    deliveries: metrics.webhookDeliveries,
    backoff: { baseMs: 20, maxMs: 40 },
  });
  const t0 = Date.now();
  hook.send({ type: 'raised', finding: finding('10.8.64.2') });
  hook.send({ type: 'cleared', finding: finding('10.8.64.3') });
  t.equal(calls, 0, 'send only queues: nothing is delivered before it returns');
  t.equal(hook.pending, 2);
  await hook.idle();
  t.ok(Date.now() - t0 >= 60, 'waited 20 + 40 ms of backoff');
  t.same(
    received.map((r) => [r.event, r.finding.ip]),
    [
      ['raised', '10.8.64.2'],
      ['cleared', '10.8.64.3'],
    ],
  );
  t.equal(calls, 4);
  const text = await metrics.registry.getSingleMetricAsString(
    'bridgeward_webhook_deliveries_total',
  );
  t.match(text, /result="delivered"} 2/);
  t.match(text, /result="retry"} 2/);
  t.ok(lines.some((l) => l.msg === 'webhook delivery failed; retrying' && l.error === 'HTTP 503'));
  await hook.close();
});

t.test('webhook: gives up after maxAttempts; unreachable URL never blocks', async (t) => {
  const metrics = createMetrics();
  const { lines, stream } = capture();
  // A port nobody listens on: bind then close.
  const { url, server } = await listen(() => 200);
  await new Promise((r) => server.close(r));
  const hook = new WebhookSender({
    url,
    log: createLogger('info', stream),
    deliveries: metrics.webhookDeliveries,
    backoff: { baseMs: 5, maxMs: 5 },
    maxAttempts: 3,
  });
  hook.send({ type: 'raised', finding: finding('10.8.64.2') });
  await hook.idle();
  const failed = lines.find((l) => l.msg === 'webhook delivery failed; giving up on this change');
  t.equal(failed?.attempts, 3);
  t.equal(failed?.error, 'ECONNREFUSED');
  t.match(
    await metrics.registry.getSingleMetricAsString('bridgeward_webhook_deliveries_total'),
    /result="failed"} 1/,
  );
  await hook.close();
});

t.test('webhook: the queue is bounded and drops the oldest waiting change', async (t) => {
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const received: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void gate.then(() => {
        received.push(
          (JSON.parse(Buffer.concat(chunks).toString()) as WebhookPayload).finding.ip ?? '',
        );
        res.end();
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const metrics = createMetrics();
  const { stream } = capture();
  const hook = new WebhookSender({
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    log: createLogger('info', stream),
    deliveries: metrics.webhookDeliveries,
    maxQueue: 3,
  });
  for (let i = 1; i <= 6; i++) hook.send({ type: 'raised', finding: finding(`10.8.64.${i}`) });
  t.equal(hook.pending, 3, 'bounded');
  release();
  await hook.idle();
  t.same(
    received,
    ['10.8.64.1', '10.8.64.5', '10.8.64.6'],
    'in-flight kept, oldest waiting dropped',
  );
  t.match(
    await metrics.registry.getSingleMetricAsString('bridgeward_webhook_deliveries_total'),
    /result="dropped"} 3/,
  );
  await hook.close();
});

t.test('alerts: one log line per change with evidence, metrics, stream', async (t) => {
  const metrics = createMetrics();
  const { lines, stream: out } = capture();
  const stream = new FindingStream();
  const seen: FindingChange[] = [];
  stream.subscribe((c) => seen.push(c));
  const alerts = new Alerts({ log: createLogger('info', out), metrics, stream, webhook: null });
  const dup = finding('10.8.64.2');
  const mismatch = finding('10.8.64.2', 'lease-mismatch');
  alerts.publish(
    [
      { type: 'raised', finding: dup },
      { type: 'raised', finding: mismatch },
    ],
    [dup, mismatch],
  );
  t.equal(lines[0]?.level, 50, 'duplicate-ip logs at error');
  t.equal(lines[1]?.level, 40, 'lease-mismatch logs at warn');
  t.match(
    lines[0]?.msg,
    /^conflict raised: duplicate-ip 10\.8\.64\.2: claimed by 02:00:00:00:00:0a, 02:00:00:00:00:0b on vetha, vethb \(sandboxes app-a\)$/,
  );
  t.same((lines[0]?.finding as Finding).ports, ['vetha', 'vethb'], 'evidence in the fields');
  const active = await metrics.registry.getSingleMetricAsString('bridgeward_conflicts_active');
  t.match(active, /kind="duplicate-ip"} 1/);
  t.match(active, /kind="gateway-claim"} 0/);
  alerts.publish([{ type: 'cleared', finding: { ...dup, state: 'cleared' } }], [mismatch]);
  t.equal(lines[2]?.level, 30, 'cleared logs at info');
  t.match(
    await metrics.registry.getSingleMetricAsString('bridgeward_conflicts_active'),
    /kind="duplicate-ip"} 0/,
  );
  const total = await metrics.registry.getSingleMetricAsString('bridgeward_conflicts_total');
  t.match(total, /kind="duplicate-ip"} 1/);
  t.match(total, /kind="lease-mismatch"} 1/);
  t.equal(seen.length, 3);
});
