// spoof-attempt findings from the bridge guard's reports, through the pure detector: evidence
// (port, sandbox, MAC, claimed address, the lease it collides with, rates), monitor vs enforce,
// resolution and hold-down, bounds; never a quarantine.
import t from 'tap';
import { ConflictDetector } from '../../src/detect/detector.js';
import { indexLeases } from '../../src/detect/lease-index.js';
import { parseCidr } from '../../src/net/ipv4.js';
import type { GuardActivity, SpoofObservation } from '../../src/observe/types.js';

const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const PA = 7;
const PB = 9;
const leases = indexLeases([
  { sandbox: 'app-a', ip: '10.8.64.2', mac: A, ifindex: PA },
  { sandbox: 'app-b', ip: '10.8.64.3', mac: B, ifindex: PB },
]);

function detector(): ConflictDetector {
  const d = new ConflictDetector({
    subnet: parseCidr('10.8.64.0/24'),
    gateway: '10.8.64.1',
    hostMacs: [],
    bridgeIfindex: 2,
    holdDownMs: 5_000,
  });
  d.portUp(PA, 'vetha');
  d.portUp(PB, 'vethb');
  return d;
}

function spoof(at: number, over: Partial<SpoofObservation> = {}): SpoofObservation {
  return {
    source: 'bpf',
    ifindex: PB,
    port: 'vethb',
    at,
    reason: 'ip-source',
    dropped: true,
    ip: '10.8.64.2',
    targetIp: '10.8.64.4',
    mac: B,
    senderMac: null,
    ...over,
  };
}

function activity(at: number, dropped: number, wouldDrop = 0, ifindex = PB): GuardActivity {
  return { source: 'bpf', ifindex, port: 'vethb', at, intervalMs: 1000, dropped, wouldDrop };
}

t.test('app B sends as app A: one finding with the whole story', async (t) => {
  const d = detector();
  const [c] = d.spoof(spoof(1000), leases);
  t.equal(c?.type, 'raised');
  t.match(c?.finding, {
    id: 'spoof-attempt/if9/10.8.64.2/1000',
    kind: 'spoof-attempt',
    ip: '10.8.64.2',
    macs: [B],
    ports: ['vethb'],
    ifindexes: [PB],
    sandboxes: ['app-a', 'app-b'],
    severity: 'warn',
    quarantine: false,
    rates: null,
    spoof: {
      mode: 'enforce',
      reasons: ['ip-source'],
      collidesWith: { sandbox: 'app-a', ip: '10.8.64.2' },
      reports: 1,
    },
  });
  t.same(d.spoof(spoof(1100), leases), [], 'the same again changes nothing worth telling');
  const [u] = d.spoof(spoof(1200, { reason: 'arp-ip', senderMac: B }), leases);
  t.match(u, {
    type: 'updated',
    finding: { spoof: { reasons: ['arp-ip', 'ip-source'], reports: 3 } },
  });
  t.notOk(d.isQuarantined('10.8.64.2'), "the leaseholder's address is never quarantined");
  t.equal(d.active().length, 1);
});

t.test('monitor: an error (the frames reached someone); enforce later: updated', async (t) => {
  const d = detector();
  t.match(d.spoof(spoof(1000, { dropped: false }), leases), [
    { type: 'raised', finding: { severity: 'error', spoof: { mode: 'monitor' } } },
  ]);
  t.match(d.spoof(spoof(2000), leases), [
    { type: 'updated', finding: { severity: 'warn', spoof: { mode: 'enforce' } } },
  ]);
});

t.test('rates from the counters; a clean reading resolves; the hold-down clears', async (t) => {
  const d = detector();
  d.spoof(spoof(1000), leases);
  d.guardActivity(activity(2000, 120));
  t.match(d.active()[0]?.spoof, {
    droppedPerSecond: 120,
    droppedTotal: 120,
    wouldDropPerSecond: 0,
  });
  d.guardActivity(activity(3000, 0));
  t.match(d.active()[0], {
    resolvedAt: new Date(3000).toISOString(),
    spoof: { droppedTotal: 120 },
  });
  t.same(d.tick(7000, leases), [], 'within the hold-down');
  d.spoof(spoof(7500), leases);
  t.equal(d.active()[0]?.resolvedAt, null, 'a new report reopens it');
  d.guardActivity(activity(8000, 0));
  t.match(d.tick(13_000, leases), [
    { type: 'cleared', finding: { kind: 'spoof-attempt', state: 'cleared' } },
  ]);
  t.ok(d.idle(), 'nothing left to tick');
});

t.test(
  'a port that goes on with other addresses: each stale one resolves on its own',
  async (t) => {
    const d = detector();
    d.spoof(spoof(1000), leases);
    d.spoof(spoof(1000, { ip: '10.8.64.99' }), leases);
    d.spoof(spoof(11_500, { ip: '10.8.64.99' }), leases);
    d.guardActivity(activity(12_000, 50));
    const byIp = new Map(d.active().map((f) => [f.ip, f.resolvedAt]));
    t.equal(byIp.get('10.8.64.2'), new Date(12_000).toISOString(), 'not reported for 10 s');
    t.equal(byIp.get('10.8.64.99'), null, 'still going');
  },
);

t.test('a port that leaves ends its attempts', async (t) => {
  const d = detector();
  d.spoof(spoof(1000), leases);
  d.portGone(PB, 2000, leases);
  t.match(d.tick(7000, leases), [{ type: 'cleared' }]);
});

t.test('frames with no address: by MAC, and the lease whose MAC was used', async (t) => {
  const d = detector();
  const [c] = d.spoof(spoof(1000, { reason: 'mac', ip: null, mac: A }), leases);
  t.match(c?.finding, {
    id: 'spoof-attempt/if9/-/1000',
    ip: null,
    macs: [A],
    sandboxes: ['app-a', 'app-b'],
    spoof: { reasons: ['mac'], collidesWith: { sandbox: 'app-a', ip: '10.8.64.2' } },
  });
  const [own] = detector().spoof(
    spoof(1000, { ip: '10.8.64.77', ifindex: 11, port: 'vethc', mac: '02:00:00:00:00:0c' }),
    leases,
  );
  t.match(
    own?.finding,
    { sandboxes: [], spoof: { collidesWith: null } },
    'a stranger on a free address',
  );
});

t.test('bounded: at most 16 addresses per port', async (t) => {
  const d = detector();
  for (let i = 0; i < 40; i++) d.spoof(spoof(1000 + i, { ip: `10.8.65.${i}` }), leases);
  t.equal(d.active().length, 16);
  t.equal(
    d.spoof(spoof(2000, { ifindex: PA, port: 'vetha' }), leases).length,
    1,
    'other ports are not starved',
  );
});
