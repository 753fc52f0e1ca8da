// The reconciler's pure decision: re-reserve, reap only when undeclared AND quiet for N sweeps,
// lift self-set quarantines, bind MACs, and only periodic sweeps count.
import t from 'tap';
import { NO_COUNTERS, planReconcile, type ReconcileInput } from '../../src/ipam/reconcile.js';
import { parseCidr } from '../../src/net/ipv4.js';
import type { LiveEvidence } from '../../src/observe/types.js';
import type { Lease, Quarantine } from '../../src/store/types.js';

const pool = { subnet: parseCidr('10.8.64.0/24'), gateway: '10.8.64.1', cooldownMs: 0 };
const T = '2026-06-12T12:00:00.000Z';

function lease(sandbox: string, ip: string, mac: string | null = null): Lease {
  return {
    sandbox,
    ip,
    mac,
    ifindex: null,
    ifname: null,
    state: 'active',
    generation: 1,
    allocatedAt: T,
    updatedAt: T,
  };
}
function ev(ip: string, macs = ['02:00:00:00:00:01'], ifindexes = [5]): LiveEvidence {
  return { ip, macs, ifindexes, sources: ['netlink-neigh'], lastSeen: 0 };
}
function q(ip: string, reason: string): Quarantine {
  return { ip, reason, evidence: {}, since: T, until: null };
}
/** A declaration made after the leases above were allocated. */
function declared(...sandboxes: string[]): ReconcileInput['declared'] {
  return { sandboxes: new Set(sandboxes), at: '2026-06-12T12:05:00.000Z' };
}
function input(over: Partial<ReconcileInput>): ReconcileInput {
  return {
    pool,
    snapshot: { leases: [], cooling: [], quarantine: [], cursor: null },
    live: new Map(),
    ports: new Set([5]),
    declared: null,
    counters: NO_COUNTERS,
    missThreshold: 3,
    count: true,
    node: null,
    ...over,
  };
}

t.test('re-reserves a live address that is free in the store, nothing else', async (t) => {
  const live = new Map([
    ['10.8.64.2', ev('10.8.64.2')],
    ['10.8.64.3', ev('10.8.64.3')],
    ['10.8.64.4', ev('10.8.64.4')],
    ['10.8.64.1', ev('10.8.64.1')],
  ]);
  const plan = planReconcile(
    input({
      live,
      snapshot: {
        leases: [lease('a', '10.8.64.3')],
        cooling: [],
        quarantine: [q('10.8.64.4', 'duplicate-ip')],
        cursor: null,
      },
    }),
  );
  t.same(
    plan.reserve.map((r) => r.ip),
    ['10.8.64.2'],
    'not the leased, the quarantined or the gateway',
  );
});

t.test('reaps only when undeclared and quiet for N periodic sweeps', async (t) => {
  const snapshot = {
    leases: [lease('gone', '10.8.64.2'), lease('kept', '10.8.64.3'), lease('live', '10.8.64.4')],
    cooling: [],
    quarantine: [],
    cursor: null,
  };
  const live = new Map([['10.8.64.4', ev('10.8.64.4')]]);
  let counters = NO_COUNTERS;
  const reaps: string[][] = [];
  for (let i = 0; i < 4; i++) {
    const p = planReconcile(input({ snapshot, live, declared: declared('kept'), counters }));
    counters = p.counters;
    reaps.push(p.reap.map((r) => r.sandbox));
  }
  t.same(
    reaps,
    [[], [], ['gone'], ['gone']],
    'third sweep reaps; never the declared or the live one',
  );
  t.same(planReconcile(input({ snapshot, live, declared: null })).reap, [], 'never before a sync');
});

t.test('a lease allocated after the declaration is not judged by it', async (t) => {
  const later = { ...lease('new', '10.8.64.5'), allocatedAt: '2026-06-12T12:06:00.000Z' };
  const snapshot = { leases: [later], cooling: [], quarantine: [], cursor: null };
  let counters = NO_COUNTERS;
  for (let i = 0; i < 5; i++) {
    const p = planReconcile(input({ snapshot, declared: declared(), counters }));
    t.same(p.reap, [], `sweep ${i + 1}: not reaped`);
    counters = p.counters;
  }
  t.equal(counters.misses.size, 0, 'and not even counted');
});

t.test(
  'a sighting or a declaration resets the miss count; boot/event sweeps do not count',
  async (t) => {
    const snapshot = {
      leases: [lease('s', '10.8.64.2')],
      cooling: [],
      quarantine: [],
      cursor: null,
    };
    const none = declared();
    let c = planReconcile(input({ snapshot, declared: none })).counters;
    c = planReconcile(input({ snapshot, declared: none, counters: c })).counters;
    t.equal(c.misses.get('s'), 2);
    c = planReconcile(
      input({
        snapshot,
        declared: none,
        counters: c,
        live: new Map([['10.8.64.2', ev('10.8.64.2')]]),
      }),
    ).counters;
    t.equal(c.misses.get('s'), undefined, 'seen: reset');
    c = planReconcile(input({ snapshot, declared: none, counters: c })).counters;
    c = planReconcile(input({ snapshot, declared: none, counters: c })).counters;
    const uncounted = planReconcile(input({ snapshot, declared: none, counters: c, count: false }));
    t.same(uncounted.reap, []);
    t.equal(uncounted.counters.misses.get('s'), 2);
    c = planReconcile(input({ snapshot, declared: declared('s'), counters: c })).counters;
    t.equal(c.misses.size, 0, 'declared again: reset');
  },
);

t.test('lifts self-set quarantines after N quiet sweeps, never others', async (t) => {
  const snapshot = {
    leases: [],
    cooling: [],
    quarantine: [
      q('10.8.64.2', 'live-after-release'),
      q('10.8.64.3', 'duplicate-ip'),
      q('10.8.64.4', 'live-unleased'),
    ],
    cursor: null,
  };
  const live = new Map([['10.8.64.4', ev('10.8.64.4')]]);
  let counters = NO_COUNTERS;
  const lifts: string[][] = [];
  for (let i = 0; i < 3; i++) {
    const p = planReconcile(input({ snapshot, live, counters }));
    counters = p.counters;
    lifts.push(p.lift.map((l) => l.ip));
  }
  t.same(lifts, [[], [], ['10.8.64.2']]);
});

t.test('binds a MAC and port from unambiguous evidence only', async (t) => {
  const snapshot = {
    leases: [
      lease('a', '10.8.64.2'),
      lease('b', '10.8.64.3', '02:00:00:00:00:01'),
      lease('c', '10.8.64.4', '02:00:00:00:00:09'),
      lease('d', '10.8.64.5'),
    ],
    cooling: [],
    quarantine: [],
    cursor: null,
  };
  const live = new Map([
    ['10.8.64.2', ev('10.8.64.2', ['02:00:00:00:00:0a'], [])],
    ['10.8.64.3', ev('10.8.64.3', ['02:00:00:00:00:01'], [7])],
    ['10.8.64.4', ev('10.8.64.4', ['02:00:00:00:00:01'], [7])],
    ['10.8.64.5', ev('10.8.64.5', ['02:00:00:00:00:01', '02:00:00:00:00:02'], [7])],
  ]);
  t.same(planReconcile(input({ snapshot, live, ports: new Set([7]) })).bind, [
    { sandbox: 'a', mac: '02:00:00:00:00:0a' },
    { sandbox: 'b', mac: '02:00:00:00:00:01', ifindex: 7 },
  ]);
  t.same(
    planReconcile(input({ snapshot, live, ports: new Set([5]) })).bind,
    [{ sandbox: 'a', mac: '02:00:00:00:00:0a' }],
    'a port that is not on the bridge is never bound',
  );
});

t.test(
  'a port binding ends when its port left the bridge; the same MAC on a new port is bound there',
  async (t) => {
    const bound = (sandbox: string, ip: string, mac: string | null, ifindex: number): Lease => ({
      ...lease(sandbox, ip, mac),
      ifindex,
    });
    const snapshot = {
      leases: [
        bound('back', '10.8.64.2', '02:00:00:00:00:02', 3), // re-attached on port 8
        bound('quiet', '10.8.64.3', '02:00:00:00:00:03', 4), // not seen since its port went
        bound('stays', '10.8.64.4', '02:00:00:00:00:04', 5), // its port is still there
        bound('imposter', '10.8.64.6', '02:00:00:00:00:06', 6), // another MAC on its address
      ],
      cooling: [],
      quarantine: [],
      cursor: null,
    };
    const live = new Map([
      ['10.8.64.2', ev('10.8.64.2', ['02:00:00:00:00:02'], [8])],
      ['10.8.64.4', ev('10.8.64.4', ['02:00:00:00:00:04'], [5])],
      ['10.8.64.6', ev('10.8.64.6', ['02:00:00:00:00:99'], [9])],
    ]);
    const plan = planReconcile(input({ snapshot, live, ports: new Set([5, 8, 9]) }));
    t.same(plan.bind, [{ sandbox: 'back', mac: '02:00:00:00:00:02', ifindex: 8 }]);
    t.same(plan.unbind, [
      { sandbox: 'quiet', ifindex: 4 },
      { sandbox: 'imposter', ifindex: 6 },
    ]);
    const gone = planReconcile(
      input({ snapshot, live: new Map(), ports: new Set(), count: false }),
    );
    t.same(
      gone.unbind.map((u) => u.sandbox),
      ['back', 'quiet', 'stays', 'imposter'],
      'the bridge is absent: every port binding ends',
    );
    t.same([gone.bind, gone.reap, gone.reserve], [[], [], []], 'and nothing else happens');
  },
);

t.test(
  "with a shared store, only this node's leases are reaped and quarantines lifted",
  async (t) => {
    const snapshot = {
      leases: [
        { ...lease('mine', '10.8.64.2'), node: 'n1' },
        { ...lease('theirs', '10.8.64.3'), node: 'n2' },
        lease('unknown', '10.8.64.4'),
      ],
      cooling: [],
      quarantine: [
        { ...q('10.8.64.5', 'live-after-release'), evidence: { node: 'n1' } },
        { ...q('10.8.64.6', 'live-after-release'), evidence: { node: 'n2' } },
      ],
      cursor: null,
    };
    const p = planReconcile(
      input({ snapshot, declared: declared(), node: 'n1', missThreshold: 1 }),
    );
    t.same(
      p.reap.map((r) => r.sandbox),
      ['mine'],
    );
    t.same(
      p.lift.map((l) => l.ip),
      ['10.8.64.5'],
    );
  },
);
