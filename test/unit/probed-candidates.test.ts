// The freshness policy of the background prober and the allocator's candidate order.
import t from 'tap';
import {
  FRESH_FOR_MS,
  MAX_CANDIDATES,
  MIN_CANDIDATES,
  REFRESH_AFTER_MS,
  candidateTarget,
  countHandout,
  dueForProbe,
  handingOut,
  isFresh,
  nextDueIn,
  peakPerSecond,
} from '../../src/ipam/probed-candidates.js';
import { nextCandidates, viewPool } from '../../src/ipam/allocator.js';
import { parseCidr } from '../../src/net/ipv4.js';

const now = 1_000_000;

t.test('a silent probe vouches for an address for 5 s, never without one', async (t) => {
  t.equal(FRESH_FOR_MS, 5000);
  t.ok(isFresh(now, now));
  t.ok(isFresh(now - FRESH_FOR_MS, now), 'exactly at the bound');
  t.notOk(isFresh(now - FRESH_FOR_MS - 1, now), 'older than the bound');
  t.notOk(isFresh(undefined, now), 'never probed (or the probe failed, or someone answered)');
  t.notOk(isFresh(now + 5, now), 'a probe time from the future vouches for nothing');
});

t.test('candidates are probed again once their silent probe is a refresh period old', async (t) => {
  const ledger = new Map([
    ['a', now - 200],
    ['b', now - REFRESH_AFTER_MS],
    ['c', now - 6000],
  ]);
  const at = (ip: string) => ledger.get(ip);
  t.same(dueForProbe(['a', 'b', 'c', 'd'], at, now), ['b', 'c', 'd']);
  t.equal(
    nextDueIn(['a'], at, now),
    REFRESH_AFTER_MS - 200,
    `a is due ${REFRESH_AFTER_MS - 200} ms from now`,
  );
  t.equal(nextDueIn(['a', 'd'], at, now), 0, 'an unprobed candidate is due now');
  t.equal(nextDueIn([], at, now), REFRESH_AFTER_MS, 'nothing to wait for: one refresh period');
  t.ok(REFRESH_AFTER_MS < FRESH_FOR_MS, 'refreshed before it goes stale');
});

t.test(
  'how many candidates: a few when idle, twice the busiest second of the last minute',
  async (t) => {
    t.equal(candidateTarget(0), MIN_CANDIDATES);
    t.equal(candidateTarget(10), MIN_CANDIDATES + 20);
    t.equal(candidateTarget(100_000), MAX_CANDIDATES, 'bounded per probe batch');
    let counts = countHandout([], 5_000);
    counts = countHandout(counts, 5_999);
    counts = countHandout(counts, 7_100);
    t.same(counts, [
      { second: 5, count: 2 },
      { second: 7, count: 1 },
    ]);
    t.equal(peakPerSecond(counts, 7_200), 2);
    t.equal(peakPerSecond(counts, 64_999), 2, 'the burst counts for a minute');
    t.equal(peakPerSecond(counts, 65_000), 1, 'then the second it happened in drops out');
    t.equal(peakPerSecond(counts, 68_000), 0);
    t.same(
      countHandout(counts, 66_000),
      [
        { second: 7, count: 1 },
        { second: 66, count: 1 },
      ],
      'old seconds dropped',
    );
    t.ok(handingOut(counts, 8_999), 'a handout in the second before');
    t.notOk(handingOut(counts, 9_000));
    t.notOk(handingOut([], 9_000));
  },
);

t.test(
  'the next candidates follow the allocator: round-robin, then cooling oldest first',
  async (t) => {
    const pool = { subnet: parseCidr('10.8.64.0/29'), gateway: '10.8.64.1', cooldownMs: 60_000 };
    const lease = (sandbox: string, ip: string) => ({
      sandbox,
      ip,
      mac: null,
      ifindex: null,
      ifname: null,
      state: 'active' as const,
      generation: 1,
      allocatedAt: '',
      updatedAt: '',
    });
    const cooling = (ip: string, ago: number) => ({
      ip,
      sandbox: 'old',
      generation: 1,
      releasedAt: new Date(now - ago).toISOString(),
    });
    const view = viewPool({
      pool,
      snapshot: {
        leases: [lease('a', '10.8.64.3')],
        cooling: [cooling('10.8.64.6', 1000), cooling('10.8.64.2', 5000)],
        quarantine: [],
        cursor: '10.8.64.4',
      },
      live: new Set(['10.8.64.5']),
      now,
    });
    // Hosts .1-.6: .1 gateway, .3 leased, .5 live; free after the cursor (.4) wrapping round:
    // .4 itself, then the cooling ones, released longest ago first.
    t.same(nextCandidates(view, 10), ['10.8.64.4', '10.8.64.2', '10.8.64.6']);
    t.same(nextCandidates(view, 2), ['10.8.64.4', '10.8.64.2']);
    t.same(nextCandidates(view, 0), []);
  },
);
