// The allocator's pure core: exclusions, round-robin, cool-down, idempotence, exhaustion counts.
import t from 'tap';
import {
  chooseAddress,
  countPool,
  exhaustedError,
  viewPool,
  type Pool,
} from '../../src/ipam/allocator.js';
import { parseCidr } from '../../src/net/ipv4.js';
import type { Lease, StoreSnapshot } from '../../src/store/types.js';

const MIN = 60_000;
const NOW = Date.parse('2026-06-12T12:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const pool27: Pool = {
  subnet: parseCidr('10.8.64.0/27'),
  gateway: '10.8.64.1',
  cooldownMs: 30 * MIN,
};
const pool30: Pool = {
  subnet: parseCidr('10.8.64.0/30'),
  gateway: '10.8.64.1',
  cooldownMs: 30 * MIN,
};
const EMPTY: StoreSnapshot = { leases: [], cooling: [], quarantine: [], cursor: null };

function lease(sandbox: string, ip: string): Lease {
  return {
    sandbox,
    ip,
    mac: null,
    ifindex: null,
    ifname: null,
    state: 'active',
    generation: 1,
    allocatedAt: iso(NOW),
    updatedAt: iso(NOW),
  };
}

function choose(
  snapshot: Partial<StoreSnapshot>,
  opts: { live?: string[]; skip?: string[]; pool?: Pool; sandbox?: string; now?: number } = {},
) {
  const view = viewPool({
    pool: opts.pool ?? pool27,
    snapshot: { ...EMPTY, ...snapshot },
    live: new Set(opts.live ?? []),
    now: opts.now ?? NOW,
  });
  return chooseAddress(view, opts.sandbox ?? 'new', new Set(opts.skip ?? []));
}

t.test('first allocation skips network and gateway', async (t) => {
  t.same(choose({}), { kind: 'chosen', ip: '10.8.64.2', cooling: false });
});

t.test('a gateway elsewhere in the subnet is skipped; .1 is then usable', async (t) => {
  const pool = { ...pool27, gateway: '10.8.64.30' };
  t.same(choose({}, { pool }), { kind: 'chosen', ip: '10.8.64.1', cooling: false });
  t.same(
    choose({ cursor: '10.8.64.29' }, { pool }),
    { kind: 'chosen', ip: '10.8.64.1', cooling: false },
    'wraps past gateway and broadcast',
  );
});

t.test('idempotent: a sandbox with a lease gets it back', async (t) => {
  const l = lease('app', '10.8.64.9');
  t.same(choose({ leases: [l], cursor: '10.8.64.20' }, { sandbox: 'app' }), {
    kind: 'existing',
    lease: l,
  });
});

t.test('round-robin from the cursor, wrapping, never broadcast', async (t) => {
  t.same(choose({ cursor: '10.8.64.5' }), { kind: 'chosen', ip: '10.8.64.6', cooling: false });
  t.same(
    choose({ cursor: '10.8.64.30' }),
    { kind: 'chosen', ip: '10.8.64.2', cooling: false },
    '.31 is broadcast: wrap',
  );
  t.same(
    choose({ cursor: '10.9.0.7' }),
    { kind: 'chosen', ip: '10.8.64.2', cooling: false },
    'cursor outside the subnet restarts',
  );
  t.same(choose({ cursor: 'garbage' }), { kind: 'chosen', ip: '10.8.64.2', cooling: false });
});

t.test('never an active lease, a quarantined, a live or a skipped address', async (t) => {
  const d = choose(
    {
      cursor: '10.8.64.1',
      leases: [lease('a', '10.8.64.2')],
      quarantine: [{ ip: '10.8.64.3', reason: 'x', evidence: {}, since: iso(NOW), until: null }],
    },
    { live: ['10.8.64.4'], skip: ['10.8.64.5'] },
  );
  t.same(d, { kind: 'chosen', ip: '10.8.64.6', cooling: false });
});

t.test('an expired quarantine no longer blocks', async (t) => {
  const d = choose({
    quarantine: [
      {
        ip: '10.8.64.2',
        reason: 'x',
        evidence: {},
        since: iso(NOW - 10 * MIN),
        until: iso(NOW - MIN),
      },
    ],
  });
  t.same(d, { kind: 'chosen', ip: '10.8.64.2', cooling: false });
});

t.test('cooling addresses come last, oldest release first', async (t) => {
  const cooling = [
    { ip: '10.8.64.2', sandbox: 'x', generation: 1, releasedAt: iso(NOW - MIN) },
    { ip: '10.8.64.3', sandbox: 'y', generation: 1, releasedAt: iso(NOW - 5 * MIN) },
  ];
  t.same(choose({ cooling }), { kind: 'chosen', ip: '10.8.64.4', cooling: false }, 'free first');
  t.same(choose({ cooling }, { pool: pool30 }).kind, 'chosen');
  // /30: hosts .1 (gateway) and .2 only.
  t.same(
    choose({ cooling: [cooling[0]!] }, { pool: pool30 }),
    { kind: 'chosen', ip: '10.8.64.2', cooling: true },
    'cooling used when nothing else is free',
  );
  const leases = Array.from({ length: 27 }, (_, i) => lease(`s${i}`, `10.8.64.${i + 4}`));
  t.same(
    choose({ cooling, leases }),
    { kind: 'chosen', ip: '10.8.64.3', cooling: true },
    'released longest ago first',
  );
  const tied = [
    { ip: '10.8.64.3', sandbox: 'y', generation: 1, releasedAt: iso(NOW - MIN) },
    { ip: '10.8.64.2', sandbox: 'x', generation: 1, releasedAt: iso(NOW - MIN) },
  ];
  t.same(
    choose({ cooling: tied, leases }),
    { kind: 'chosen', ip: '10.8.64.2', cooling: true },
    'released at the same time: the lowest address first',
  );
  t.same(
    choose({ cooling, leases }, { live: ['10.8.64.3'] }),
    { kind: 'chosen', ip: '10.8.64.2', cooling: true },
    'a live cooling address is never used',
  );
  t.same(
    choose({ cooling, leases }, { skip: ['10.8.64.3'] }),
    { kind: 'chosen', ip: '10.8.64.2', cooling: true },
    'a skipped cooling address (taken earlier in the batch) goes to the next oldest',
  );
  const over = [{ ip: '10.8.64.2', sandbox: 'x', generation: 1, releasedAt: iso(NOW - 31 * MIN) }];
  t.same(
    choose({ cooling: over, cursor: '10.8.64.1' }),
    { kind: 'chosen', ip: '10.8.64.2', cooling: false },
    'cool-down over: free again',
  );
});

t.test('exhausted: counts say why', async (t) => {
  const leases = Array.from({ length: 26 }, (_, i) => lease(`s${i}`, `10.8.64.${i + 2}`));
  const d = choose(
    {
      leases,
      quarantine: [{ ip: '10.8.64.28', reason: 'x', evidence: {}, since: iso(NOW), until: null }],
      cooling: [{ ip: '10.8.64.29', sandbox: 'x', generation: 1, releasedAt: iso(NOW) }],
    },
    { live: ['10.8.64.30', '10.8.64.29', '10.9.9.9'] },
  );
  t.same(d, {
    kind: 'exhausted',
    counts: { total: 29, active: 26, quarantined: 1, cooling: 1, liveUnleased: 1, free: 0 },
  });
  if (d.kind !== 'exhausted') return;
  const e = exhaustedError(pool27.subnet, d.counts);
  t.equal(e.code, 'POOL_EXHAUSTED');
  t.equal(
    e.message,
    'no free address in 10.8.64.0/27: 26 active, 1 quarantined, 1 cooling, 1 live without a lease',
  );
  t.same(e.details, d.counts);
});

t.test('countPool counts each address once', async (t) => {
  const c = countPool({
    pool: pool27,
    snapshot: {
      ...EMPTY,
      leases: [lease('a', '10.8.64.2')],
      quarantine: [{ ip: '10.8.64.2', reason: 'dup', evidence: {}, since: iso(NOW), until: null }],
    },
    live: new Set(['10.8.64.2', '10.8.64.1']),
    now: NOW,
  });
  t.same(c, { total: 29, active: 1, quarantined: 0, cooling: 0, liveUnleased: 0, free: 28 });
});

t.test('round-robin over many allocations hands out every address once before reuse', async (t) => {
  let snap: StoreSnapshot = EMPTY;
  const seen: string[] = [];
  for (let i = 0; i < 29; i++) {
    const d = choose(snap, { sandbox: `s${i}` });
    if (d.kind !== 'chosen') throw new Error('unexpected');
    seen.push(d.ip);
    snap = { ...snap, leases: [...snap.leases, lease(`s${i}`, d.ip)], cursor: d.ip };
  }
  t.equal(new Set(seen).size, 29);
  t.notOk(seen.includes('10.8.64.0') || seen.includes('10.8.64.1') || seen.includes('10.8.64.31'));
  // Free .5, the next allocation continues after the cursor (.30 -> wrap) and takes .5, the only free.
  snap = { ...snap, leases: snap.leases.filter((l) => l.ip !== '10.8.64.5'), cooling: [] };
  t.same(choose(snap, { sandbox: 'z' }), {
    kind: 'chosen',
    ip: '10.8.64.5',
    cooling: false,
  });
});

t.test('a large pool finds a free address quickly after the cursor', async (t) => {
  const pool = { subnet: parseCidr('10.0.0.0/8'), gateway: '10.0.0.1', cooldownMs: 0 };
  const d = choose({ cursor: '10.200.0.0' }, { pool, sandbox: 'a' });
  t.same(d, { kind: 'chosen', ip: '10.200.0.1', cooling: false });
});

t.test('one view answers a whole batch: addresses taken earlier in it are skipped', async (t) => {
  const cooling = [
    { ip: '10.8.64.2', sandbox: 'x', generation: 1, releasedAt: iso(NOW - MIN) },
    { ip: '10.8.64.3', sandbox: 'y', generation: 1, releasedAt: iso(NOW - 5 * MIN) },
  ];
  const leases = Array.from({ length: 26 }, (_, i) => lease(`s${i}`, `10.8.64.${i + 5}`));
  const view = viewPool({
    pool: pool27,
    snapshot: { ...EMPTY, cooling, leases },
    live: new Set(),
    now: NOW,
  });
  const taken = new Set<string>();
  const got: unknown[] = [];
  for (const sandbox of ['a', 'b', 'c', 'd', 's3']) {
    const d = chooseAddress(view, sandbox, taken);
    got.push(d.kind === 'chosen' ? d.ip : d.kind);
    if (d.kind === 'chosen') taken.add(d.ip);
  }
  t.same(
    got,
    ['10.8.64.4', '10.8.64.3', '10.8.64.2', 'exhausted', 'existing'],
    'the free one, then cooling oldest first, then nothing; a leased sandbox gets its own',
  );
});
