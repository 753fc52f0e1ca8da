// The guard's kernel records: encodings match bpf/arp_observer.h byte for byte, parsers refuse
// what is not of the header's layout.
import t from 'tap';
import {
  GUARD_CONFIG_SIZE,
  GUARD_EVENT_SIZE,
  GUARD_STATS_SIZE,
  encodeGuardConfig,
  encodePending,
  encodePortBinding,
  ipKey,
  macKey,
  parseClaims,
  parseGuardEvent,
  parseGuardPorts,
  parseGuardStats,
  parsePending,
  parsePendingMacs,
} from '../../src/guard/guard-records.js';

t.test('config: mode, flags and the event budget', async (t) => {
  const c = encodeGuardConfig({
    mode: 'enforce',
    dropIpv6: true,
    events: { perSecond: 20, burst: 40 },
  });
  t.equal(c.length, GUARD_CONFIG_SIZE);
  t.equal(c.readUInt32LE(0), 2);
  t.equal(c.readUInt32LE(4), 1);
  t.equal(c.readBigUInt64LE(8), 50_000_000n);
  t.equal(c.readBigUInt64LE(16), 2_000_000_000n);
  t.equal(
    encodeGuardConfig({ mode: 'monitor', dropIpv6: false, events: { perSecond: 0, burst: 1 } })
      .subarray(4)
      .every((b) => b === 0),
    true,
    'no flags, no limit',
  );
  t.throws(
    () => encodeGuardConfig({ mode: 'off', dropIpv6: false, events: { perSecond: 1, burst: 0 } }),
    { name: 'RangeError', message: /spoof event budget: burst 0/ },
  );
});

const A = '02:aa:00:00:00:01';

t.test('port bindings and pending leases round-trip through dumps', async (t) => {
  const value = encodePortBinding({ mac: '02:AA:00:00:00:01', ip: '10.8.64.2' });
  t.equal(value.toString('hex'), '02aa000000010000' + '0a084002');
  const learned = Buffer.from(value);
  learned[6] = 1;
  const keys = Buffer.alloc(8);
  keys.writeUInt32LE(7, 0);
  keys.writeUInt32LE(9, 4);
  const ports = parseGuardPorts({
    keySize: 4,
    valueSize: 12,
    keys,
    values: Buffer.concat([value, learned]),
  });
  t.same(ports.get(7), { mac: '02:aa:00:00:00:01', ip: '10.8.64.2', learned: false });
  t.same(ports.get(9), { mac: '02:aa:00:00:00:01', ip: '10.8.64.2', learned: true });
  const pending = parsePending({
    keySize: 4,
    valueSize: 8,
    keys: Buffer.concat([ipKey('10.8.64.2'), ipKey('10.8.64.3')]),
    values: Buffer.concat([encodePending('02:aa:00:00:00:01'), encodePending(null)]),
  });
  t.same(
    [...pending],
    [
      ['10.8.64.2', '02:aa:00:00:00:01'],
      ['10.8.64.3', null],
    ],
  );
  const claim = Buffer.alloc(4);
  claim.writeUInt32LE(7, 0);
  t.same(
    [...parseClaims({ keySize: 4, valueSize: 4, keys: ipKey('10.8.64.2'), values: claim })],
    [['10.8.64.2', 7]],
  );
  t.same(parseGuardPorts({ keySize: 4, valueSize: 16, keys, values: Buffer.alloc(32) }).size, 0);
  t.equal(macKey('02:AA:00:00:00:01').toString('hex'), '02aa000000010000');
  t.same(
    [
      ...parsePendingMacs({
        keySize: 8,
        valueSize: 4,
        keys: macKey(A),
        values: ipKey('10.8.64.2'),
      }),
    ],
    [[A, '10.8.64.2']],
  );
});

t.test('per-port counters are summed over the CPUs', async (t) => {
  const values = Buffer.alloc(GUARD_STATS_SIZE * 2);
  values.writeBigUInt64LE(3n, 0); // cpu 0 dropped
  values.writeBigUInt64LE(4n, GUARD_STATS_SIZE); // cpu 1 dropped
  values.writeBigUInt64LE(1n, GUARD_STATS_SIZE + 40); // cpu 1 learned
  const keys = Buffer.alloc(4);
  keys.writeUInt32LE(7, 0);
  t.same(
    parseGuardStats({ keySize: 4, valueSize: GUARD_STATS_SIZE, cpus: 2, keys, values }).get(7),
    {
      dropped: 7,
      wouldDrop: 0,
      events: 0,
      limited: 0,
      lost: 0,
      learned: 1,
    },
  );
});

t.test('events: spoof and learn records; anything else is refused', async (t) => {
  const e = Buffer.alloc(GUARD_EVENT_SIZE);
  e.writeBigUInt64LE(123n, 0);
  e.writeUInt32LE(9, 8);
  ipKey('10.8.64.2').copy(e, 12);
  ipKey('10.8.64.1').copy(e, 16);
  e[20] = 1; // spoof
  e[21] = 3; // arp-ip
  e[22] = 1; // dropped
  Buffer.from('02bb00000002', 'hex').copy(e, 24);
  Buffer.from('02bb00000002', 'hex').copy(e, 30);
  e.writeUInt16LE(0x0806, 36);
  t.same(parseGuardEvent(e), {
    kind: 'spoof',
    tsNs: 123n,
    ifindex: 9,
    ip: '10.8.64.2',
    targetIp: '10.8.64.1',
    reason: 'arp-ip',
    dropped: true,
    ethSrc: '02:bb:00:00:00:02',
    senderMac: '02:bb:00:00:00:02',
    ethertype: 0x0806,
  });
  const learn = Buffer.from(e);
  learn[20] = 2;
  learn[21] = 0;
  learn[22] = 0;
  learn.fill(0, 30, 36);
  t.match(parseGuardEvent(learn), { kind: 'learn', reason: null, dropped: false, senderMac: null });
  const noIp = Buffer.from(e);
  noIp.fill(0, 12, 20);
  t.match(parseGuardEvent(noIp), { ip: null, targetIp: null });
  const badReason = Buffer.from(e);
  badReason[21] = 99;
  t.equal(parseGuardEvent(badReason), null);
  const badKind = Buffer.from(e);
  badKind[20] = 7;
  t.equal(parseGuardEvent(badKind), null);
  t.equal(parseGuardEvent(e.subarray(0, 39)), null);
});
