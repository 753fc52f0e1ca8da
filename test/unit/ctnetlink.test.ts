// The ctnetlink messages: a delete request carries the flow's original tuple exactly, a dumped
// entry parses back into the flow, and malformed or foreign entries are skipped, never thrown.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { encodeCtDelete, parseCtMessage } from '../../src/nodeport/ctnetlink.js';
import type { Flow } from '../../src/nodeport/conntrack-flows.js';

const flow: Flow = {
  proto: 'udp',
  orig: { src: '10.255.0.2', dst: '10.255.0.1', sport: 41000, dport: 5300 },
  reply: { src: '10.8.64.2', dst: '10.255.0.2', sport: 5353, dport: 41000 },
};

/** A dumped entry as the kernel sends it: the original tuple, the reply tuple, a status word. */
function dumped(f: Flow): Buffer {
  const orig = encodeCtDelete(f).subarray(4); // nfgenmsg, then CTA_TUPLE_ORIG
  const reply = Buffer.from(encodeCtDelete({ ...f, orig: f.reply }).subarray(4));
  reply.writeUInt16LE(0x8000 | 2, 2); // the same layout as CTA_TUPLE_REPLY
  const status = Buffer.from([8, 0, 3, 0, 0, 0, 0, 0x0e]); // CTA_STATUS, big-endian u32
  return Buffer.concat([Buffer.from([2, 0, 0, 0]), orig, reply, status]);
}

t.test('a delete request is nfgenmsg and the nested original tuple', async (t) => {
  const b = encodeCtDelete(flow);
  t.same([...b.subarray(0, 4)], [2, 0, 0, 0], 'AF_INET, version 0, res_id 0');
  t.equal(b.readUInt16LE(4), b.length - 4, 'one attribute spans the rest');
  t.equal(b.readUInt16LE(6), 0x8000 | 1, 'CTA_TUPLE_ORIG, nested');
  t.ok(b.includes(Buffer.from([10, 255, 0, 2])) && b.includes(Buffer.from([0xa0, 0x28])));
});

t.test('a dumped entry parses into the flow', async (t) => {
  t.same(parseCtMessage(dumped(flow)), flow);
  const tcp = { ...flow, proto: 'tcp' as const };
  t.same(parseCtMessage(dumped(tcp)), tcp);
});

t.test('foreign and malformed entries are skipped', async (t) => {
  const ok = dumped(flow);
  const v6 = Buffer.from(ok);
  v6[0] = 10;
  t.equal(parseCtMessage(v6), null, 'IPv6');
  const icmp = Buffer.from(ok);
  icmp[icmp.indexOf(Buffer.from([5, 0, 1, 0, 17]))! + 4] = 1; // CTA_PROTO_NUM -> ICMP
  t.equal(parseCtMessage(icmp), null, 'not TCP/UDP');
  for (let cut = 0; cut < ok.length; cut++) {
    t.doesNotThrow(() => parseCtMessage(ok.subarray(0, cut)));
  }
  t.equal(parseCtMessage(ok.subarray(0, 20)), null, 'truncated');
  for (let i = 0; i < 2000; i++) parseCtMessage(randomBytes(1 + (i % 120)));
  t.pass('random bytes never throw');
});
