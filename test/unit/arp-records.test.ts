import t from 'tap';
import {
  BINDING_SIZE,
  CONFIG_SIZE,
  EVENT_SIZE,
  PORT_STATS_SIZE,
  bindingToObservation,
  changedBindings,
  encodeConfig,
  eventToObservation,
  ifindexKey,
  monoToEpochMs,
  parseArpEvent,
  parseBindings,
  parsePortStats,
} from '../../src/observe/arp-records.js';

/** A struct bw_arp_event laid out as in bpf/arp_observer.h. */
function event(o: { kind: number; flags: number; prevIfindex?: number; vlan?: number }): Buffer {
  const b = Buffer.alloc(EVENT_SIZE);
  b.writeBigUInt64LE(5_000_000n, 0);
  Buffer.from([10, 8, 64, 2]).copy(b, 8);
  b.writeUInt32LE(7, 12);
  b.writeUInt32LE(o.prevIfindex ?? 0, 16);
  b.writeUInt16LE(o.vlan ?? 0, 20);
  b[22] = o.kind;
  b[23] = o.flags;
  Buffer.from('02aa00000001', 'hex').copy(b, 24);
  Buffer.from('02bb00000002', 'hex').copy(b, 30);
  Buffer.from('02cc00000003', 'hex').copy(b, 36);
  Buffer.from([10, 8, 64, 1]).copy(b, 44);
  return b;
}

const clock = { monoNs: 10_000_000n, epochMs: 1_000_000 };

t.test('events', async (t) => {
  t.same(parseArpEvent(event({ kind: 2, flags: 2 | 4, prevIfindex: 8, vlan: 42 })), {
    tsNs: 5_000_000n,
    ip: '10.8.64.2',
    ifindex: 7,
    prevIfindex: 8,
    prevMac: '02:bb:00:00:00:02',
    vlan: 42,
    kind: 'reply',
    macMismatch: true,
    mac: '02:aa:00:00:00:01',
    ethSrc: '02:cc:00:00:00:03',
    targetIp: '10.8.64.1',
  });
  t.match(parseArpEvent(event({ kind: 1, flags: 1 })), {
    prevIfindex: null,
    prevMac: null,
    vlan: null,
    macMismatch: false,
  });
  t.equal(parseArpEvent(event({ kind: 9, flags: 0 })), null, 'unknown kind');
  t.equal(parseArpEvent(Buffer.alloc(EVENT_SIZE - 1)), null, 'wrong size');
});

t.test('observations', async (t) => {
  const e = parseArpEvent(event({ kind: 3, flags: 1 }))!;
  t.same(eventToObservation(e, clock), {
    source: 'bpf',
    kind: 'arp-announce',
    ip: '10.8.64.2',
    mac: '02:aa:00:00:00:01',
    ifindex: 7,
    at: 999_995,
  });
  const probe = parseArpEvent(event({ kind: 4, flags: 1 }))!;
  t.match(eventToObservation(probe, clock), { kind: 'arp-probe' });
  const spoofedProbe = parseArpEvent(event({ kind: 4, flags: 1 | 2 }))!;
  t.equal(eventToObservation(spoofedProbe, clock), null, 'RFC 5227: ignore mismatched probes');
  const mismatchedReply = parseArpEvent(event({ kind: 2, flags: 2 }))!;
  t.match(eventToObservation(mismatchedReply, clock), { kind: 'arp-reply' }, 'still a claim');
  t.equal(monoToEpochMs(10_000_000n, clock), 1_000_000);
});

t.test('binding and port-counter dumps', async (t) => {
  const v = Buffer.alloc(BINDING_SIZE * 2);
  for (const [i, kind] of [
    [0, 1],
    [1, 7],
  ] as const) {
    const o = i * BINDING_SIZE;
    v.writeBigUInt64LE(4_000_000n, o);
    v.writeBigUInt64LE(12n, o + 8);
    v.writeUInt32LE(9, o + 16);
    Buffer.from('02aa00000001', 'hex').copy(v, o + 20);
    v[o + 26] = kind;
    v[o + 27] = 4;
    v.writeUInt16LE(5, o + 28);
  }
  const keys = Buffer.from([10, 8, 64, 2, 10, 8, 64, 3]);
  const bindings = parseBindings({ keySize: 4, valueSize: BINDING_SIZE, keys, values: v });
  t.same(bindings, [
    {
      ip: '10.8.64.2',
      lastSeenNs: 4_000_000n,
      count: 12,
      ifindex: 9,
      mac: '02:aa:00:00:00:01',
      kind: 'request',
      macMismatch: false,
      vlan: 5,
    },
  ]);
  t.same(parseBindings({ keySize: 4, valueSize: 16, keys, values: v }), [], 'layout mismatch');
  t.match(bindingToObservation(bindings[0]!, clock), { kind: 'arp-request', at: 999_994 });

  const s = Buffer.alloc(PORT_STATS_SIZE);
  [3, 2, 1, 4, 0, 6].forEach((n, i) => s.writeBigUInt64LE(BigInt(n), i * 8));
  const k = Buffer.alloc(4);
  k.writeUInt32LE(9);
  t.same(
    [...parsePortStats({ keySize: 4, valueSize: PORT_STATS_SIZE, keys: k, values: s })],
    [[9, { arp: 3, malformed: 2, mismatch: 1, events: 4, lost: 0, limited: 6 }]],
  );
});

t.test('per-CPU port counters are summed over the CPUs', async (t) => {
  const cpus = 3;
  const keys = Buffer.alloc(8);
  keys.writeUInt32LE(7, 0);
  keys.writeUInt32LE(9, 4);
  const values = Buffer.alloc(2 * cpus * PORT_STATS_SIZE);
  // port 7: arp 1, 10, 100 on the three CPUs; port 9: lost 5 on the last CPU only
  [1, 10, 100].forEach((n, c) => values.writeBigUInt64LE(BigInt(n), c * PORT_STATS_SIZE));
  values.writeBigUInt64LE(5n, (2 * cpus - 1) * PORT_STATS_SIZE + 32);
  t.same(
    [...parsePortStats({ keySize: 4, valueSize: PORT_STATS_SIZE, cpus, keys, values })],
    [
      [7, { arp: 111, malformed: 0, mismatch: 0, events: 0, lost: 0, limited: 0 }],
      [9, { arp: 0, malformed: 0, mismatch: 0, events: 0, lost: 5, limited: 0 }],
    ],
  );
  t.same(
    parseBindings({ keySize: 4, valueSize: BINDING_SIZE, cpus: 2, keys, values }),
    [],
    'the binding map is never per-CPU',
  );
});

t.test('changed bindings after lost events', async (t) => {
  const b = (ip: string, mac: string, ifindex: number) => ({
    ip,
    mac,
    ifindex,
    lastSeenNs: 0n,
    count: 1,
    kind: 'reply' as const,
    macMismatch: false,
    vlan: null,
  });
  const known = new Map([
    ['10.8.64.2', { mac: 'a', ifindex: 1 }],
    ['10.8.64.3', { mac: 'b', ifindex: 2 }],
    ['10.8.64.4', { mac: 'c', ifindex: 3 }],
  ]);
  const current = [
    b('10.8.64.2', 'a', 1),
    b('10.8.64.3', 'x', 2),
    b('10.8.64.4', 'c', 9),
    b('10.8.64.5', 'd', 4),
  ];
  t.same(
    changedBindings(known, current).map((c) => c.ip),
    ['10.8.64.3', '10.8.64.4', '10.8.64.5'],
  );
});

t.test('a binding budget becomes an interval and a burst in ns', async (t) => {
  const c = encodeConfig({ perSecond: 100, burst: 200 });
  t.equal(c.length, CONFIG_SIZE);
  t.equal(c.readBigUInt64LE(0), 10_000_000n, 'one binding per 10 ms');
  t.equal(c.readBigUInt64LE(8), 2_000_000_000n, 'up to 200 ahead');
  t.same(encodeConfig({ perSecond: 0, burst: 1 }), Buffer.alloc(CONFIG_SIZE), '0: no limit');
  t.equal(encodeConfig({ perSecond: 3, burst: 1 }).readBigUInt64LE(0), 333_333_334n, 'rounded up');
  t.throws(() => encodeConfig({ perSecond: -1, burst: 1 }), RangeError);
  t.throws(() => encodeConfig({ perSecond: 1.5, burst: 1 }), RangeError);
  t.throws(() => encodeConfig({ perSecond: 10, burst: 0 }), RangeError);
  t.same(ifindexKey(7), Buffer.from([7, 0, 0, 0]));
});
