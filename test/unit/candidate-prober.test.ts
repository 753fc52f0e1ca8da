// The pre-handout check with background probing: a candidate probed silent is handed out at
// once, anything else is probed on the allocation's path, and a failing probe makes nothing fresh.
import t from 'tap';
import pino from 'pino';
import { Writable } from 'node:stream';
import { CandidateProber } from '../../src/ipam/candidate-prober.js';
import { createMetrics } from '../../src/metrics.js';
import { FRESH_FOR_MS } from '../../src/ipam/probed-candidates.js';
import type { LiveEvidence } from '../../src/observe/types.js';

/** The prober's side, played by the test: a ledger of silent probes and a log of what ran. */
function probes(opts: { fail?: boolean } = {}) {
  const ledger = new Map<string, number>();
  const batches: string[][] = [];
  const onPath: string[] = [];
  return {
    ledger,
    batches,
    onPath,
    probe: async (ips: readonly string[]) => {
      batches.push([...ips]);
      if (opts.fail) throw new Error('the bridge has no MAC to probe from');
      for (const ip of ips) ledger.set(ip, Date.now());
    },
    silentAt: (ip: string) => ledger.get(ip),
    probeNow: async (ip: string): Promise<LiveEvidence | null> => {
      onPath.push(ip);
      return null;
    },
  };
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
}

t.test('candidates probed in the background pass at once; others are probed now', async (t) => {
  const p = probes();
  const metrics = createMetrics();
  const c = new CandidateProber({
    candidates: async (k) => ['10.8.64.2', '10.8.64.3', '10.8.64.4'].slice(0, k),
    ...p,
    log: pino({ level: 'silent' }),
    metrics,
  });
  c.start();
  t.teardown(() => c.stop());
  await until(() => p.batches.length > 0);
  t.same(p.batches[0], ['10.8.64.2', '10.8.64.3'], 'the first two candidates, in one batch');
  t.equal(await c.check('10.8.64.2'), null);
  t.same(p.onPath, [], 'no probe on the path for a fresh candidate');
  t.equal(await c.check('10.8.64.9'), null);
  t.same(p.onPath, ['10.8.64.9'], 'an address nobody probed is probed now');
  p.ledger.set('10.8.64.3', Date.now() - FRESH_FOR_MS - 500);
  await c.check('10.8.64.3');
  t.same(
    p.onPath,
    ['10.8.64.9', '10.8.64.3'],
    'a silent probe older than the bound vouches for nothing',
  );
  const counted = await metrics.prehandoutChecks.get();
  t.same(Object.fromEntries(counted.values.map((v) => [v.labels.result, v.value])), {
    fresh: 1,
    probed: 2,
  });
  await until(() => p.batches.some((b) => b.includes('10.8.64.4')));
  t.ok(true, 'after handouts it keeps more candidates probed');
});

t.test('a probe that fails makes nothing fresh; it says so once', async (t) => {
  const p = probes({ fail: true });
  const lines: string[] = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    }),
  );
  const c = new CandidateProber({ candidates: async () => ['10.8.64.2'], ...p, log });
  c.start();
  t.teardown(() => c.stop());
  await until(() => p.batches.length > 0);
  await c.check('10.8.64.2');
  t.same(p.onPath, ['10.8.64.2'], 'probed on the path');
  await until(() => p.batches.length > 1);
  t.equal(lines.filter((l) => l.includes('background probe failed')).length, 1, 'logged once');
});
