// The bridge guard's pure core: which bindings the leases grant, and the ordered plan that takes
// the kernel there (revocations before grants; learned bindings kept while they fit).
import t from 'tap';
import {
  EMPTY_GUARD_STATE,
  applyGuardPlan,
  desiredGuard,
  isEmptyPlan,
  planGuard,
  withLearned,
  type GuardLease,
  type GuardPlan,
  type GuardState,
} from '../../src/guard/plan.js';

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const PA = 7;
const PB = 9;

function lease(
  sandbox: string,
  ip: string,
  mac: string | null,
  ifindex: number | null,
  node: string | null = null,
): GuardLease {
  return { sandbox, ip, mac, ifindex, node };
}

/** The plan's operations as one ordered list, the way the shell applies them. */
function ops(p: GuardPlan): string[] {
  return [
    ...p.deletePending.map((ip) => `-pending ${ip}`),
    ...p.deletePendingMacs.map((mac) => `-mac ${mac}`),
    ...p.deletePorts.map((i) => `-port ${i}`),
    ...p.deleteClaims.map((ip) => `-claim ${ip}`),
    ...p.putPorts.map(([i, b]) => `+port ${i} ${b.mac} ${b.ip}`),
    ...p.putPending.map(([ip, mac]) => `+pending ${ip} ${mac ?? 'any'}`),
    ...p.putPendingMacs.map(([mac, ip]) => `+mac ${mac} ${ip}`),
  ];
}

/** Applies the plan from `state` to the leases, returns the ops and the state after them. */
function step(state: GuardState, leases: GuardLease[], ports: number[]) {
  const plan = planGuard(state, desiredGuard(leases, new Set(ports), null));
  return { ops: ops(plan), state: applyGuardPlan(state, plan) };
}

t.test(
  'desired: a lease bound to a current port binds it; every other lease awaits a port',
  async (t) => {
    const d = desiredGuard(
      [
        lease('a', '10.8.64.2', A, PA),
        lease('b', '10.8.64.3', B, 99), // its port left the bridge
        lease('c', '10.8.64.4', null, null), // names no MAC yet
        lease('d', '10.8.64.5', B, null),
      ],
      new Set([PA, PB]),
      null,
    );
    t.same([...d.ports], [[PA, { mac: A, ip: '10.8.64.2', sandbox: 'a' }]]);
    t.same(
      [...d.pending],
      [
        ['10.8.64.3', { mac: B, sandbox: 'b' }],
        ['10.8.64.4', { mac: null, sandbox: 'c' }],
        ['10.8.64.5', { mac: B, sandbox: 'd' }],
      ],
    );
  },
);

t.test(
  "desired with a shared store: only this node's leases (and unattributed ones)",
  async (t) => {
    const d = desiredGuard(
      [
        lease('mine', '10.8.64.2', A, null, 'n1'),
        lease('theirs', '10.8.64.3', B, null, 'n2'),
        lease('old', '10.8.64.4', null, null, null),
      ],
      new Set(),
      'n1',
    );
    t.same([...d.pending.keys()], ['10.8.64.2', '10.8.64.4']);
    t.same(
      [
        ...desiredGuard(
          [lease('theirs', '10.8.64.3', B, null, 'n2')],
          new Set(),
          null,
        ).pending.keys(),
      ],
      ['10.8.64.3'],
      'an unshared store counts every lease',
    );
  },
);

t.test("a lease's life: allocated, learned, bound, released", async (t) => {
  let s = EMPTY_GUARD_STATE;
  let r = step(s, [lease('a', '10.8.64.2', A, null)], [PA]);
  t.same(
    r.ops,
    ['-claim 10.8.64.2', `+pending 10.8.64.2 ${A}`, `+mac ${A} 10.8.64.2`],
    'allocated: awaits a port (no stale claim)',
  );
  s = withLearned(r.state, PA, { mac: A, ip: '10.8.64.2' });
  r = step(s, [lease('a', '10.8.64.2', A, null)], [PA]);
  t.same(r.ops, [], 'a learned binding that fits its pending lease is kept');
  r = step(s, [lease('a', '10.8.64.2', A, PA)], [PA]);
  t.same(
    r.ops,
    ['-pending 10.8.64.2', `-mac ${A}`, '-claim 10.8.64.2', `+port ${PA} ${A} 10.8.64.2`],
    'bound in the store: the agent writes the binding over the learned one',
  );
  s = r.state;
  t.same(s.ports.get(PA), { mac: A, ip: '10.8.64.2', learned: false });
  r = step(s, [], [PA]);
  t.same(r.ops, [`-port ${PA}`], 'released: the binding goes');
  t.ok(isEmptyPlan(planGuard(r.state, desiredGuard([], new Set([PA]), null))));
});

t.test('learned bindings that no longer fit are taken away', async (t) => {
  const learned = withLearned(
    applyGuardPlan(EMPTY_GUARD_STATE, {
      deletePending: [],
      deletePendingMacs: [],
      deletePorts: [],
      deleteClaims: [],
      putPorts: [],
      putPending: [['10.8.64.2', null]],
      putPendingMacs: [],
    }),
    PB,
    { mac: B, ip: '10.8.64.2' },
  );
  t.same(
    step(learned, [lease('a', '10.8.64.2', A, null)], [PA, PB]).ops,
    ['-port 9', '-claim 10.8.64.2', `+pending 10.8.64.2 ${A}`, `+mac ${A} 10.8.64.2`],
    'the lease now names another MAC',
  );
  t.same(
    step(learned, [lease('a', '10.8.64.2', A, PA)], [PA, PB]).ops,
    ['-pending 10.8.64.2', '-port 9', '-claim 10.8.64.2', `+port ${PA} ${A} 10.8.64.2`],
    'the store bound the lease to another port',
  );
  t.same(
    step(learned, [lease('a', '10.8.64.2', null, null)], [PA]).ops,
    ['-port 9', '-claim 10.8.64.2'],
    'the port left the bridge',
  );
  const unclaimed: GuardState = { ...learned, claims: new Map() };
  t.same(
    step(unclaimed, [lease('a', '10.8.64.2', null, null)], [PA, PB]).ops,
    ['-port 9'],
    'a learned binding without its claim would let a second port claim the address',
  );
});

t.test('a handover: the old port loses the address before the new one gets it', async (t) => {
  let s = step(EMPTY_GUARD_STATE, [lease('a', '10.8.64.2', A, PA)], [PA, PB]).state;
  const r = step(s, [lease('b', '10.8.64.2', B, PB)], [PA, PB]);
  t.same(r.ops, [`-port ${PA}`, `+port ${PB} ${B} 10.8.64.2`]);
  s = step(s, [lease('a', '10.8.64.2', A, PA), lease('b', '10.8.64.3', B, PB)], [PA, PB]).state;
  t.same(
    step(s, [lease('a', '10.8.64.3', A, PA), lease('b', '10.8.64.2', B, PB)], [PA, PB]).ops,
    [`-port ${PA}`, `-port ${PB}`, `+port ${PA} ${A} 10.8.64.3`, `+port ${PB} ${B} 10.8.64.2`],
    'two ports swapping addresses never both hold one',
  );
});

t.test(
  'changes in place: a new MAC for the same address, a pending lease that learns its MAC',
  async (t) => {
    const s = step(
      EMPTY_GUARD_STATE,
      [lease('a', '10.8.64.2', A, PA), lease('c', '10.8.64.4', null, null)],
      [PA],
    ).state;
    t.same(step(s, [lease('a', '10.8.64.2', B, PA), lease('c', '10.8.64.4', B, null)], [PA]).ops, [
      `+port ${PA} ${B} 10.8.64.2`,
      `+pending 10.8.64.4 ${B}`,
      `+mac ${B} 10.8.64.4`,
    ]);
  },
);

t.test(
  'a bridge recreated: every binding of the old ports goes, their leases await new ports',
  async (t) => {
    const s = step(
      EMPTY_GUARD_STATE,
      [lease('a', '10.8.64.2', A, PA), lease('b', '10.8.64.3', B, PB)],
      [PA, PB],
    ).state;
    t.same(
      step(s, [lease('a', '10.8.64.2', A, PA), lease('b', '10.8.64.3', B, PB)], [21, 22]).ops,
      [
        `-port ${PA}`,
        `-port ${PB}`,
        '-claim 10.8.64.2',
        '-claim 10.8.64.3',
        `+pending 10.8.64.2 ${A}`,
        `+pending 10.8.64.3 ${B}`,
        `+mac ${A} 10.8.64.2`,
        `+mac ${B} 10.8.64.3`,
      ],
    );
  },
);

t.test('stale claims: dropped unless they back a kept learned binding', async (t) => {
  const s: GuardState = { ...EMPTY_GUARD_STATE, claims: new Map([['10.8.64.9', 5]]) };
  t.same(step(s, [], [PA]).ops, ['-claim 10.8.64.9']);
  t.same(
    withLearned(step(s, [], []).state, PA, { mac: A, ip: '10.8.64.2' }).claims.get('10.8.64.2'),
    PA,
  );
  const bound = step(EMPTY_GUARD_STATE, [lease('a', '10.8.64.2', A, PA)], [PA]).state;
  t.equal(
    withLearned(bound, PA, { mac: B, ip: '10.8.64.3' }),
    bound,
    'a learn event for a port the agent bound meanwhile changes nothing',
  );
});

t.test(
  'pending MACs: one per MAC, revoked with their lease, moved when the lease changes',
  async (t) => {
    let s = step(
      EMPTY_GUARD_STATE,
      [lease('a', '10.8.64.2', A, null), lease('c', '10.8.64.4', null, null)],
      [PA],
    ).state;
    t.same([...s.pendingMacs], [[A, '10.8.64.2']], 'a lease naming no MAC has none');
    const r = step(
      s,
      [lease('a2', '10.8.64.5', A, null), lease('c', '10.8.64.4', null, null)],
      [PA],
    );
    t.same(
      r.ops,
      [
        '-pending 10.8.64.2',
        '-mac ' + A,
        '-claim 10.8.64.5',
        `+pending 10.8.64.5 ${A}`,
        `+mac ${A} 10.8.64.5`,
      ],
      'revoked before it is granted again',
    );
    s = r.state;
    t.same(step(s, [lease('c', '10.8.64.4', null, null)], [PA]).ops, [
      '-pending 10.8.64.5',
      '-mac ' + A,
    ]);
  },
);
