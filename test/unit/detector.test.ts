// The conflict detector: duplicates vs handovers, lease mismatches, unleased and gateway claims,
// presence windows and hold-downs, all with explicit time.
import t from 'tap';
import { ConflictDetector, type DetectorOptions } from '../../src/detect/detector.js';
import { indexLeases, NO_LEASES, type LeaseRef } from '../../src/detect/lease-index.js';
import type { FindingChange } from '../../src/detect/finding.js';
import { parseCidr } from '../../src/net/ipv4.js';
import type { Observation, PortActivity } from '../../src/observe/types.js';

const HOST = '02:00:00:00:00:01';
const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const C = '02:00:00:00:00:0c';
const BRIDGE = 2;
const PA = 7;
const PB = 9;
const PC = 11;

function detector(extra: Partial<DetectorOptions> = {}): ConflictDetector {
  const d = new ConflictDetector({
    subnet: parseCidr('10.8.64.0/24'),
    gateway: '10.8.64.1',
    hostMacs: [HOST],
    bridgeIfindex: BRIDGE,
    presenceMs: 10_000,
    holdDownMs: 5_000,
    ...extra,
  });
  d.portUp(PA, 'vetha');
  d.portUp(PB, 'vethb');
  d.portUp(PC, 'vethc');
  return d;
}

function arp(ip: string, mac: string, ifindex: number | null, at: number): Observation {
  return { source: 'bpf', kind: 'arp-request', ip, mac, ifindex, at };
}

function lease(sandbox: string, ip: string, mac: string | null, ifindex: number | null): LeaseRef {
  return { sandbox, ip, mac, ifindex };
}

function kinds(changes: FindingChange[]): string[] {
  return changes.map((c) => `${c.type} ${c.finding.kind}`).sort();
}

t.test(
  'duplicate-ip: a second MAC on another port while the lease holder is present',
  async (t) => {
    const d = detector();
    const leases = indexLeases([
      lease('app-a', '10.8.64.2', A, PA),
      lease('app-b', '10.8.64.3', B, PB),
    ]);
    t.same(d.observe(arp('10.8.64.2', A, PA, 1000), leases), [], 'the lease holder is fine');
    const changes = d.observe(arp('10.8.64.2', B, PB, 1500), leases);
    t.same(kinds(changes), ['raised duplicate-ip', 'raised lease-mismatch']);
    const dup = changes.find((c) => c.finding.kind === 'duplicate-ip')?.finding;
    t.same(dup?.macs, [A, B]);
    t.same(dup?.ports, ['vetha', 'vethb']);
    t.same(dup?.ifindexes, [PA, PB]);
    t.same(dup?.sandboxes, ['app-a', 'app-b']);
    t.equal(dup?.firstSeen, new Date(1500).toISOString(), 'since the second claimer appeared');
    t.equal(dup?.lastSeen, new Date(1500).toISOString());
    t.equal(dup?.severity, 'error');
    t.equal(dup?.quarantine, true);
    const mismatch = changes.find((c) => c.finding.kind === 'lease-mismatch')?.finding;
    t.same(mismatch?.macs, [B], 'the impostor');
    t.same(mismatch?.sandboxes, ['app-a', 'app-b']);
    t.equal(mismatch?.quarantine, false);
    t.ok(d.isQuarantined('10.8.64.2'));
    t.same(
      d.active().map((f) => f.kind),
      ['duplicate-ip', 'lease-mismatch'],
    );
    t.same(d.observe(arp('10.8.64.2', A, PA, 1600), leases), [], 'repeats change nothing');
  },
);

t.test('two probe answers for an unbound lease: duplicate-ip, no mismatch', async (t) => {
  const d = detector();
  const leases = indexLeases([lease('app-a', '10.8.64.2', null, null)]);
  const probe = (mac: string, port: number, at: number): Observation => ({
    source: 'probe',
    kind: 'probe-reply',
    ip: '10.8.64.2',
    mac,
    ifindex: port,
    at,
  });
  t.same(d.observe(probe(A, PA, 100), leases), []);
  const changes = d.observe(probe(B, PB, 101), leases);
  t.same(kinds(changes), ['raised duplicate-ip']);
  t.same(changes[0]?.finding.sources, ['probe']);
});

t.test('handover: old port gone, new owner leased: no finding', async (t) => {
  const d = detector();
  const before = indexLeases([lease('old', '10.8.64.2', A, PA)]);
  t.same(d.observe(arp('10.8.64.2', A, PA, 1000), before), []);
  t.same(d.portGone(PA, 2000, NO_LEASES), []);
  const after = indexLeases([lease('new', '10.8.64.2', B, PB)]);
  t.same(d.observe(arp('10.8.64.2', B, PB, 3000), after), []);
  t.same(d.tick(4000, after), []);
  t.same(d.active(), []);
});

t.test('handover with the old sandbox silent: no finding; A-B-A: duplicate', async (t) => {
  const d = detector();
  const before = indexLeases([lease('old', '10.8.64.2', A, PA)]);
  t.same(d.observe(arp('10.8.64.2', A, PA, 1000), before), []);
  const after = indexLeases([lease('new', '10.8.64.2', B, PB)]);
  t.same(d.observe(arp('10.8.64.2', B, PB, 2000), after), [], 'released holder is superseded');
  const back = d.observe(arp('10.8.64.2', A, PA, 3000), after);
  t.same(kinds(back), ['raised duplicate-ip', 'raised lease-mismatch'], 'A claims again');
  t.same(
    back.find((c) => c.finding.kind === 'duplicate-ip')?.finding.sandboxes,
    ['new'],
    'the old one holds no lease any more',
  );
});

t.test(
  'unleased-claim and gateway-claim quarantine; host MAC and probes never count',
  async (t) => {
    const d = detector();
    const unleased = d.observe(arp('10.8.64.5', C, PC, 10), NO_LEASES);
    t.same(kinds(unleased), ['raised unleased-claim']);
    t.same(unleased[0]?.finding.ports, ['vethc']);
    t.ok(d.isQuarantined('10.8.64.5'));
    const gw = d.observe({ ...arp('10.8.64.1', C, PC, 20), kind: 'arp-announce' }, NO_LEASES);
    t.same(kinds(gw), ['raised gateway-claim']);
    t.same(gw[0]?.finding.macs, [C]);
    t.ok(d.isQuarantined('10.8.64.1'));
    t.same(d.observe(arp('10.8.64.1', HOST, null, 30), NO_LEASES), [], 'host claims the gateway');
    t.same(d.observe(arp('10.8.64.9', HOST.toUpperCase(), null, 30), NO_LEASES), []);
    t.same(
      d.observe({ ...arp('10.8.64.6', A, PA, 40), kind: 'arp-probe' }, NO_LEASES),
      [],
      'an RFC 5227 probe claims nothing',
    );
  },
);

t.test('ignores what is not a claim on the subnet', async (t) => {
  const d = detector();
  const cases: Observation[] = [
    arp('10.9.0.2', A, PA, 1),
    arp('10.8.64.0', A, PA, 1),
    arp('10.8.64.255', A, PA, 1),
    arp('0.0.0.0', A, PA, 1),
    arp('10.8.64.7', '00:00:00:00:00:00', PA, 1),
    arp('10.8.64.7', 'ff:ff:ff:ff:ff:ff', PA, 1),
    arp('10.8.64.7', '01:00:5e:00:00:01', PA, 1),
    arp('10.8.64.7', 'not-a-mac', PA, 1),
    arp('999.1.1.1', A, PA, 1),
    {
      source: 'netlink-neigh',
      kind: 'neigh-gone',
      ip: '10.8.64.7',
      mac: A,
      ifindex: BRIDGE,
      at: 1,
    },
    { source: 'netlink-fdb', kind: 'fdb', ip: null, mac: A, ifindex: PA, at: 1 },
  ];
  for (const o of cases) t.same(d.observe(o, NO_LEASES), [], JSON.stringify(o));
  t.same(d.active(), []);
});

t.test('same port, two MACs: no duplicate (a MAC change), still unleased', async (t) => {
  const d = detector();
  d.observe(arp('10.8.64.4', A, PA, 1), NO_LEASES);
  const changes = d.observe(arp('10.8.64.4', B, PA, 2), NO_LEASES);
  t.same(kinds(changes), ['updated unleased-claim']);
  t.same(changes[0]?.finding.macs, [A, B]);
});

t.test('a third MAC updates the duplicate with more evidence', async (t) => {
  const d = detector();
  d.observe(arp('10.8.64.4', A, PA, 1), NO_LEASES);
  d.observe(arp('10.8.64.4', B, PB, 2), NO_LEASES);
  const changes = d.observe(arp('10.8.64.4', C, PC, 3), NO_LEASES);
  t.same(kinds(changes), ['updated duplicate-ip', 'updated unleased-claim']);
  t.same(changes[0]?.finding.ports, ['vetha', 'vethb', 'vethc']);
});

t.test('presence window: a claim older than presenceMs no longer counts', async (t) => {
  const d = detector();
  d.observe(arp('10.8.64.4', A, PA, 0), NO_LEASES);
  const later = d.observe(arp('10.8.64.4', B, PB, 10_001), NO_LEASES);
  t.same(kinds(later), ['updated unleased-claim'], 'no duplicate with an expired claim');
});

t.test('hold-down: clears only after the conflict stayed gone; flaps keep it', async (t) => {
  const d = detector();
  d.observe(arp('10.8.64.5', C, PC, 1000), NO_LEASES);
  t.same(d.portGone(PC, 2000, NO_LEASES), [], 'conflict gone, no change yet');
  t.equal(d.active()[0]?.resolvedAt, new Date(2000).toISOString());
  t.same(d.tick(6999, NO_LEASES), [], 'hold-down still running');
  t.ok(d.isQuarantined('10.8.64.5'));
  const cleared = d.tick(7000, NO_LEASES);
  t.same(kinds(cleared), ['cleared unleased-claim']);
  t.equal(cleared[0]?.finding.state, 'cleared');
  t.equal(cleared[0]?.finding.clearedAt, new Date(7000).toISOString());
  t.same(d.active(), []);
  t.equal(d.cleared().length, 1);
  t.notOk(d.isQuarantined('10.8.64.5'));

  d.portUp(PC, 'vethc');
  t.same(kinds(d.observe(arp('10.8.64.6', C, PC, 8000), NO_LEASES)), ['raised unleased-claim']);
  d.observe(
    { source: 'netlink-fdb', kind: 'fdb-gone', ip: null, mac: C, ifindex: PC, at: 9000 },
    NO_LEASES,
  );
  t.equal(d.active()[0]?.resolvedAt, new Date(9000).toISOString(), 'MAC aged out of the FDB');
  t.same(d.observe(arp('10.8.64.6', C, PC, 10_000), NO_LEASES), [], 'back: same finding');
  t.equal(d.active()[0]?.resolvedAt, null);
  t.same(d.tick(20_000, NO_LEASES), [], 'still claimed within the presence window');
  t.same(kinds(d.tick(20_001, NO_LEASES)), [], 'expired: hold-down starts');
  t.same(kinds(d.tick(25_001, NO_LEASES)), ['cleared unleased-claim']);
});

t.test('releases are picked up by tick: the released holder is superseded', async (t) => {
  const d = detector();
  const leased = indexLeases([lease('a', '10.8.64.2', A, PA)]);
  d.observe(arp('10.8.64.2', A, PA, 0), leased);
  d.observe(arp('10.8.64.2', B, PB, 1), leased);
  t.same(
    d.active().map((f) => f.kind),
    ['duplicate-ip', 'lease-mismatch'],
  );
  const releasedToB = indexLeases([lease('b', '10.8.64.2', B, PB)]);
  t.same(d.tick(100, releasedToB), []);
  t.same(
    kinds(d.tick(5100, releasedToB)),
    ['cleared duplicate-ip', 'cleared lease-mismatch'],
    'the conflict is gone once A is no longer the owner and stays silent',
  );
});

t.test('neighbour table: repeats do not renew a claim; gone MACs are ignored', async (t) => {
  const d = detector();
  const neigh = (mac: string, at: number): Observation => ({
    source: 'netlink-neigh',
    kind: 'neigh',
    ip: '10.8.64.2',
    mac,
    ifindex: BRIDGE,
    at,
  });
  d.observe(
    { source: 'netlink-fdb', kind: 'fdb', ip: null, mac: A, ifindex: PA, at: 0 },
    NO_LEASES,
  );
  const leased = indexLeases([lease('a', '10.8.64.2', A, PA)]);
  t.same(d.observe(neigh(A, 1), leased), []);
  t.same(d.observe(neigh(A, 2), NO_LEASES), [], 'released; the kernel entry just changed state');
  t.same(
    kinds(d.observe(arp('10.8.64.2', A, PA, 3), NO_LEASES)),
    ['raised unleased-claim'],
    'a frame from A after the release',
  );
  t.same(d.active()[0]?.ports, ['vetha'], 'port resolved through the FDB');
  d.portGone(PA, 4, NO_LEASES);
  t.same(d.observe(neigh(A, 5), NO_LEASES), [], 'stale neighbour entry of a gone port');
  t.same(
    kinds(d.observe(neigh(B, 6), NO_LEASES)),
    ['updated unleased-claim'],
    'B joins the finding still in its hold-down',
  );
  t.equal(d.active()[0]?.resolvedAt, null);
});

t.test('neighbour flapping between two MACs is a duplicate', async (t) => {
  const d = detector();
  const neigh = (mac: string, at: number): Observation => ({
    source: 'netlink-neigh',
    kind: 'neigh',
    ip: '10.8.64.3',
    mac,
    ifindex: BRIDGE,
    at,
  });
  const leased = indexLeases([lease('a', '10.8.64.3', A, null)]);
  t.same(d.observe(neigh(A, 1), leased), []);
  t.same(kinds(d.observe(neigh(B, 2), leased)), ['raised duplicate-ip', 'raised lease-mismatch']);
});

t.test('history is bounded', async (t) => {
  const d = detector({ historyLimit: 2 });
  for (let i = 0; i < 3; i++) {
    d.observe(arp(`10.8.64.${10 + i}`, C, PC, 0), NO_LEASES);
  }
  d.portGone(PC, 1, NO_LEASES);
  t.equal(d.tick(10_000, NO_LEASES).length, 3);
  t.same(
    d.cleared().map((f) => f.ip),
    ['10.8.64.11', '10.8.64.12'],
  );
});

t.test('a flood of spoofed MACs stays bounded', async (t) => {
  const d = detector();
  for (let i = 0; i < 5000; i++) {
    const mac = `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
    d.observe(arp('10.8.64.7', mac, PA + (i % 50), i), NO_LEASES);
  }
  const dup = d.active().find((f) => f.kind === 'duplicate-ip');
  const unleased = d.active().find((f) => f.kind === 'unleased-claim');
  t.equal(dup?.macs.length, 32, 'evidence capped');
  t.ok((dup?.ports.length ?? 0) <= 32);
  t.equal(unleased?.macs.length, 32);
  t.equal(dup?.lastSeen, new Date(4999).toISOString(), 'still tracking the newest claims');
});

t.test(
  'a bridge recreated: a lease bound to a port that left still fits its MAC on a new port',
  async (t) => {
    const d = detector();
    const leases = indexLeases([lease('app-a', '10.8.64.2', A, PA)]);
    t.same(d.observe(arp('10.8.64.2', A, PA, 1000), leases), [], 'the holder on its port');
    d.portGone(PA, 2000, leases);
    d.portGone(PB, 2000, leases);
    d.portGone(PC, 2000, leases);
    d.setBridge(20, '02:00:00:00:00:20');
    const PD = 21;
    const PE = 22;
    d.portUp(PD, 'vethd');
    d.portUp(PE, 'vethe');
    t.same(
      d.observe(arp('10.8.64.2', A, PD, 3000), leases),
      [],
      'the same sandbox re-attached on a new veth: no finding, though the store still names port 7',
    );
    t.same(
      d.observe(arp('10.8.64.9', '02:00:00:00:00:20', PD, 3000), leases),
      [],
      "the new bridge's MAC is the host's",
    );
    t.same(
      kinds(d.observe(arp('10.8.64.2', B, PE, 3500), leases)),
      ['raised duplicate-ip', 'raised lease-mismatch'],
      'a rogue on another new port taking the address is still a duplicate',
    );
    t.same(
      kinds(
        detector().observe(
          arp('10.8.64.2', A, PB, 1000),
          indexLeases([lease('x', '10.8.64.2', A, PA)]),
        ),
      ),
      ['raised lease-mismatch'],
      'while its port is on the bridge, the binding counts',
    );
  },
);

t.test('idle: nothing for a tick to do until a claim, and again once it cleared', async (t) => {
  const d = detector();
  t.ok(d.idle(), 'a new detector');
  d.observe(arp('10.8.64.7', C, PC, 0), NO_LEASES);
  t.notOk(d.idle(), 'a claim to expire');
  d.portGone(PC, 1, NO_LEASES);
  t.notOk(d.idle(), 'its finding waits out the hold-down');
  d.tick(10_000, NO_LEASES);
  t.ok(d.idle(), 'cleared');
});

function activity(
  ifindex: number,
  at: number,
  counts: { arpFrames?: number; bindings?: number; limited?: number } = {},
): PortActivity {
  return {
    source: 'bpf',
    ifindex,
    port: ifindex === PA ? 'vetha' : 'vethb',
    at,
    intervalMs: 1000,
    arpFrames: 0,
    bindings: 0,
    limited: 0,
    ...counts,
  };
}

t.test('arp-storm: a spoofing port is named with its sandbox and rates', async (t) => {
  const d = detector();
  const leases = indexLeases([lease('app-a', '10.8.64.2', A, PA)]);
  t.same(d.portActivity(activity(PA, 1000, { arpFrames: 5, bindings: 1 }), leases), []);
  const raised = d.portActivity(
    activity(PA, 2000, { arpFrames: 20_000, bindings: 100, limited: 19_900 }),
    leases,
  );
  t.same(kinds(raised), ['raised arp-storm']);
  t.match(raised[0]?.finding, {
    id: 'arp-storm/if7/2000',
    ip: null,
    ports: ['vetha'],
    ifindexes: [PA],
    sandboxes: ['app-a'],
    macs: [A],
    severity: 'warn',
    quarantine: false,
    rates: {
      arpPerSecond: 20_000,
      bindingsPerSecond: 100,
      limitedPerSecond: 19_900,
      peakLimitedPerSecond: 19_900,
      limitedTotal: 19_900,
    },
  });
  t.same(
    d.portActivity(activity(PA, 3000, { arpFrames: 30_000, limited: 100 }), leases),
    [],
    'a storm going on is not news',
  );
  t.match(d.active()[0]?.rates, { arpPerSecond: 30_000, peakArpPerSecond: 30_000 });
  t.same(d.portActivity(activity(PB, 3000, { arpFrames: 10 }), leases), [], 'others are quiet');
  t.same(d.portActivity(activity(PA, 4000), leases), [], 'quiet again: resolving');
  t.match(d.active(), [{ kind: 'arp-storm', resolvedAt: new Date(4000).toISOString() }]);
  t.same(d.tick(8999, leases), [], 'within the hold-down');
  const cleared = d.tick(9000, leases);
  t.same(kinds(cleared), ['cleared arp-storm']);
  t.match(cleared[0]?.finding, { state: 'cleared', rates: { limitedTotal: 20_000 } });
  t.same(d.active(), []);
  t.match(d.cleared(), [{ kind: 'arp-storm' }]);
});

t.test('arp-storm: a flood of one binding; spoofing later is an update', async (t) => {
  const d = detector({ stormFramesPerSecond: 500 });
  const leases = indexLeases([lease('app-b', '10.8.64.3', B, null)]);
  d.observe({ source: 'netlink-fdb', kind: 'fdb', ip: null, mac: B, ifindex: PB, at: 500 }, leases);
  t.same(d.portActivity(activity(PB, 1000, { arpFrames: 499 }), leases), [], 'under the rate');
  const raised = d.portActivity(activity(PB, 2000, { arpFrames: 500 }), leases);
  t.match(raised, [
    { type: 'raised', finding: { sandboxes: ['app-b'], rates: { limitedTotal: 0 } } },
  ]);
  t.same(kinds(d.portActivity(activity(PB, 3000, { arpFrames: 9, limited: 1 }), leases)), [
    'updated arp-storm',
  ]);
  t.same(d.portActivity(activity(PB, 4000), leases), []);
  t.same(
    d.portActivity(activity(PB, 5000, { arpFrames: 600 }), leases),
    [],
    'back within the hold-down: the same storm',
  );
  t.equal(d.active().length, 1);
  t.equal(d.active()[0]?.resolvedAt, null);
  d.portGone(PB, 6000, leases);
  t.same(kinds(d.tick(11_000, leases)), ['cleared arp-storm'], 'its port left');
});

t.test('arp-storm: a station the bridge learned on the port names its sandbox', async (t) => {
  const d = detector();
  const leases = indexLeases([lease('app-c', '10.8.64.4', C, null)]);
  const changes = d.portActivity({ ...activity(PB, 1000, { limited: 5 }), stations: [C] }, leases);
  t.match(changes, [{ type: 'raised', finding: { sandboxes: ['app-c'], macs: [C] } }]);
});
