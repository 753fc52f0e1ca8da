// The events API on a real unix socket: GET /v1/conflicts, the SSE stream and its client, POST
// /v1/probe validation, and shutdown with an open stream.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { request } from 'node:http';
import { startApi } from '../../src/api/server.js';
import { eventsRoutes } from '../../src/api/events-routes.js';
import { probeRoutes } from '../../src/api/probe-routes.js';
import { apiRequest } from '../../src/api/client.js';
import { openEventStream } from '../../src/api/event-stream-client.js';
import { formatSse, SseParser, type SseEvent } from '../../src/api/sse.js';
import { FindingStream } from '../../src/alerts/finding-stream.js';
import type { Finding } from '../../src/detect/finding.js';
import { createLogger } from '../../src/log.js';

const quiet = createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));

function finding(ip: string, state: Finding['state'] = 'active'): Finding {
  return {
    id: `unleased-claim/${ip}/0`,
    kind: 'unleased-claim',
    ip,
    macs: ['02:00:00:00:00:0c'],
    ports: ['vethc'],
    ifindexes: [11],
    sandboxes: [],
    sources: ['bpf'],
    severity: 'error',
    state,
    firstSeen: '2026-01-01T00:00:00.000Z',
    lastSeen: '2026-01-01T00:00:00.000Z',
    resolvedAt: null,
    clearedAt: state === 'cleared' ? '2026-01-01T00:01:00.000Z' : null,
    quarantine: true,
    rates: null,
    spoof: null,
  };
}

t.test('SSE framing round-trips, across chunk boundaries', async (t) => {
  const text =
    formatSse({ event: 'raised', data: '{"a":1}', id: 1 }) +
    ': comment\n\n' +
    formatSse({ event: 'x', data: 'two\nlines' });
  t.equal(formatSse({ event: 'raised', data: '{}', id: 7 }), 'id: 7\nevent: raised\ndata: {}\n\n');
  const p = new SseParser();
  const out: SseEvent[] = [];
  for (const ch of text) out.push(...p.push(ch));
  t.same(out, [
    { event: 'raised', data: '{"a":1}', id: '1' },
    { event: 'x', data: 'two\nlines', id: null },
  ]);
  t.same(new SseParser().push('data: no name\r\n\r\n'), [
    { event: 'message', data: 'no name', id: null },
  ]);
});

t.test('conflicts, events stream and probe over the socket', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bw-events-'));
  const socket = join(dir, 'api.sock');
  const active = [finding('10.8.64.5')];
  const cleared = [finding('10.8.64.9', 'cleared')];
  const stream = new FindingStream();
  const probed: [string, number][] = [];
  const api = await startApi({
    socket,
    log: quiet,
    routes: [
      eventsRoutes({ findings: { active: () => active, cleared: () => cleared }, stream }),
      probeRoutes(async (ip, timeoutMs) => {
        probed.push([ip, timeoutMs]);
        return [
          { mac: '02:00:00:00:00:0c', port: 'vethc', ifindex: 11, sandbox: null, rttMs: 1.5 },
        ];
      }),
    ],
  });
  t.teardown(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  t.same(await apiRequest<Finding[]>(socket, 'GET', '/v1/conflicts'), active);
  t.same(
    (await apiRequest<Finding[]>(socket, 'GET', '/v1/conflicts?all=1')).map((f) => f.ip),
    ['10.8.64.9', '10.8.64.5'],
  );
  await t.rejects(apiRequest(socket, 'GET', '/v1/conflicts?all=maybe'), {
    code: 'INVALID_ARGUMENT',
  });

  const events: SseEvent[] = [];
  let onEvent: () => void = () => {};
  const s = openEventStream(socket, (e) => {
    events.push(e);
    onEvent();
  });
  const next = (n: number) =>
    new Promise<void>((r) => {
      onEvent = () => events.length >= n && r();
      onEvent();
    });
  await next(1);
  t.equal(events[0]?.event, 'active', 'replays active findings first');
  while (stream.subscribers === 0) await new Promise((r) => setTimeout(r, 5));
  stream.publish({ type: 'raised', finding: finding('10.8.64.6') });
  await next(2);
  t.equal(events[1]?.event, 'raised');
  t.equal((JSON.parse(events[1]?.data ?? '{}') as Finding).ip, '10.8.64.6');
  s.close();
  await s.ended;
  while (stream.subscribers > 0) await new Promise((r) => setTimeout(r, 5));
  t.pass('the route unsubscribes when the client goes away');

  t.same(await apiRequest(socket, 'POST', '/v1/probe', { ip: '10.8.64.5' }), [
    { mac: '02:00:00:00:00:0c', port: 'vethc', ifindex: 11, sandbox: null, rttMs: 1.5 },
  ]);
  await apiRequest(socket, 'POST', '/v1/probe', { ip: '10.8.64.5', timeoutMs: 50 });
  t.same(probed, [
    ['10.8.64.5', 500],
    ['10.8.64.5', 50],
  ]);
  for (const bad of [{ ip: '10.8.64' }, { ip: '10.8.64.5', timeoutMs: 1 }, {}]) {
    await t.rejects(
      apiRequest(socket, 'POST', '/v1/probe', bad),
      { code: 'INVALID_ARGUMENT' },
      JSON.stringify(bad),
    );
  }
  t.equal(probed.length, 2, 'bad input changes nothing');
});

// A hanging close fails this test by its timeout.
t.test('closing the API ends open streams instead of hanging', { timeout: 10_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bw-events-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'api.sock');
  const stream = new FindingStream();
  const api = await startApi({
    socket,
    log: quiet,
    routes: [eventsRoutes({ findings: { active: () => [], cleared: () => [] }, stream })],
  });
  const s = openEventStream(socket, () => {});
  while (stream.subscribers === 0) await new Promise((r) => setTimeout(r, 5));
  await api.close();
  await s.ended;
  t.equal(stream.subscribers, 0);
});

t.test('a client that cannot connect gets AGENT_UNREACHABLE', async (t) => {
  const s = openEventStream('/nonexistent/bw.sock', () => {});
  await t.rejects(s.ended, { code: 'AGENT_UNREACHABLE' });
});

t.test('a consumer that stops reading is dropped instead of buffering forever', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bw-events-'));
  const socket = join(dir, 'api.sock');
  const stream = new FindingStream();
  const api = await startApi({
    socket,
    log: quiet,
    routes: [
      eventsRoutes({
        findings: { active: () => [], cleared: () => [] },
        stream,
        maxLagBytes: 64 << 10,
      }),
    ],
  });
  t.teardown(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const req = request({ socketPath: socket, path: '/v1/events' }, (res) => res.pause());
  req.end();
  while (stream.subscribers === 0) await new Promise((r) => setTimeout(r, 5));
  const big = { ...finding('10.8.64.5'), sandboxes: ['x'.repeat(4000)] };
  let published = 0;
  while (stream.subscribers > 0 && published < 10_000) {
    stream.publish({ type: 'updated', finding: big });
    published++;
    await new Promise((r) => setImmediate(r));
  }
  t.equal(stream.subscribers, 0, `dropped after ${published} changes`);
  req.destroy();
});
