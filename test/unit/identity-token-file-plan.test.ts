import t from 'tap';
import { planTokenFiles, refreshDue } from '../../src/identity/token-file-plan.js';
import type { Identity } from '../../src/store/types.js';

const id = (sandbox: string, generation = 1): Identity => ({
  sandbox,
  ip: '10.8.64.3',
  generation,
  secretHash: '00',
  app: null,
  audiences: ['bridgeward'],
  createdAt: '2026-01-01T00:00:00.000Z',
  rotatedAt: '2026-01-01T00:00:00.000Z',
});

t.test('refresh is due at 80% of the lifetime', async (t) => {
  const w = { generation: 1, iat: 1000, exp: 1600 };
  t.notOk(refreshDue(w, 1479));
  t.ok(refreshDue(w, 1480));
  t.ok(refreshDue(w, 1700));
});

t.test('writes missing, stale-generation and due files; removes orphans', async (t) => {
  const written = new Map([
    ['fresh', { generation: 1, iat: 1000, exp: 1600 }],
    ['due', { generation: 1, iat: 400, exp: 1000 }],
    ['reused', { generation: 1, iat: 1000, exp: 1600 }],
    ['deleted-by-someone', { generation: 1, iat: 1000, exp: 1600 }],
  ]);
  const plan = planTokenFiles({
    identities: [id('fresh'), id('due'), id('reused', 2), id('new'), id('deleted-by-someone')],
    onDisk: ['fresh', 'due', 'reused', 'new', 'revoked', 'left-from-before-restart'],
    written,
    nowSeconds: 1100,
  });
  t.same(
    plan.write.map((i) => i.sandbox),
    ['due', 'reused', 'new', 'deleted-by-someone'],
  );
  t.same(plan.remove, ['revoked', 'left-from-before-restart']);
});

t.test('nothing to do when everything is fresh', async (t) => {
  const plan = planTokenFiles({
    identities: [id('a')],
    onDisk: ['a'],
    written: new Map([['a', { generation: 1, iat: 1000, exp: 1600 }]]),
    nowSeconds: 1200,
  });
  t.same(plan, { write: [], remove: [] });
});
