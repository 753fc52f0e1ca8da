import t from 'tap';
import {
  BROADCAST_MAC,
  ZERO_MAC,
  arpKind,
  buildArpFrame,
  buildProbe,
  isProbeAnswer,
  parseArpFrame,
  type ArpFrame,
} from '../../src/net/arp.js';

const A = '02:aa:00:00:00:01';
const B = '02:bb:00:00:00:02';
const request: ArpFrame = {
  ethDst: BROADCAST_MAC,
  ethSrc: A,
  vlan: null,
  op: 'request',
  senderMac: A,
  senderIp: '10.8.64.2',
  targetMac: ZERO_MAC,
  targetIp: '10.8.64.1',
};

t.test('build and parse round-trip, untagged and tagged', async (t) => {
  const f = buildArpFrame(request);
  t.equal(f.length, 60, 'padded to the Ethernet minimum');
  t.equal(f.toString('hex', 12, 22), '0806000108000604' + '0001');
  t.same(parseArpFrame(f), { ok: true, frame: request });
  const tagged = buildArpFrame({ ...request, vlan: 42 });
  t.equal(tagged.readUInt16BE(12), 0x8100);
  t.equal(tagged.readUInt16BE(14), 42);
  t.same(parseArpFrame(tagged), { ok: true, frame: { ...request, vlan: 42 } });
  const reply = { ...request, op: 'reply' as const, ethDst: B, targetMac: B };
  t.same(parseArpFrame(buildArpFrame(reply)), { ok: true, frame: reply });
});

t.test('building rejects bad addresses and VLAN ids', async (t) => {
  t.throws(() => buildArpFrame({ ...request, vlan: 4096 }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => buildArpFrame({ ...request, senderIp: '10.8.64' }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => buildArpFrame({ ...request, ethSrc: 'nope' }), { code: 'INVALID_ARGUMENT' });
});

t.test('truncated at every length', async (t) => {
  for (const frame of [buildArpFrame(request), buildArpFrame({ ...request, vlan: 3 })]) {
    const end = frame.readUInt16BE(12) === 0x8100 ? 46 : 42;
    for (let len = 0; len < end; len++) {
      t.same(parseArpFrame(frame.subarray(0, len)), { ok: false, reason: 'truncated' }, `${len}`);
    }
    t.equal(parseArpFrame(frame.subarray(0, end)).ok, true, `${end} bytes is enough`);
  }
});

t.test('other ethertypes are not ARP; bad fields are rejected', async (t) => {
  const f = buildArpFrame(request);
  const with_ = (off: number, bytes: number[]) => {
    const c = Buffer.from(f);
    Buffer.from(bytes).copy(c, off);
    return parseArpFrame(c);
  };
  t.same(with_(12, [0x08, 0x00]), { ok: false, reason: 'not-arp' });
  t.same(with_(14, [0, 6]), { ok: false, reason: 'unsupported' }, 'htype');
  t.same(with_(16, [0x86, 0xdd]), { ok: false, reason: 'unsupported' }, 'ptype');
  t.same(with_(18, [8]), { ok: false, reason: 'unsupported' }, 'hlen');
  t.same(with_(19, [16]), { ok: false, reason: 'unsupported' }, 'plen');
  t.same(with_(20, [0, 3]), { ok: false, reason: 'unsupported' }, 'opcode');
  t.same(with_(22, [1, 0, 0x5e, 0, 0, 1]), { ok: false, reason: 'invalid-sender' }, 'multicast');
  t.same(with_(22, [0, 0, 0, 0, 0, 0]), { ok: false, reason: 'invalid-sender' }, 'zero MAC');
  const zeroReply = buildArpFrame({ ...request, op: 'reply', senderIp: '0.0.0.0' });
  t.same(parseArpFrame(zeroReply), { ok: false, reason: 'invalid-sender' });
  const zeroProbe = buildArpFrame({ ...request, senderIp: '0.0.0.0', targetIp: '0.0.0.0' });
  t.same(parseArpFrame(zeroProbe), { ok: false, reason: 'invalid-sender' });
});

t.test('kinds and probes (RFC 5227)', async (t) => {
  t.equal(arpKind(request), 'request');
  t.equal(arpKind({ ...request, op: 'reply' }), 'reply');
  t.equal(arpKind({ ...request, targetIp: request.senderIp }), 'announce');
  const probe = buildProbe(A, '10.8.64.9');
  const p = parseArpFrame(probe);
  t.match(p, {
    ok: true,
    frame: { op: 'request', senderIp: '0.0.0.0', targetIp: '10.8.64.9', ethDst: BROADCAST_MAC },
  });
  if (p.ok) t.equal(arpKind(p.frame), 'probe');
});

t.test('what answers a probe', async (t) => {
  const own = A;
  const reply: ArpFrame = {
    ...request,
    op: 'reply',
    ethSrc: B,
    senderMac: B,
    senderIp: '10.8.64.9',
    targetIp: '0.0.0.0',
  };
  t.ok(isProbeAnswer(reply, '10.8.64.9', own), 'a reply from the address');
  t.ok(isProbeAnswer({ ...reply, op: 'request' }, '10.8.64.9', own), 'any ARP from it');
  t.notOk(isProbeAnswer(reply, '10.8.64.10', own), 'another address');
  t.notOk(isProbeAnswer({ ...reply, senderMac: own, ethSrc: own }, '10.8.64.9', own), 'our own');
  t.notOk(isProbeAnswer({ ...reply, ethSrc: A }, '10.8.64.9', own), 'frame MAC != sender MAC');
  const otherProbe = {
    ...reply,
    op: 'request' as const,
    senderIp: '0.0.0.0',
    targetIp: '10.8.64.9',
  };
  t.ok(isProbeAnswer(otherProbe, '10.8.64.9', own), 'a simultaneous probe from another host');
});
